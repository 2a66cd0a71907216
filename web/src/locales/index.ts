import { createI18n } from 'vue-i18n';
import en from './en.json';
import zhCN from './zh-CN.json';

export type MessageSchema = typeof en;
export const i18n = createI18n<[MessageSchema], 'en' | 'zh-CN', false>({
  legacy: false,
  locale: 'en',
  fallbackLocale: 'en',
  messages: { en, 'zh-CN': zhCN },
});
