// @ts-check
import tseslint from 'typescript-eslint';
import globals from 'globals';
import { builtinModules } from 'node:module';

const nodeBuiltins = [...builtinModules, ...builtinModules.map((m) => `node:${m}`)];

export default tseslint.config(
  { ignores: ['node_modules/**', '.data/**', 'dist/**', 'coverage/**', 'web/dist/**', 'web/src/api/schema.d.ts'] },
  ...tseslint.configs.recommended,
  {
    languageOptions: { globals: { ...globals.node } },
    rules: {
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
      '@typescript-eslint/consistent-type-imports': 'error',
    },
  },
  {
    // The console runs in the browser (its .vue files are type-checked by vue-tsc, not linted here).
    files: ['web/src/**/*.ts'],
    languageOptions: { globals: { ...globals.browser } },
  },
  {
    // Workflow code runs in Temporal's deterministic sandbox: no Node built-ins, no I/O,
    // activities only as types (called through proxyActivities).
    files: ['workflows/**/*.ts', 'test/fixtures/workflows/**/*.ts'],
    languageOptions: { globals: {} },
    rules: {
      'no-restricted-imports': [
        'error',
        {
          paths: nodeBuiltins.map((name) => ({ name, message: 'Node built-ins are not allowed in workflow code (determinism).' })),
          patterns: [
            { group: ['../activities/*', '../../activities/*'], allowTypeImports: true, message: 'Import activities only as types and call them via proxyActivities.' },
            { group: ['**/db/**', '**/api/**', '**/config/**'], allowTypeImports: true, message: 'Workflow code may not touch the DB, API or config (types only).' },
          ],
        },
      ],
      'no-restricted-globals': ['error', { name: 'process', message: 'No env or process in workflows.' }, { name: 'setInterval', message: 'Use sleep()/condition() in workflows.' }],
    },
  },
);
