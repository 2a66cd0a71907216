// Mounting helper for component tests: the console's own i18n and a fresh Pinia (the preferences
// store formats dates), the language and time zone fixed so rendered dates are deterministic.
import { mount, type ComponentMountingOptions } from '@vue/test-utils';
import { createPinia, setActivePinia } from 'pinia';
import type { Component } from 'vue';
import { i18n } from '@/locales';
import { usePreferencesStore } from '@/stores/preferences';

export function mountWith<C extends Component>(component: C, options: ComponentMountingOptions<C> = {}, prefs: { locale?: 'en' | 'zh-CN'; timeZone?: string } = {}) {
  const pinia = createPinia();
  setActivePinia(pinia);
  const p = usePreferencesStore();
  p.locale = prefs.locale ?? 'en';
  p.timeZone = prefs.timeZone ?? 'UTC';
  i18n.global.locale.value = p.locale;
  return mount(component, { ...options, global: { plugins: [pinia, i18n], ...(options.global ?? {}) } } as ComponentMountingOptions<C>);
}
