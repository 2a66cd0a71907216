import type { App } from 'vue';
import {
  Bell, Calendar, Checked, CircleCheck, CircleClose, Clock, Close, Connection, CopyDocument, Cpu, Delete, Document, Download, Edit, Film, Key, Link,
  Lock, Monitor, Odometer, OfficeBuilding, Plus, Refresh, Search, Setting, Share, Stamp, Upload, User, UserFilled, VideoCamera, VideoPlay, View, Warning,
} from '@element-plus/icons-vue';

/**
 * The icons the console uses, registered globally by name (menus name them in route meta, buttons
 * as `:icon="'CopyDocument'"`). Only these: registering all ~290 icons of @element-plus/icons-vue
 * put 170 KB of JS on the first screen. A page that names another icon adds it here (or imports
 * it where it is used).
 */
const ICONS = {
  Bell, Calendar, Checked, CircleCheck, CircleClose, Clock, Close, Connection, CopyDocument, Cpu, Delete, Document, Download, Edit, Film, Key, Link,
  Lock, Monitor, Odometer, OfficeBuilding, Plus, Refresh, Search, Setting, Share, Stamp, Upload, User, UserFilled, VideoCamera, VideoPlay, View, Warning,
};

export function registerIcons(app: App): void {
  for (const [name, c] of Object.entries(ICONS)) app.component(name, c);
}
