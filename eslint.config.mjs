// Lint: typescript-eslint's recommended rules (syntax-only, fast) plus a few that catch real bugs.
import js from '@eslint/js';
import tseslint from 'typescript-eslint';

export default tseslint.config(
  { ignores: ['dist/**', 'node_modules/**', 'libs/db/src/generated/**', 'apps/dashboard/dist/**', '.data/**', 'coverage/**', '**/*.js', '**/*.mjs', '**/*.cjs'] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    rules: {
      '@typescript-eslint/no-explicit-any': 'off',
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_', caughtErrors: 'none' }],
      '@typescript-eslint/no-require-imports': 'off',
      '@typescript-eslint/no-this-alias': 'off',
      '@typescript-eslint/no-unsafe-function-type': 'off',
      '@typescript-eslint/no-empty-object-type': 'off',
      'no-empty': ['error', { allowEmptyCatch: true }],
      'no-constant-condition': ['error', { checkLoops: false }],
      eqeqeq: ['error', 'smart'],
      'no-console': 'off',
      // Libraries are used through their front doors: `@berth/<lib>` (and the few entries that are
      // declared as their own: `@berth/db/migrate`, `@berth/runtime/conformance`, `@berth/oci/conformance`),
      // never a path into another library's src/.
      'no-restricted-imports': [
        'error',
        {
          patterns: [
            { group: ['**/libs/*/src', '**/libs/*/src/**'], message: 'import the library through its front door: @berth/<lib>' },
            {
              group: ['@berth/*/**', '!@berth/db/migrate', '!@berth/runtime/conformance', '!@berth/oci/conformance'],
              message: 'import @berth/<lib> (or one of its declared entries), not a path inside it',
            },
          ],
        },
      ],
    },
  },
  {
    // Inside a library, a relative path never leaves it: another library is @berth/<lib>.
    files: ['libs/**/*.ts'],
    rules: {
      'no-restricted-imports': [
        'error',
        {
          patterns: [
            { regex: '^\\.\\.?/.*\\bsrc/', message: 'another library is imported as @berth/<lib>, not by a relative path into its src/' },
            { group: ['**/apps/**'], message: 'a library never imports an app' },
            {
              group: ['@berth/*/**', '!@berth/db/migrate', '!@berth/runtime/conformance', '!@berth/oci/conformance'],
              message: 'import @berth/<lib> (or one of its declared entries), not a path inside it',
            },
          ],
        },
      ],
    },
  },
);
