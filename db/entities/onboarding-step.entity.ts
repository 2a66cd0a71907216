import { randomUUID } from 'node:crypto';
import { defineEntity, p, type InferEntity } from '@mikro-orm/core';
import { HostSchema } from './host.entity.js';

export const ONBOARDING_STEPS = ['connect', 'collect-facts', 'confirm-facts', 'apply-template', 'configure-remote-access', 'verify', 'mark-online'] as const;
export type OnboardingStepName = (typeof ONBOARDING_STEPS)[number];
export const STEP_STATUSES = ['pending', 'running', 'done', 'failed', 'skipped', 'waiting'] as const;
export type StepStatus = (typeof STEP_STATUSES)[number];

/** Progress of one onboarding step of one host: the API lists these; the workflow query shows the same. */
export const OnboardingStepSchema = defineEntity({
  name: 'OnboardingStep',
  tableName: 'host_onboarding_steps',
  properties: {
    id: p.uuid().primary().onCreate(() => randomUUID()),
    host: () => p.manyToOne(HostSchema).deleteRule('cascade').index(),
    step: p.enum(ONBOARDING_STEPS),
    status: p.enum(STEP_STATUSES).default('pending'),
    attempts: p.integer().default(0),
    startedAt: p.datetime().nullable(),
    finishedAt: p.datetime().nullable(),
    error: p.string().length(2000).nullable(),
    detail: p.json<Record<string, unknown>>().nullable(),
  },
  uniques: [{ properties: ['host', 'step'] }],
});

export type OnboardingStep = InferEntity<typeof OnboardingStepSchema>;
