// Lint configuration: typescript-eslint's strict type-checked rules over the TypeScript
// sources (src, test, bench); plain JavaScript files get the untyped recommended rules.
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
  },
  {
    files: ["**/*.js", "**/*.mjs", "*.config.ts"],
    extends: [tseslint.configs.recommended],
    languageOptions: { globals: globals.node },
  },
);
