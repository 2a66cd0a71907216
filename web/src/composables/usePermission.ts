import { useAuthStore } from '@/stores/auth';

/** `can('host.write')`: the permissions GET /api/v1/auth/me lists for this user (the API enforces them regardless). */
export function usePermission() {
  const auth = useAuthStore();
  return { can: (p: string) => auth.can(p) };
}
