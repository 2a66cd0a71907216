import { createApp } from 'vue';
import { createPinia } from 'pinia';
import ElementPlus from 'element-plus';
import 'element-plus/dist/index.css';
import * as Icons from '@element-plus/icons-vue';
import App from './App.vue';
import { router } from './router';
import { i18n } from './locales';
import { setClientHooks } from './api/client';
import { useAuthStore } from './stores/auth';
import { requestStepUp } from './composables/useStepUp';
import './styles.css';

const app = createApp(App);
const pinia = createPinia();
app.use(pinia).use(i18n).use(ElementPlus);
for (const [name, c] of Object.entries(Icons)) app.component(name, c);

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
