import { createHash, randomBytes } from 'node:crypto';
import type { RequestHandler } from 'express';
import type { SqlEntityManager } from '@mikro-orm/sql';
import { UserSchema, type Role } from '../../db/entities/index.js';
import { unauthenticated } from '../errors.js';

export interface AuthedUser {
  id: string;
  username: string;
  roles: Role[];
}

declare module 'express-serve-static-core' {
  interface Request {
    user?: AuthedUser;
    requestId: string;
  }
}

export const hashToken = (token: string) => createHash('sha256').update(token).digest('hex');
export const generateToken = () => `hf_${randomBytes(24).toString('base64url')}`;

/**
 * Temporary authentication until the identity issue lands: `Authorization: Bearer <api token>`,
 * looked up by its SHA-256. Sets req.user; routes decide whether a user is required.
 */
export function authenticate(em: SqlEntityManager): RequestHandler {
  return async (req, _res, next) => {
    const header = req.headers.authorization;
    if (!header) return next();
    const m = /^Bearer\s+(\S+)$/i.exec(header);
    if (!m) throw unauthenticated('Authorization header must be "Bearer <token>"');
    const user = await em.fork().findOne(UserSchema, { apiTokenHash: hashToken(m[1]!), disabledAt: null });
    if (!user) throw unauthenticated('invalid or revoked token');
    req.user = { id: user.id, username: user.username, roles: user.roles };
    next();
  };
}
