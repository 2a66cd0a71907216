import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTransport } from 'nodemailer';
import { NotificationSchema, RegistrationSchema, UserSchema } from '../../db/entities/index.js';
import { createRegistrationMailActivities } from '../../activities/notify/registration-mail.activities.js';
import { createLogger } from '../../config/logger.js';
import { startDingtalk, startWebhookReceiver } from '../helpers/notify-receivers.js';
import { consumePasswordToken } from '../../api/routes/auth/password-tokens.js';
import type { RegistrationState } from '../../workflows/user-registration.workflow.js';
import { PUBLIC_BASE, startHarness, type Harness, type Mail } from './registration-harness.js';

describe('user-registration workflow through the API (time-skipping server, real SMTP)', () => {
  let h: Harness;
  let admin: { id: string; token: string; email: string };
  let admin2: { id: string; token: string; email: string };
  let deptAdmin: { id: string; token: string; email: string };
  let outsider: { id: string; token: string; email: string };
  let dept: string;
  let otherDept: string;
  const secrets: string[] = [];
  const workflowIds: string[] = [];

  beforeAll(async () => {
    h = await startHarness('registration');
    admin = await h.user('root', ['admin'], 'root@example.com');
    admin2 = await h.user('root2', ['admin'], 'root2@example.com');
    deptAdmin = await h.user('dana', ['operator'], 'dana@example.com');
    outsider = await h.user('otto', ['operator'], 'otto@example.com');
    dept = await h.department('GPU Research', [deptAdmin.id]);
    otherDept = await h.department('Finance', [outsider.id]);
  }, 120_000);
  afterAll(async () => {
    await h?.close();
  });

  const to = (email: string) => (m: Mail) => m.to === email;
  const tokenIn = (text: string, prefix: 'rt' | 'pt') => {
    const m = new RegExp(`token=(${prefix}_[A-Za-z0-9_-]+)`).exec(text);
    if (!m) throw new Error(`no ${prefix} token link in: ${text}`);
    secrets.push(m[1]!);
    return m[1]!;
  };
  const row = (email: string) => h.db.em.fork().findOne(RegistrationSchema, { email });
  const statusIs = (email: string, status: string) => h.until(async () => ((await row(email))?.status === status ? (await row(email))! : null), `${email} ${status}`);

  /** Submits, reads the verification mail, verifies; returns the registration id. */
  const registerAndVerify = async (email: string, roles = ['operator', 'requester']) => {
    const sub = await h.api('POST', '/api/v1/registrations', null, { email, full_name: 'New Person', phone: '+86 138 0000 0000', department_id: dept, requested_roles: roles, reason: 'joins the GPU team' });
    expect(sub.status, JSON.stringify(sub.body)).toBe(202);
    const mail = await h.waitForMail((m) => m.to === email && m.subject.includes('Confirm'), `verify mail to ${email}`);
    expect(mail.text).toContain(`${PUBLIC_BASE}/register/verify?token=`);
    const token = tokenIn(mail.text, 'rt');
    const v = await h.api('POST', '/api/v1/registrations/verify', null, { token });
    expect(v.status, JSON.stringify(v.body)).toBe(200);
    workflowIds.push(`user-registration/${v.body.data.id}`);
    await statusIs(email, 'pending_department_review');
    return { id: v.body.data.id as string, verifyToken: token };
  };

  it('happy path: submit → verify → department review → role approval (fewer roles) → activation with a working set-password link', async () => {
    const email = 'new.person@example.com';
    const { id, verifyToken } = await registerAndVerify(email);
    // The link works once.
    const again = await h.api('POST', '/api/v1/registrations/verify', null, { token: verifyToken });
    expect([again.status, again.body.code, again.body.errors?.[0]?.field]).toEqual([400, 40001, 'token']);
    // The same address again: the same answer, and no second registration or mail.
    const dup = await h.api('POST', '/api/v1/registrations', null, { email, full_name: 'X', department_id: dept, requested_roles: ['operator'], reason: 'again' });
    expect(dup.status).toBe(202);
    expect(await h.db.em.fork().count(RegistrationSchema, { email })).toBe(1);

    // The department admin is told, and sees it in the queue; an admin of another department does not.
    await h.waitForMail((m) => m.to === deptAdmin.email && m.subject.includes('department review') && !m.subject.startsWith('Reminder'), 'review request');
    const queue = await h.api('GET', '/api/v1/registrations', deptAdmin.token);
    expect(queue.body.data.items.map((r: { id: string }) => r.id)).toContain(id);
    const other = await h.api('GET', '/api/v1/registrations', outsider.token);
    expect(other.body.data.items.map((r: { id: string }) => r.id)).not.toContain(id);
    expect((await h.api('GET', `/api/v1/registrations/${id}`, outsider.token)).status).toBe(404);
    const wrongDept = await h.api('POST', `/api/v1/registrations/${id}/department-review`, outsider.token, { decision: 'approve' });
    expect(wrongDept.status).toBe(404);
    const notDeptAdmin = await h.api('POST', `/api/v1/registrations/${id}/department-review`, admin.token, { decision: 'approve' });
    expect([notDeptAdmin.status, notDeptAdmin.body.code]).toEqual([403, 40301]);
    // Role approval before the department review: not its turn.
    const early = await h.api('POST', `/api/v1/registrations/${id}/role-approval`, admin.token, { decision: 'approve' });
    expect([early.status, early.body.code]).toEqual([409, 40901]);

    const dr = await h.api('POST', `/api/v1/registrations/${id}/department-review`, deptAdmin.token, { decision: 'approve', comment: 'known to us' });
    expect(dr.status, JSON.stringify(dr.body)).toBe(200);
    expect(dr.body.data.status).toBe('pending_role_approval');
    await statusIs(email, 'pending_role_approval');
    await h.waitForMail((m) => m.to === admin.email && m.subject.includes('role approval'), 'role approval request');
    const adminQueue = await h.api('GET', '/api/v1/registrations', admin.token);
    expect(adminQueue.body.data.items.map((r: { id: string }) => r.id)).toContain(id);

    // More roles than requested: refused by the validator, naming the field.
    const more = await h.api('POST', `/api/v1/registrations/${id}/role-approval`, admin.token, { decision: 'approve', roles: ['operator', 'admin'] });
    expect([more.status, more.body.code, more.body.errors?.[0]?.field]).toEqual([400, 40001, 'roles']);
    const ok = await h.api('POST', `/api/v1/registrations/${id}/role-approval`, admin.token, { decision: 'approve', roles: ['operator'], comment: 'operator is enough' });
    expect(ok.status, JSON.stringify(ok.body)).toBe(200);

    const result = (await h.env.client.workflow.getHandle(`user-registration/${id}`).result()) as RegistrationState;
    expect(result.status).toBe('activated');
    expect(result.grantedRoles).toEqual(['operator']);
    await h.captureHistory(`user-registration/${id}`, 'userRegistration-activated');
    const reg = (await row(email))!;
    expect(reg.status).toBe('activated');
    const user = await h.db.em.fork().findOneOrFail(UserSchema, { id: reg.userId! });
    expect([user.username, user.roles, user.mustChangePassword, user.passwordHash ?? null, user.departmentId]).toEqual(['new.person', ['operator'], true, null, dept]);

    const activation = await h.waitForMail((m) => m.to === email && m.subject.includes('set your password'), 'activation mail');
    expect(activation.text).toContain(`${PUBLIC_BASE}/set-password?token=`);
    const pt = tokenIn(activation.text, 'pt');
    expect(await consumePasswordToken(h.db.em, pt, 'activation')).toBe(user.id);
    expect(await consumePasswordToken(h.db.em, pt, 'activation')).toBeNull();
    // Stored notifications never hold a token.
    const stored = await h.db.em.fork().find(NotificationSchema, { eventKey: { $like: `user-registration/${id}/%` } });
    expect(stored.length).toBeGreaterThanOrEqual(4);
    for (const n of stored) for (const s of secrets) expect(n.body).not.toContain(s);
    // Exactly once: one verification mail and one activation mail to the applicant.
    const mine = (await h.mails()).filter(to(email));
    expect(mine.map((m) => m.subject).sort()).toEqual(['Confirm your email address for Hostflow', 'Your Hostflow account is ready: set your password']);
  });

  it('token mails go through the notification center: the send log shows the link redacted; no token anywhere in the database', async () => {
    const email = 'center.mail@example.com';
    const { id, verifyToken } = await registerAndVerify(email);
    // The mail that arrived carried a working link (registerAndVerify used it); the send log row
    // of that message holds the render with the secret variables redacted.
    const log = await h.api('GET', `/api/v1/notifications/log?event_key=${encodeURIComponent(`user-registration/${id}/verify/1`)}&with_attempts=true`, admin.token);
    expect(log.status, JSON.stringify(log.body)).toBe(200);
    const [row] = log.body.data.items;
    expect(row).toMatchObject({ event: 'registration.verify', channel: 'email', recipient: email, status: 'sent', attempts: 1, template_version: 0 });
    expect(row.log.map((a: { status: string }) => a.status)).toEqual(['sent']);
    // The stored render (subject, text and HTML bodies) of that message.
    const stored = await h.db.em.fork().findOneOrFail(NotificationSchema, { id: row.id });
    expect(stored.body).toContain('/api/v1/registrations/verify {"token": "<redacted>"}');
    expect(stored.body).toMatch(/review:\n\n<redacted>\n/);
    expect(stored.html).toContain('&lt;redacted&gt;');
    for (const text of [stored.subject, stored.body, stored.html ?? '', JSON.stringify(stored.payload)]) {
      expect(text).not.toContain(verifyToken);
      expect(text).not.toContain('token=');
    }
    // Every table, every row: none holds a token mailed so far (tokens are stored as SHA-256 only).
    const conn = h.db.em.fork().getConnection();
    const tables = (await conn.execute<Array<{ table_name: string }>>(`select table_name from information_schema.tables where table_schema = 'public' and table_type = 'BASE TABLE'`)).map((t) => t.table_name);
    expect(tables).toContain('notifications');
    let dump = '';
    for (const t of tables) dump += JSON.stringify(await conn.execute(`select * from "${t}"`));
    expect(dump).toContain(email); // the scan sees the rows
    for (const s of [verifyToken, ...secrets]) expect(dump).not.toContain(s);
  });

  it('department rejection ends it with a reason mailed to the applicant', async () => {
    const email = 'rejected@example.com';
    const { id } = await registerAndVerify(email);
    const noReason = await h.api('POST', `/api/v1/registrations/${id}/department-review`, deptAdmin.token, { decision: 'reject' });
    expect([noReason.status, noReason.body.errors?.[0]?.field]).toEqual([400, 'comment']);
    const rej = await h.api('POST', `/api/v1/registrations/${id}/department-review`, deptAdmin.token, { decision: 'reject', comment: 'not one of ours' });
    expect(rej.status).toBe(200);
    const result = (await h.env.client.workflow.getHandle(`user-registration/${id}`).result()) as RegistrationState;
    expect(result.status).toBe('rejected');
    await h.captureHistory(`user-registration/${id}`, 'userRegistration-rejected');
    const mail = await h.waitForMail((m) => m.to === email && m.subject.includes('rejected'), 'rejection mail');
    expect(mail.text).toContain('not one of ours');
    const reg = (await row(email))!;
    expect([reg.status, reg.departmentReviewedBy, reg.userId ?? null]).toEqual(['rejected', deptAdmin.id, null]);
    const late = await h.api('POST', `/api/v1/registrations/${id}/department-review`, deptAdmin.token, { decision: 'approve' });
    expect([late.status, late.body.code]).toEqual([409, 40901]);
  });

  it('return for changes → resubmit with the mailed link (new department) → reviewed again → activated', async () => {
    const email = 'fixme@example.com';
    const { id } = await registerAndVerify(email, ['requester']);
    const ret = await h.api('POST', `/api/v1/registrations/${id}/department-review`, deptAdmin.token, { decision: 'return', comment: 'you belong to Finance' });
    expect(ret.body.data.status).toBe('changes_requested');
    const mail = await h.waitForMail((m) => m.to === email && m.subject.includes('needs changes'), 'resubmit mail');
    expect(mail.text).toContain('you belong to Finance');
    expect(mail.text).toContain(`${PUBLIC_BASE}/register/${id}/edit?token=`);
    const token = tokenIn(mail.text, 'rt');
    const fields = { full_name: 'Fixed Person', department_id: otherDept, requested_roles: ['requester', 'operator'], reason: 'moved to Finance' };
    const wrong = await h.api('PUT', `/api/v1/registrations/${id}`, null, { ...fields, token: 'rt_not-the-token-at-all' });
    expect([wrong.status, wrong.body.errors?.[0]?.field]).toEqual([400, 'token']);
    const badDept = await h.api('PUT', `/api/v1/registrations/${id}`, null, { ...fields, department_id: '00000000-0000-4000-8000-000000000000', token });
    expect([badDept.status, badDept.body.errors?.[0]?.field]).toEqual([400, 'department_id']);
    const put = await h.api('PUT', `/api/v1/registrations/${id}`, null, { ...fields, token });
    expect(put.status, JSON.stringify(put.body)).toBe(200);
    const reused = await h.api('PUT', `/api/v1/registrations/${id}`, null, { ...fields, token });
    expect(reused.status).toBeGreaterThanOrEqual(400);
    const reg = await h.until(async () => {
      const r = await row(email);
      return r?.status === 'pending_department_review' && r.round === 2 ? r : null;
    }, 'round 2');
    expect([reg.fullName, reg.departmentId, reg.requestedRoles]).toEqual(['Fixed Person', otherDept, ['requester', 'operator']]);
    // Now the Finance admin reviews; the first department's admin no longer may.
    const old = await h.api('POST', `/api/v1/registrations/${id}/department-review`, deptAdmin.token, { decision: 'approve' });
    expect(old.status).toBe(404);
    expect((await h.api('POST', `/api/v1/registrations/${id}/department-review`, outsider.token, { decision: 'approve' })).status).toBe(200);
    expect((await h.api('POST', `/api/v1/registrations/${id}/role-approval`, admin.token, { decision: 'approve' })).status).toBe(200);
    const result = (await h.env.client.workflow.getHandle(`user-registration/${id}`).result()) as RegistrationState;
    expect([result.status, result.round, result.grantedRoles]).toEqual(['activated', 2, ['requester', 'operator']]);
    await h.captureHistory(`user-registration/${id}`, 'userRegistration-resubmitted');
    tokenIn((await h.waitForMail((m) => m.to === email && m.subject.includes('set your password'), 'activation')).text, 'pt');
  });

  it('nobody approves their own registration (a reviewer with the applicant\'s email), nor invites their own address', async () => {
    const email = 'sneaky@example.com';
    const { id } = await registerAndVerify(email, ['operator']);
    // The applicant turns out to hold an admin account with the same address and administers the department.
    const sneaky = await h.user('sneaky', ['admin'], 'Sneaky@Example.com');
    const em = h.db.em.fork();
    await em.getConnection().execute(`update departments set admins = admins || ?::jsonb where id = ?`, [JSON.stringify([sneaky.id]), dept]);
    const self = await h.api('POST', `/api/v1/registrations/${id}/department-review`, sneaky.token, { decision: 'approve' });
    expect([self.status, self.body.code, self.body.message]).toEqual([403, 40301, 'nobody reviews their own registration']);
    expect((await h.api('POST', `/api/v1/registrations/${id}/department-review`, deptAdmin.token, { decision: 'approve' })).status).toBe(200);
    await statusIs(email, 'pending_role_approval');
    const selfRoles = await h.api('POST', `/api/v1/registrations/${id}/role-approval`, sneaky.token, { decision: 'approve' });
    expect([selfRoles.status, selfRoles.body.code]).toEqual([403, 40301]);
    // Refused before it entered history: the registration still waits, and another admin can decide.
    expect((await h.api('POST', `/api/v1/registrations/${id}/role-approval`, admin2.token, { decision: 'reject', comment: 'has an account already' })).status).toBe(200);
    expect(((await h.env.client.workflow.getHandle(`user-registration/${id}`).result()) as RegistrationState).status).toBe('rejected');
    // Accepted Updates only: verify-email, the department approval, the rejection; not the two refused ones.
    const hist = JSON.stringify(await h.env.client.workflow.getHandle(`user-registration/${id}`).fetchHistory());
    expect(hist.match(/workflowExecutionUpdateAcceptedEventAttributes/g)?.length).toBe(3);

    // Invitations: an admin cannot invite their own address.
    const selfInvite = await h.api('POST', '/api/v1/invitations', admin.token, { email: admin.email, roles: ['operator'], department_id: dept });
    expect([selfInvite.status, selfInvite.body.code]).toEqual([403, 40301]);
  });

  it('invitation starts at activation: the invited user gets a working set-password link', async () => {
    const inv = await h.api('POST', '/api/v1/invitations', admin.token, { email: 'invited@example.com', roles: ['requester'], department_id: dept, full_name: 'Invited One' });
    expect(inv.status, JSON.stringify(inv.body)).toBe(201);
    workflowIds.push(inv.body.data.workflow_id);
    const result = (await h.env.client.workflow.getHandle(inv.body.data.workflow_id).result()) as RegistrationState;
    expect(result.status).toBe('activated');
    await h.captureHistory(inv.body.data.workflow_id, 'userRegistration-invitation');
    const pt = tokenIn((await h.waitForMail(to('invited@example.com'), 'invitation')).text, 'pt');
    expect(await consumePasswordToken(h.db.em, pt, 'activation')).toBe(result.userId);
    const again = await h.api('POST', '/api/v1/invitations', admin.token, { email: 'invited@example.com', roles: ['requester'], department_id: dept });
    expect([again.status, again.body.code]).toEqual([409, 40901]);
  });

  it('a step that waits too long reminds the reviewers at half-time and expires cleanly after 7 days', async () => {
    const email = 'slow@example.com';
    const { id } = await registerAndVerify(email);
    await h.waitForMail((m) => m.to === deptAdmin.email && m.subject.includes('New Person') && m.text.includes(id), 'review request');
    const reminders = async () => (await h.mails()).filter((m) => m.to === deptAdmin.email && m.subject.startsWith('Reminder') && m.text.includes(id));
    await h.env.sleep('3 days');
    expect(await reminders()).toHaveLength(0);
    await h.env.sleep('1 day');
    await h.until(async () => (await reminders()).length === 1, 'half-time reminder');
    const result = (await h.env.client.workflow.getHandle(`user-registration/${id}`).result()) as RegistrationState;
    expect(result.status).toBe('expired');
    await h.captureHistory(`user-registration/${id}`, 'userRegistration-expired');
    expect(await reminders()).toHaveLength(1);
    const reg = (await row(email))!;
    expect([reg.status, reg.deadlineAt ?? null]).toEqual(['expired', null]);
    await h.waitForMail((m) => m.to === email && m.subject.includes('expired'), 'expiry mail');
    const late = await h.api('POST', `/api/v1/registrations/${id}/department-review`, deptAdmin.token, { decision: 'approve' });
    expect([late.status, late.body.code]).toEqual([409, 40901]);
    // The address is free again.
    expect((await h.api('POST', '/api/v1/registrations', null, { email, full_name: 'Slow', department_id: dept, requested_roles: ['operator'], reason: 'again' })).status).toBe(202);
    await h.until(async () => (await h.db.em.fork().count(RegistrationSchema, { email })) === 2 || null, 'second registration');
  });

  it('departments: admins create, list and change them; names unique, parents without cycles, admins must exist', async () => {
    const created = await h.api('POST', '/api/v1/departments', admin.token, { name: 'Ops', admins: [deptAdmin.id] });
    expect(created.status, JSON.stringify(created.body)).toBe(201);
    const child = await h.api('POST', '/api/v1/departments', admin.token, { name: 'Ops / Night shift', parent_id: created.body.data.id });
    expect([child.status, child.body.data.parent_id]).toEqual([201, created.body.data.id]);
    expect((await h.api('POST', '/api/v1/departments', admin.token, { name: 'Ops' })).body.code).toBe(40901);
    const ghost = await h.api('POST', '/api/v1/departments', admin.token, { name: 'Ghosts', admins: ['00000000-0000-4000-8000-000000000000'] });
    expect([ghost.status, ghost.body.errors?.[0]?.field]).toEqual([400, 'admins.0']);
    const cycle = await h.api('PATCH', `/api/v1/departments/${created.body.data.id}`, admin.token, { parent_id: child.body.data.id });
    expect([cycle.status, cycle.body.errors?.[0]?.field]).toEqual([400, 'parent_id']);
    const changed = await h.api('PATCH', `/api/v1/departments/${created.body.data.id}`, admin.token, { admins: [outsider.id, deptAdmin.id] });
    expect(changed.body.data.admins).toEqual([outsider.id, deptAdmin.id]);
    const list = await h.api('GET', '/api/v1/departments?name=ops', admin.token);
    expect(list.body.data.items.map((d: { name: string }) => d.name)).toEqual(['Ops', 'Ops / Night shift']);
    expect((await h.api('GET', '/api/v1/departments', deptAdmin.token)).status).toBe(403);
    expect((await h.api('POST', '/api/v1/departments', deptAdmin.token, { name: 'Mine' })).status).toBe(403);
    // The registration form lists departments without their admins, to anyone.
    const pub = await h.api('GET', '/api/v1/registrations/departments', null);
    expect(pub.status).toBe(200);
    expect(pub.body.data.items.find((d: { name: string }) => d.name === 'Ops')).toEqual({ id: created.body.data.id, name: 'Ops', parent_id: null });
    // Bad registration input is 40001 naming the field; an unknown department too.
    const bad = await h.api('POST', '/api/v1/registrations', null, { email: 'not-an-email', full_name: '', department_id: dept, requested_roles: [], reason: 'x' });
    expect(bad.status).toBe(400);
    expect(bad.body.errors!.map((e) => e.field).sort()).toEqual(['email', 'full_name', 'requested_roles']);
    // Role names are rows of the roles table; a customer's people's roles are not registrable.
    for (const role of ['customer', 'customer_member', 'emperor']) {
      const r = await h.api('POST', '/api/v1/registrations', null, { email: 'x@example.com', full_name: 'X', department_id: dept, requested_roles: ['operator', role], reason: 'x' });
      expect([role, r.status, r.body.errors?.[0]?.field]).toEqual([role, 400, 'requested_roles.1']);
    }
    const noDept = await h.api('POST', '/api/v1/registrations', null, { email: 'x@example.com', full_name: 'X', department_id: '00000000-0000-4000-8000-000000000000', requested_roles: ['operator'], reason: 'x' });
    expect([noDept.status, noDept.body.errors?.[0]?.field]).toEqual([400, 'department_id']);
  });

  it('reviewer and applicant notices are catalogue events: zh-CN reviewer on email + inbox, a subscribed DingTalk robot (console link, no action link) and webhook; send log; exactly once; a queued row of the old email-only path is rendered and sent once', { timeout: 120_000 }, async () => {
    const ding = await startDingtalk('SECreg-robot-secret', 'regtok');
    const hook = await startWebhookReceiver('to-be-replaced');
    try {
      // A department whose admin reads Chinese; a robot (zh-CN) and a webhook subscribed to its review notices.
      const wang = await h.user('wang', ['operator'], 'Wang.Reviewer@Example.com');
      expect((await h.api('PUT', '/api/v1/messages/preferences', wang.token, { language: 'zh-CN' })).status).toBe(200);
      const robotics = await h.department('Robotics', [wang.id]);
      const robot = await h.api('POST', '/api/v1/notifications/endpoints', admin.token, { name: 'reg-dingtalk', kind: 'dingtalk', url: ding.robotUrl, secret: 'SECreg-robot-secret', language: 'zh-CN' });
      expect(robot.status, JSON.stringify(robot.body)).toBe(201);
      const wh = await h.api('POST', '/api/v1/notifications/endpoints', admin.token, { name: 'reg-hook', kind: 'webhook', url: `${hook.url}/hostflow` });
      expect(wh.status, JSON.stringify(wh.body)).toBe(201);
      hook.state.secret = wh.body.data.secret;
      for (const [event, id] of [['registration.department_review', robot.body.data.id], ['registration.department_review', wh.body.data.id], ['registration.rejected', wh.body.data.id]]) {
        const sub = await h.api('POST', '/api/v1/notifications/subscriptions', admin.token, { event, subject_type: 'endpoint', subject_id: id });
        expect(sub.status, JSON.stringify(sub.body)).toBe(201);
      }

      const email = 'robo.applicant@example.com';
      expect((await h.api('POST', '/api/v1/registrations', null, { email, full_name: 'Robo Applicant', department_id: robotics, requested_roles: ['operator'], reason: 'builds robots' })).status).toBe(202);
      const verify = await h.waitForMail((m) => m.to === email && m.subject.includes('Confirm'), 'verify mail');
      const v = await h.api('POST', '/api/v1/registrations/verify', null, { token: tokenIn(verify.text, 'rt') });
      expect(v.status).toBe(200);
      const id = v.body.data.id as string;
      workflowIds.push(`user-registration/${id}`);

      // Email, in the reviewer's language, linking to the console's review page.
      const mail = await h.waitForMail((m) => m.to === 'wang.reviewer@example.com' && m.text.includes(id), 'zh-CN review notice');
      expect(mail.subject).toBe('Robo Applicant 的注册申请等待部门审核');
      expect(mail.text).toContain(`请在 Hostflow 中审核：${PUBLIC_BASE}/admin/registrations（API：GET /api/v1/registrations/${id}）`);
      expect(mail.text).toContain('理由：builds robots');
      // The in-app inbox.
      const inbox = await h.until(async () => (await h.api('GET', '/api/v1/messages', wang.token)).body.data.items.find((m: { event: string }) => m.event === 'registration.department_review'), 'inbox message');
      expect(inbox.subject).toBe('Robo Applicant 的注册申请等待部门审核');
      // The group robot: signed (the stand-in checks it), markdown, ending with the console link; never a signed action link.
      await h.until(async () => ding.accepted.length === 1 && hook.accepted.length === 1, 'robot and webhook');
      const md = (ding.accepted[0]!.body.markdown as { text: string }).text;
      expect(md).toContain('Robo Applicant <robo.applicant@example.com>'.replace(/[<>]/g, (c) => `\\${c}`));
      expect(md.trimEnd().endsWith(`[在 Hostflow 中查看（需登录）](${PUBLIC_BASE}/admin/registrations)`)).toBe(true);
      expect(md).not.toMatch(/token=|\/notifications\/actions\//);
      expect(hook.accepted[0]!.body).toMatchObject({ event: 'registration.department_review', event_key: `user-registration/${id}/department-review/1`, data: { registrationId: id, name: 'Robo Applicant' } });
      // The send log explains each message.
      const log = await h.api('GET', `/api/v1/notifications/log?event_key=${encodeURIComponent(`user-registration/${id}/department-review/1`)}`, admin.token);
      expect(log.body.data.items.map((r: { channel: string; status: string; language: string }) => `${r.channel}:${r.status}:${r.language}`).sort()).toEqual(['dingtalk:sent:zh-CN', 'email:sent:zh-CN', 'inbox:sent:zh-CN', 'webhook:sent:en']);

      // The same activity again (a retry after the sends): nothing goes out twice.
      const acts = createRegistrationMailActivities({ em: h.db.em, vault: h.vault, logger: createLogger({ level: 'silent' }), mailer: createTransport(h.smtp.url), mailFrom: 'hostflow@test', publicBaseUrl: PUBLIC_BASE });
      const mailsBefore = h.smtp.messages.length;
      expect(await acts.notifyRegistrationReviewers({ registrationId: id, event: 'department-review', round: 1 })).toEqual({ sent: 0, skipped: 0, duplicate: 4 });
      expect([h.smtp.messages.length, ding.accepted.length, ding.received.length]).toEqual([mailsBefore, 1, 1]);

      // Rejection: the applicant (an address, not a user) is told in a transactional mail (no opt-out); the webhook hears it.
      expect((await h.api('POST', `/api/v1/registrations/${id}/department-review`, wang.token, { decision: 'reject', comment: 'not this year' })).status).toBe(200);
      const rejected = await h.waitForMail((m) => m.to === email && m.subject === 'Your Hostflow registration was rejected', 'rejection');
      expect(rejected.text).toContain('Reason: not this year');
      expect(rejected.text).not.toContain('Unsubscribe');
      await h.until(async () => hook.accepted.some((r) => r.body.event === 'registration.rejected'), 'rejection webhook');
      const [rejRow] = await h.db.em.fork().find(NotificationSchema, { eventKey: `user-registration/${id}/rejected`, channel: 'email' });
      expect(rejRow).toMatchObject({ event: 'registration.rejected', recipient: email, status: 'sent', attempts: 1 });

      // A notice the old email-only path (sendOnce) had inserted but not sent when the worker stopped:
      // the center finds it by its key, renders it from the catalogue and sends it, once.
      const em = h.db.em.fork();
      const legacyKey = `user-registration/${id}/department-reminder/1`;
      em.create(NotificationSchema, { eventKey: legacyKey, recipient: 'wang.reviewer@example.com', channel: 'email', subject: 'Reminder: registration of Robo Applicant waits for department review', body: '(not rendered yet)' });
      await em.flush();
      const r = await acts.notifyRegistrationReviewers({ registrationId: id, event: 'department-reminder', round: 1 });
      expect(r).toEqual({ sent: 2, skipped: 0, duplicate: 0 }); // the legacy email row + the inbox
      const reminder = await h.waitForMail((m) => m.to === 'wang.reviewer@example.com' && m.subject.startsWith('提醒：'), 'reminder from the legacy row');
      expect(reminder.text).not.toContain('(not rendered yet)');
      const rows = await h.db.em.fork().find(NotificationSchema, { eventKey: legacyKey });
      expect(rows.map((x) => `${x.channel}:${x.status}:${x.event}:${x.attempts}`).sort()).toEqual(['email:sent:registration.department_reminder:1', 'inbox:sent:registration.department_reminder:1']);
      expect((await acts.notifyRegistrationReviewers({ registrationId: id, event: 'department-reminder', round: 1 })).duplicate).toBe(2);
      expect((await h.mails()).filter((m) => m.subject.startsWith('提醒：') && m.text.includes(id))).toHaveLength(1);
    } finally {
      await ding.stop();
      await hook.stop();
    }
  });

  it('no token (verify, resubmit, activation) is in any registration workflow history', async () => {
    expect(secrets.length).toBeGreaterThanOrEqual(8);
    await h.assertNoSecretsInHistories(workflowIds, secrets);
    // The scan itself finds what is there.
    const [first] = workflowIds;
    await expect(h.assertNoSecretsInHistories([first!], [first!.split('/')[1]!])).rejects.toThrow(/secret found/);
  });
});
