// The console's build (npm run build:web) and dev server (npm run dev:web, proxied to the API).
import { defineConfig } from 'vite';
import vue from '@vitejs/plugin-vue';
import Components from 'unplugin-vue-components/vite';
import { ElementPlusResolver } from 'unplugin-vue-components/resolvers';
import { fileURLToPath } from 'node:url';

const api = process.env.HOSTFLOW_API_URL ?? `http://127.0.0.1:${process.env.API_PORT ?? 3000}`;

export default defineConfig({
  root: fileURLToPath(new URL('.', import.meta.url)),
  plugins: [
    vue(),
    // Element Plus per component: each <el-…> a page uses is imported (with its CSS) by that page's
    // chunk, instead of the whole library and its full stylesheet on the first screen. No .d.ts is
    // written (vue-tsc type-checks against element-plus' global component types instead).
    Components({ resolvers: [ElementPlusResolver({ importStyle: 'css' })], dts: false, dirs: [] }),
  ],
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
        // The Vue runtime in a long-cached chunk of its own. Element Plus components go with the
        // route chunks that use them (shared ones into common chunks); ECharts stays in the lazily
        // loaded dashboard chunk so other first screens never download it.
        manualChunks(id: string) {
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
