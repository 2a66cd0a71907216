import { defineConfig } from 'vitest/config';
import vue from '@vitejs/plugin-vue';
import Components from 'unplugin-vue-components/vite';
import { ElementPlusResolver } from 'unplugin-vue-components/resolvers';
import { fileURLToPath } from 'node:url';

export default defineConfig({
  test: {
    fileParallelism: true,
    maxWorkers: 2,
    projects: [
      {
        test: {
          name: 'server',
          // Temporal's worker is native code: run test files in forked processes.
          pool: 'forks',
          include: ['test/**/*.test.ts', 'web/e2e/**/*.test.ts'],
          globalSetup: ['test/global-setup.ts'],
          // After each file: its request histogram to the run's folder; the slowest routes are printed at the end.
          setupFiles: ['test/setup/route-timings.ts'],
          testTimeout: 60_000,
          hookTimeout: 180_000,
        },
      },
      {
        // Console components mounted with @vue/test-utils in happy-dom (no server, no Temporal),
        // Element Plus resolved per component as in the build (web/vite.config.ts).
        plugins: [vue(), Components({ resolvers: [ElementPlusResolver({ importStyle: false })], dts: false, dirs: [] })],
        resolve: { alias: { '@': fileURLToPath(new URL('./web/src', import.meta.url)) } },
        test: {
          name: 'components',
          environment: 'happy-dom',
          include: ['web/test/**/*.test.ts'],
          testTimeout: 30_000,
          server: { deps: { inline: ['element-plus'] } },
        },
      },
    ],
  },
});
