import type { RouteRecordRaw } from 'vue-router';

/**
 * Remote-access pages (web terminal, VNC, session recordings) go here, under views/remote/:
 * each record is a child of the main layout, with meta.permission (the one the API route needs),
 * meta.menu ('remote' puts it under the Remote access menu) and meta.title (an i18n key).
 * Example:
 *   { path: 'remote/terminal/:allocationId', name: 'remote-terminal', component: () => import('@/views/remote/TerminalView.vue'),
 *     meta: { permission: 'session.connect', menu: 'remote', title: 'menu.remote' } }
 */
export const remoteRoutes: RouteRecordRaw[] = [];
