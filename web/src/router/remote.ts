import type { RouteRecordRaw } from 'vue-router';

/**
 * Remote-access pages (web terminal, VNC, session recordings), under views/remote/: each record
 * is a child of the main layout, with meta.permission (the one the API route needs), meta.menu
 * ('remote' puts it under the Remote access menu) and meta.title (an i18n key). The terminal and
 * VNC pages open from an allocation (its detail page links them).
 */
export const remoteRoutes: RouteRecordRaw[] = [
  { path: 'remote/sessions', name: 'remote-sessions', component: () => import('@/views/remote/SessionList.vue'), meta: { permission: 'remote_session.manage', menu: 'remote', title: 'menu.remoteSessions' } },
  { path: 'remote/sessions/:id/playback', name: 'remote-playback', component: () => import('@/views/remote/PlaybackView.vue'), meta: { permission: 'remote_session.manage', title: 'remote.playback' } },
  { path: 'remote/terminal/:allocationId', name: 'remote-terminal', component: () => import('@/views/remote/TerminalView.vue'), meta: { permission: 'session.connect', title: 'remote.terminal' } },
  { path: 'remote/vnc/:allocationId', name: 'remote-vnc', component: () => import('@/views/remote/VncView.vue'), meta: { permission: 'session.connect', title: 'remote.vnc' } },
];
