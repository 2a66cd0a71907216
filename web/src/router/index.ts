import { createRouter, createWebHistory, type RouteRecordRaw } from 'vue-router';
import { useAuthStore } from '@/stores/auth';
import { remoteRoutes } from './remote';

declare module 'vue-router' {
  interface RouteMeta {
    /** Public page (no sign-in). */
    public?: boolean;
    /** The permission the page needs (as GET /api/v1/auth/me lists them); any of several with `anyOf`. */
    permission?: string;
    anyOf?: string[];
    /** Menu group ('main', 'admin', 'remote'); absent: not in the menu. */
    menu?: 'main' | 'admin' | 'remote';
    /** i18n key of the menu label. */
    title?: string;
    icon?: string;
  }
}

const children: RouteRecordRaw[] = [
  { path: '', name: 'dashboard', component: () => import('@/views/dashboard/DashboardView.vue'), meta: { menu: 'main', title: 'menu.dashboard', icon: 'Odometer', permission: 'report.read' } },
  { path: 'hosts', name: 'hosts', component: () => import('@/views/hosts/HostList.vue'), meta: { menu: 'main', title: 'menu.hosts', icon: 'Monitor', permission: 'onboarding.read' } },
  { path: 'hosts/onboard/:batchId', name: 'host-batch', component: () => import('@/views/hosts/BatchOnboarding.vue'), meta: { permission: 'onboarding.read' } },
  { path: 'hosts/:id', name: 'host', component: () => import('@/views/hosts/HostDetail.vue'), meta: { permission: 'host.read' } },
  { path: 'account-openings', name: 'account-openings', component: () => import('@/views/account-openings/AccountOpeningList.vue'), meta: { menu: 'main', title: 'menu.accountOpenings', icon: 'Stamp', permission: 'account_opening.read' } },
  { path: 'allocations', name: 'allocations', component: () => import('@/views/allocations/AllocationList.vue'), meta: { menu: 'main', title: 'menu.allocations', icon: 'Cpu', permission: 'allocation.read' } },
  { path: 'allocations/:id', name: 'allocation', component: () => import('@/views/allocations/AllocationDetail.vue'), meta: { permission: 'allocation.read' } },
  { path: 'customers', name: 'customers', component: () => import('@/views/customers/CustomerList.vue'), meta: { menu: 'main', title: 'menu.customers', icon: 'OfficeBuilding', permission: 'customer.read' } },
  { path: 'customers/:id', name: 'customer', component: () => import('@/views/customers/CustomerDetail.vue'), meta: { permission: 'customer.read' } },
  { path: 'ssh-keys', name: 'ssh-keys', component: () => import('@/views/customers/SshKeys.vue'), meta: { menu: 'main', title: 'menu.sshKeys', icon: 'Key', permission: 'ssh_key.manage' } },
  { path: 'audit', name: 'audit', component: () => import('@/views/audit/AuditLog.vue'), meta: { menu: 'main', title: 'menu.audit', icon: 'Document', permission: 'audit.read' } },
  { path: 'admin/users', name: 'users', component: () => import('@/views/admin/UserList.vue'), meta: { menu: 'admin', title: 'menu.users', icon: 'User', permission: 'user.read' } },
  { path: 'admin/roles', name: 'roles', component: () => import('@/views/admin/RoleList.vue'), meta: { menu: 'admin', title: 'menu.roles', icon: 'Lock', permission: 'role.read' } },
  { path: 'admin/departments', name: 'departments', component: () => import('@/views/admin/DepartmentList.vue'), meta: { menu: 'admin', title: 'menu.departments', icon: 'Share', permission: 'department.manage' } },
  { path: 'admin/registrations', name: 'registrations', component: () => import('@/views/admin/RegistrationReview.vue'), meta: { menu: 'admin', title: 'menu.registrations', icon: 'Checked', permission: 'registration.approve_roles' } },
  { path: 'profile', name: 'profile', component: () => import('@/views/profile/ProfileView.vue'), meta: { title: 'app.profile' } },
  { path: 'forbidden', name: 'forbidden', component: () => import('@/views/ForbiddenView.vue') },
  ...remoteRoutes,
];

export const routes: RouteRecordRaw[] = [
  { path: '/login', name: 'login', component: () => import('@/views/auth/LoginView.vue'), meta: { public: true } },
  { path: '/change-password', name: 'change-password', component: () => import('@/views/auth/ChangePassword.vue') },
  { path: '/', component: () => import('@/layouts/MainLayout.vue'), children },
  { path: '/:pathMatch(.*)*', redirect: '/' },
];

export const router = createRouter({ history: createWebHistory(), routes });

/** May the signed-in user open a route? (the menu uses the same check) */
export function allowed(meta: RouteRecordRaw['meta'], can: (p: string) => boolean): boolean {
  if (!meta) return true;
  if (meta.permission && !can(meta.permission)) return false;
  if (meta.anyOf && !meta.anyOf.some(can)) return false;
  return true;
}

router.beforeEach(async (to) => {
  const auth = useAuthStore();
  await auth.restore();
  if (to.meta.public) return auth.me && to.name === 'login' ? { path: '/' } : true;
  if (!auth.me) return { name: 'login', query: { ...(to.fullPath !== '/' ? { redirect: to.fullPath } : {}), ...(auth.endedReason ? { reason: auth.endedReason } : {}) } };
  if ((auth.me.restricted === 'password_change' || auth.me.must_change_password) && to.name !== 'change-password') return { name: 'change-password' };
  if (auth.me.restricted === 'mfa_enrollment' && to.name !== 'profile') return { name: 'profile', query: { enrol: '1' } };
  if (to.name === 'dashboard' && !allowed(to.meta, auth.can)) {
    // Customers land on their machines, requesters on their requests.
    if (auth.can('allocation.read')) return { name: 'allocations' };
    if (auth.can('account_opening.read')) return { name: 'account-openings' };
    return { name: 'profile' };
  }
  if (!allowed(to.meta, auth.can)) return { name: 'forbidden' };
  return true;
});
