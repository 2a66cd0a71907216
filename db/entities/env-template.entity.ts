import { randomUUID } from 'node:crypto';
import { defineEntity, p, type InferEntity } from '@mikro-orm/core';
import type { AccountPolicy } from './host.entity.js';

/** One idempotent step: `check` exits 0 when the step is already in place; otherwise `command` runs. */
export interface TemplateStep {
  name: string;
  check: string;
  command: string;
  /** Seconds the command may take. */
  timeoutS?: number;
}

/**
 * An environment template (e.g. "CUDA 12.4 + cuDNN + Docker"): versioned data, immutable once
 * published — a change is a new version, so a host records exactly what was applied to it.
 */
export const EnvTemplateSchema = defineEntity({
  name: 'EnvTemplate',
  tableName: 'env_templates',
  properties: {
    id: p.uuid().primary().onCreate(() => randomUUID()),
    name: p.string().length(100),
    version: p.integer(),
    description: p.string().length(500).nullable(),
    os: p.enum(['linux', 'windows'] as const).default('linux'),
    steps: p.json<TemplateStep[]>(),
    /** Privileged account requests hosts with this template permit (merged with the host's). */
    accountPolicy: p.json<AccountPolicy>().nullable(),
    publishedAt: p.datetime().nullable(),
    createdAt: p.datetime().onCreate(() => new Date()),
  },
  uniques: [{ properties: ['name', 'version'] }],
});

export type EnvTemplate = InferEntity<typeof EnvTemplateSchema>;
