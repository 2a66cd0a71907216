import { createApp } from 'vue';
import { createPinia } from 'pinia';
// Element Plus components (and their CSS) are imported per page by unplugin-vue-components
// (web/vite.config.ts); the imperative APIs the pages call need their styles here.
import 'element-plus/es/components/base/style/css';
import 'element-plus/es/components/message/style/css';
import 'element-plus/es/components/message-box/style/css';
import { registerIcons } from './icons';
import App from './App.vue';
import { router } from './router';
import { i18n } from './locales';
import { setClientHooks } from './api/client';
import { useAuthStore } from './stores/auth';
import { requestStepUp } from './composables/useStepUp';
import './theme.css';
import './styles.css';

const app = createApp(App);
const pinia = createPinia();
app.use(pinia).use(i18n);
registerIcons(app);

const auth = useAuthStore(pinia);
setClientHooks({
  token: () => auth.token,
  refresh: async () => {
    const ok = await auth.refresh();
    if (!ok) await router.push({ name: 'login', query: { reason: auth.endedReason ?? 'expired' } });
    return ok;
  },
  stepUp: requestStepUp,
});
app.use(router);
app.mount('#app');
