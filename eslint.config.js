// Lint configuration: typescript-eslint's strict type-checked rules over the TypeScript
// sources (src, test, bench); plain JavaScript files get the untyped recommended rules, with browser
// globals for the dashboard page and Node.js ones elsewhere.
import js from "@eslint/js";
import globals from "globals";
import tseslint from "typescript-eslint";

export default tseslint.config(
  { ignores: ["dist/", "node_modules/", "zeek/", "bench/report.*"] },
  js.configs.recommended,
  {
    files: ["src/**/*.ts", "test/**/*.ts", "bench/**/*.ts"],
    extends: [tseslint.configs.strictTypeChecked],
    languageOptions: {
      parserOptions: { projectService: true, tsconfigRootDir: import.meta.dirname },
    },
    rules: {
      // Numbers and booleans read naturally in log lines and messages; objects still need a decision.
      "@typescript-eslint/restrict-template-expressions": ["error", { allowNumber: true, allowBoolean: true }],
      // With noUncheckedIndexedAccess, `!` marks an index the surrounding code has just bounded.
      "@typescript-eslint/no-non-null-assertion": "off",
      // `() => void` callbacks written as arrow shorthand are a plain idiom, not a confusion.
      "@typescript-eslint/no-confusing-void-expression": ["error", { ignoreArrowShorthand: true }],
      // A caught error is passed on as it came; wrapping it would lose its class and code.
      "@typescript-eslint/prefer-promise-reject-errors": ["error", { allowThrowingUnknown: true }],
      // `const { dropped, ...rest } = o` is how a key is left out of a copy.
      "@typescript-eslint/no-unused-vars": ["error", { ignoreRestSiblings: true }],
    },
  },
  {
    files: ["test/**/*.ts"],
    rules: {
      // Hooks guard against set-up that threw before assigning (`let env: TestEnv` set in
      // beforeEach), and fuzz tests probe values the types rule out.
      "@typescript-eslint/no-unnecessary-condition": "off",
    },
  },
  {
    files: ["**/*.js", "**/*.mjs", "*.config.ts"],
    ignores: ["src/controller/web/**"],
    extends: [tseslint.configs.recommended],
    languageOptions: { globals: globals.node },
  },
  {
    // The dashboard's page runs in the browser as ES modules, not in Node.js.
    files: ["src/controller/web/**/*.js"],
    extends: [tseslint.configs.recommended],
    languageOptions: { globals: globals.browser, sourceType: "module" },
    // typescript-eslint turns no-undef off because the compiler checks names; nothing
    // type-checks these files, so a misspelt global must still be an error.
    rules: { "no-undef": "error" },
  },
);
