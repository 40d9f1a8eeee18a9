// Lint rules: typescript-eslint's type-aware recommended set, plus the
// determinism guard for the pure layers (core and domain never read a clock or randomness).
import js from "@eslint/js";
import tseslint from "typescript-eslint";

export default tseslint.config(
  { ignores: ["node_modules/**", "data/**", "dist/**", "bench/results/**", ".scratch-*/**", ".tmp/**"] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    languageOptions: {
      parserOptions: { projectService: true, tsconfigRootDir: import.meta.dirname },
    },
    rules: {
      "@typescript-eslint/no-floating-promises": [
        "error",
        // node:test's describe/it return promises the runner itself awaits.
        { allowForKnownSafeCalls: [{ from: "package", package: "node:test", name: ["describe", "it", "test", "suite", "before", "after"] }] },
      ],
      "@typescript-eslint/consistent-type-imports": "error",
      "@typescript-eslint/no-unused-vars": ["error", { argsIgnorePattern: "^_", varsIgnorePattern: "^_" }],
      "no-constant-condition": ["error", { checkLoops: false }],
    },
  },
  {
    files: ["src/core/**/*.ts", "src/domain/**/*.ts"],
    rules: {
      "no-restricted-properties": [
        "error",
        { object: "Date", property: "now", message: "The reducer gets time only from the command's HLC." },
        { object: "Math", property: "random", message: "The reducer must be deterministic." },
        { object: "process", property: "env", message: "The reducer must not read the environment." },
        { object: "performance", property: "now", message: "The reducer gets time only from the command's HLC." },
      ],
      "no-restricted-syntax": [
        "error",
        { selector: "NewExpression[callee.name='Date'][arguments.length=0]", message: "No wall clock in the pure layers." },
      ],
    },
  },
  { files: ["bin/**/*.js", "eslint.config.js", "test/support/*.cjs"], ...tseslint.configs.disableTypeChecked },
  { files: ["bin/**/*.js", "test/support/*.cjs"], languageOptions: { globals: { process: "readonly" } } },
);
