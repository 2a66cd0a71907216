// The console's build (npm run build:web) and dev server (npm run dev:web, proxied to the API).
import { defineConfig } from 'vite';
import vue from '@vitejs/plugin-vue';
import { fileURLToPath } from 'node:url';

const api = process.env.HOSTFLOW_API_URL ?? `http://127.0.0.1:${process.env.API_PORT ?? 3000}`;

export default defineConfig({
  root: fileURLToPath(new URL('.', import.meta.url)),
  plugins: [vue()],
  resolve: { alias: { '@': fileURLToPath(new URL('./src', import.meta.url)) } },
  build: {
    outDir: 'dist',
    emptyOutDir: true,
    // noVNC (the VNC page) uses top-level await.
    target: 'es2022',
    // No inline scripts (the CSP forbids them): modulepreload via link tags only.
    modulePreload: { polyfill: false },
    chunkSizeWarningLimit: 1500,
    reportCompressedSize: false,
    rollupOptions: {
      output: {
        // Element Plus and the Vue runtime in long-cached chunks of their own; ECharts stays in the
        // lazily loaded dashboard chunk so other first screens never download it.
        manualChunks(id: string) {
          if (/node_modules\/(element-plus|@element-plus)\//.test(id)) return 'element-plus';
          if (/node_modules\/(@vue|vue|vue-router|pinia|vue-i18n|@intlify)\//.test(id)) return 'vue';
          return undefined;
        },
      },
    },
  },
  server: {
    host: '127.0.0.1',
    proxy: {
      '/api': { target: api, changeOrigin: false },
      '/console-config.json': { target: api },
      '/healthz': { target: api },
    },
  },
});
