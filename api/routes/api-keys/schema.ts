import { z, NO_CONTROL_RE } from '../../openapi.js';

export const ApiKeyDto = z
  .object({
    id: z.string().uuid(),
    user_id: z.string().uuid(),
    name: z.string(),
    prefix: z.string().openapi({ description: 'First characters of the key, to recognise it' }),
    roles: z.array(z.string()),
    expires_at: z.string().nullable(),
    last_used_at: z.string().nullable(),
    last_used_ip: z.string().nullable(),
    revoked_at: z.string().nullable(),
    created_at: z.string(),
  })
  .openapi('ApiKey');
export const ApiKeyCreate = z
  .object({
    name: z.string().min(1).max(100).regex(NO_CONTROL_RE, 'must not contain control characters'),
    roles: z.array(z.string().min(1).max(64)).min(1).optional().openapi({ description: "A subset of the owner's roles (default: all of them)" }),
    expires_at: z.string().datetime({ offset: true }).optional(),
    user_id: z.string().uuid().optional().openapi({ description: 'Holders of api_key.manage may create a key for another user' }),
  })
  .openapi('ApiKeyCreate');
export const ApiKeyCreated = ApiKeyDto.extend({ key: z.string().openapi({ description: 'Shown once; only its SHA-256 is stored. Use as Authorization: Bearer <key>' }) });
