import { onBeforeUnmount, onMounted } from 'vue';

/** Runs `fn` now and every `ms` while the component is mounted (progress of long operations). */
export function usePolling(fn: () => Promise<unknown>, ms = 2000) {
  let t: ReturnType<typeof setTimeout> | undefined;
  let stopped = false;
  const tick = async () => {
    try {
      await fn();
    } catch {
      // the next tick tries again; the page shows the last good state
    }
    if (!stopped) t = setTimeout(() => void tick(), ms);
  };
  onMounted(() => void tick());
  onBeforeUnmount(() => {
    stopped = true;
    clearTimeout(t);
  });
  return { refresh: fn };
}
