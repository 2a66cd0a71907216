import { ref } from 'vue';
import { api, unwrap } from '@/api/client';

/** The MFA step-up dialog's state: the API answered 40103, the user enters a code, the call is retried. */
export const stepUpState = ref<{ open: boolean; resolve?: (ok: boolean) => void }>({ open: false });

export function requestStepUp(): Promise<boolean> {
  return new Promise((resolve) => {
    stepUpState.value = { open: true, resolve };
  });
}

export async function submitStepUp(input: { totp_code?: string; recovery_code?: string }): Promise<void> {
  await unwrap(api.POST('/api/v1/auth/mfa/verify', { body: input }));
  stepUpState.value.resolve?.(true);
  stepUpState.value = { open: false };
}

export function cancelStepUp(): void {
  stepUpState.value.resolve?.(false);
  stepUpState.value = { open: false };
}
