import { defineStore } from 'pinia';
import { ref, watch } from 'vue';

export type Locale = 'zh-CN' | 'en';
const browserZone = () => Intl.DateTimeFormat().resolvedOptions().timeZone;
const initialLocale = (): Locale => {
  const saved = localStorage.getItem('hf.locale');
  if (saved === 'en' || saved === 'zh-CN') return saved;
  return navigator.language.toLowerCase().startsWith('zh') ? 'zh-CN' : 'en';
};

/** Language and time zone (dates everywhere are shown in this zone), kept in localStorage. */
export const usePreferencesStore = defineStore('preferences', () => {
  const locale = ref<Locale>(initialLocale());
  const timeZone = ref<string>(localStorage.getItem('hf.tz') ?? browserZone());
  watch(locale, (v) => localStorage.setItem('hf.locale', v));
  watch(timeZone, (v) => localStorage.setItem('hf.tz', v));
  return { locale, timeZone };
});
