#!/usr/bin/env node
// The `swoosh` command. In a checkout (src/ beside bin/) it runs the TypeScript
// CLI through tsx's loader, so an edit takes effect at once; an installed
// package ships the compiled dist/ (`npm run build`) and runs that.
import { existsSync } from "node:fs";
import { URL } from "node:url";

const sourceMain = new URL("../src/cli/main.ts", import.meta.url);
let main;
if (existsSync(sourceMain)) {
  const { register } = await import("tsx/esm/api");
  register();
  ({ main } = await import(sourceMain.href));
} else {
  ({ main } = await import("../dist/cli/main.js"));
}
process.exitCode = await main(process.argv);
