// Small browser helpers the remote-access pages share.
import { api, unwrap } from '@/api/client';

/** ws(s)://<this origin><path>: the API serves the console, the terminal and the VNC proxy. */
export const wsUrl = (path: string) => `${location.protocol === 'https:' ? 'wss' : 'ws'}://${location.host}${path}`;

export async function copyText(text: string): Promise<void> {
  await navigator.clipboard?.writeText(text).catch(() => undefined);
}

/** The clipboard's text ('' when the browser refuses: no permission, or not a secure context). */
export async function readClipboard(): Promise<string> {
  return (await navigator.clipboard?.readText().catch(() => '')) ?? '';
}

/** Hands a downloaded blob to the browser as a file. */
export function saveBlob(blob: Blob, name: string): void {
  const url = URL.createObjectURL(blob);
  const a = document.createElement('a');
  a.href = url;
  a.download = name;
  document.body.appendChild(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 10_000);
}

/** Uploads a file's bytes to `path` on the allocation's host (SFTP through the API). */
export function uploadFile(allocationId: string, path: string, file: Blob) {
  return unwrap(
    api.POST('/api/v1/allocations/{id}/files', {
      params: { path: { id: allocationId }, query: { path } },
      body: file as never,
      bodySerializer: (b: unknown) => b as BodyInit,
      headers: { 'content-type': 'application/octet-stream' },
    }),
  );
}

/** bytes → "1.2 MiB". */
export function formatBytes(n: number): string {
  if (n < 1024) return `${n} B`;
  if (n < 1024 * 1024) return `${(n / 1024).toFixed(1)} KiB`;
  if (n < 1024 ** 3) return `${(n / 1024 / 1024).toFixed(1)} MiB`;
  return `${(n / 1024 ** 3).toFixed(2)} GiB`;
}

/** Downloads the allocation's `.rdp` file (the host's published RDP entry). */
export async function downloadRdp(allocationId: string): Promise<void> {
  const { data, error, response } = await api.GET('/api/v1/allocations/{id}/rdp', { params: { path: { id: allocationId } }, parseAs: 'blob' });
  if (!data) throw new Error((error as { message?: string } | undefined)?.message ?? response.statusText);
  const name = /filename="([^"]+)"/.exec(response.headers.get('content-disposition') ?? '')?.[1] ?? 'host.rdp';
  saveBlob(data as Blob, name);
}

/**
 * A VNC password the user just revealed, handed from the allocation page to the noVNC page in
 * memory only (never stored): the VNC page answers the server's password request with it once.
 */
const vncHandoff = new Map<string, string>();
export const handOffVncPassword = (allocationId: string, password: string) => void vncHandoff.set(allocationId, password);
export function takeVncPassword(allocationId: string): string | null {
  const p = vncHandoff.get(allocationId) ?? null;
  vncHandoff.delete(allocationId);
  return p;
}
