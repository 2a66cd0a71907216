import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { NotificationSchema, RoleGrantSchema, UserSchema } from '../../db/entities/index.js';
import { roleGrantStateQuery, type RoleGrantState } from '../../workflows/role-grant.workflow.js';
import { startHarness, type Harness } from './registration-harness.js';

const DAY = 86_400_000;

describe('role-grant workflow: time-bound roles (time-skipping server, real SMTP)', () => {
  let h: Harness;
  let admin: { id: string; token: string; email: string };
  let admin2: { id: string; token: string; email: string };
  let ana: { id: string; token: string; email: string };

  beforeAll(async () => {
    h = await startHarness('role-grant');
    admin = await h.user('root', ['admin'], 'root@example.com');
    admin2 = await h.user('root2', ['admin'], 'root2@example.com');
    ana = await h.user('ana', ['requester'], 'ana@example.com');
  }, 120_000);
  afterAll(async () => {
    await h?.close();
  });

  const roles = async (id: string) => (await h.db.em.fork().findOneOrFail(UserSchema, { id })).roles;
  const grant = async (role: string, untilMs: number, token = admin.token, userId = ana.id) =>
    h.api('POST', `/api/v1/users/${userId}/role-grants`, token, { role, until: new Date(untilMs).toISOString(), reason: 'on-call week' });
  /** Times (workflow clock) at which an activity of this type was scheduled. */
  const scheduledAt = async (workflowId: string, activity: string) => {
    const history = await h.env.client.workflow.getHandle(workflowId).fetchHistory();
    return (history.events ?? [])
      .filter((e) => e.activityTaskScheduledEventAttributes?.activityType?.name === activity)
      .map((e) => Number(e.eventTime!.seconds) * 1000 + Math.floor((e.eventTime!.nanos ?? 0) / 1e6));
  };
  /**
   * Waits (real time) for the run to complete, without `result()`: awaiting a result lets the
   * time-skipping server jump far ahead once nothing is pending (measured: ~10 years), which
   * would put the workflow clock years past the API's wall clock for the next test.
   */
  const completed = async (workflowId: string) => {
    const handle = h.env.client.workflow.getHandle(workflowId);
    await h.until(async () => (await handle.describe()).status.name === 'COMPLETED', `${workflowId} completed`);
    return (await handle.query(roleGrantStateQuery)) as RoleGrantState;
  };
  const mailsFor = async (grantId: string, kind: string) => h.db.em.fork().find(NotificationSchema, { eventKey: { $like: `role-grant/${grantId}/${kind}%` }, channel: 'email' });

  it('a 3-day grant adds the role at once, reminds once a day before, and revokes itself exactly at the end', async () => {
    const t0 = await h.env.currentTimeMs();
    const untilMs = t0 + 3 * DAY;
    const res = await grant('operator', untilMs);
    expect(res.status, JSON.stringify(res.body)).toBe(201);
    const g = res.body.data as { id: string; workflow_id: string; status: string };
    expect(g.status).toBe('active');
    expect(await roles(ana.id)).toEqual(['requester', 'operator']);
    // A second active grant of the same role, or one of a role already held: 40901.
    expect((await grant('operator', untilMs)).body.code).toBe(40901);
    expect((await grant('requester', untilMs)).body.code).toBe(40901);
    // Nobody grants to themselves; the end must be in the future.
    expect((await grant('approver', untilMs, admin.token, admin.id)).status).toBe(403);
    const past = await grant('approver', Date.now() - 1000);
    expect([past.status, past.body.errors?.[0]?.field]).toEqual([400, 'until']);

    await h.env.sleep('2 days');
    await h.until(async () => (await mailsFor(g.id, 'reminder')).length === 1, 'reminder');
    expect(await roles(ana.id)).toContain('operator');
    await h.env.sleep('1 day');
    const result = await completed(g.workflow_id);
    expect(result.status).toBe('expired');
    await h.captureHistory(g.workflow_id, 'roleGrant-expired');
    expect(await roles(ana.id)).toEqual(['requester']);
    const row = await h.db.em.fork().findOneOrFail(RoleGrantSchema, { id: g.id });
    expect(row.status).toBe('expired');
    // Exactly at the end (workflow clock), not a day early or late.
    expect(row.endedAt!.getTime() - untilMs).toBeGreaterThanOrEqual(0);
    expect(row.endedAt!.getTime() - untilMs).toBeLessThan(5_000);
    const [remindAt, ...more] = await scheduledAt(g.workflow_id, 'notifyRoleGrant');
    expect(remindAt! - (untilMs - DAY)).toBeGreaterThanOrEqual(0);
    expect(remindAt! - (untilMs - DAY)).toBeLessThan(5_000);
    expect(more).toHaveLength(1); // the "ended" notice
    expect(await scheduledAt(g.workflow_id, 'endRoleGrant')).toHaveLength(1);
    // Mails: one reminder, one end notice, both to Ana.
    const reminders = (await mailsFor(g.id, 'reminder')).map((n) => [n.status, n.recipient]);
    expect(reminders).toEqual([['sent', 'ana@example.com']]);
    await h.waitForMail((m) => m.to === 'ana@example.com' && m.subject === 'Your role operator has ended', 'end notice');
    expect((await h.mails()).filter((m) => m.to === 'ana@example.com' && m.subject === 'Your role operator ends tomorrow')).toHaveLength(1);
    // Changing a grant that is over: 40901.
    const late = await h.api('POST', `/api/v1/users/${ana.id}/role-grants/${g.id}/revoke`, admin.token, { reason: 'too late' });
    expect([late.status, late.body.code]).toEqual([409, 40901]);
  });

  it('extend moves the end and the reminder; the old moment passes without effect', async () => {
    const t0 = await h.env.currentTimeMs();
    const created = await grant('approver', t0 + 3 * DAY);
    expect(created.status, JSON.stringify(created.body)).toBe(201);
    const g = created.body.data as { id: string; workflow_id: string };
    await h.env.sleep('1 day');
    const newUntil = t0 + 5 * DAY;
    const bad = await h.api('POST', `/api/v1/users/${ana.id}/role-grants/${g.id}/extend`, admin.token, { until: new Date(t0 + 2 * DAY).toISOString() });
    expect([bad.status, bad.body.errors?.[0]?.field]).toEqual([400, 'until']);
    const ext = await h.api('POST', `/api/v1/users/${ana.id}/role-grants/${g.id}/extend`, admin2.token, { until: new Date(newUntil).toISOString() });
    expect(ext.status, JSON.stringify(ext.body)).toBe(200);
    // Past the old end (and the old reminder moment): still active, no reminder yet.
    await h.env.sleep('2 days');
    expect(await roles(ana.id)).toContain('approver');
    expect((await h.api('GET', `/api/v1/users/${ana.id}/role-grants`, ana.token)).body.data.items.find((x: { id: string }) => x.id === g.id).status).toBe('active');
    expect(await mailsFor(g.id, 'reminder')).toHaveLength(0);
    await h.env.sleep('2 days');
    const result = await completed(g.workflow_id);
    expect([result.status, result.until]).toEqual(['expired', new Date(newUntil).toISOString()]);
    await h.captureHistory(g.workflow_id, 'roleGrant-extended');
    const row = await h.db.em.fork().findOneOrFail(RoleGrantSchema, { id: g.id });
    expect(row.until.getTime()).toBe(newUntil);
    expect(row.endedAt!.getTime() - newUntil).toBeGreaterThanOrEqual(0);
    expect(row.endedAt!.getTime() - newUntil).toBeLessThan(5_000);
    const reminders = await mailsFor(g.id, 'reminder');
    expect(reminders.map((n) => n.eventKey)).toEqual([`role-grant/${g.id}/reminder/${newUntil}`]);
    expect(await roles(ana.id)).not.toContain('approver');
  });

  it('revoke ends it early: role gone at once, no reminder, and a second revoke is 40901', async () => {
    const t0 = await h.env.currentTimeMs();
    const g = (await grant('operator', t0 + 3 * DAY)).body.data as { id: string; workflow_id: string };
    const noReason = await h.api('POST', `/api/v1/users/${ana.id}/role-grants/${g.id}/revoke`, admin.token, { reason: ' ' });
    expect([noReason.status, noReason.body.errors?.[0]?.field]).toEqual([400, 'reason']);
    const rev = await h.api('POST', `/api/v1/users/${ana.id}/role-grants/${g.id}/revoke`, admin2.token, { reason: 'incident closed' });
    expect(rev.status, JSON.stringify(rev.body)).toBe(200);
    const again = await h.api('POST', `/api/v1/users/${ana.id}/role-grants/${g.id}/revoke`, admin.token, { reason: 'twice' });
    expect([again.status, again.body.code]).toEqual([409, 40901]);
    const result = await completed(g.workflow_id);
    expect(result.status).toBe('revoked');
    await h.captureHistory(g.workflow_id, 'roleGrant-revoked');
    const row = await h.db.em.fork().findOneOrFail(RoleGrantSchema, { id: g.id });
    expect([row.status, row.revokedBy, row.revokeReason]).toEqual(['revoked', admin2.id, 'incident closed']);
    expect(row.endedAt!.getTime() - t0).toBeLessThan(DAY);
    expect(await roles(ana.id)).toEqual(['requester']);
    expect(await mailsFor(g.id, 'reminder')).toHaveLength(0);
    expect((await mailsFor(g.id, 'revoked')).map((n) => n.status)).toEqual(['sent']);
    // The grantee sees the history; another non-admin does not.
    const list = await h.api('GET', `/api/v1/users/${ana.id}/role-grants`, ana.token);
    expect(list.body.data.items.map((x: { status: string }) => x.status)).toEqual(['revoked', 'expired', 'expired']);
  });

  it('no credential (API keys of the granter, revoker and grantee, tokens in the mails) is in any role-grant workflow history', async () => {
    const grants = await h.db.em.fork().find(RoleGrantSchema, {});
    expect(grants.length).toBeGreaterThanOrEqual(3);
    const secrets = [admin.token, admin2.token, ana.token];
    for (const m of await h.mails()) for (const t of m.text.matchAll(/token=([A-Za-z0-9_.%-]{16,})/g)) secrets.push(decodeURIComponent(t[1]!));
    await h.assertNoSecretsInHistories(grants.map((g) => g.workflowId), secrets);
    // The scan finds what is there: each history carries its grant id.
    await expect(h.assertNoSecretsInHistories([grants[0]!.workflowId], [grants[0]!.id])).rejects.toThrow(/secret found/);
  });
});
