#!/usr/bin/env node
// The `swoosh` command. In a checkout (src/ beside bin/, dev dependencies
// installed) it runs the TypeScript CLI through tsx's loader, so an edit takes
// effect at once; otherwise (an installed package, or a checkout installed
// without dev dependencies) it runs the compiled dist/ (`npm run build`).
import { existsSync } from "node:fs";
import { URL } from "node:url";

async function tsxRegister() {
  try {
    return (await import("tsx/esm/api")).register;
  } catch {
    return null;
  }
}

const sourceMain = new URL("../src/cli/main.ts", import.meta.url);
const register = existsSync(sourceMain) ? await tsxRegister() : null;
let main;
if (register !== null) {
  register();
  ({ main } = await import(sourceMain.href));
} else {
  // dist/ carries source maps (sources inlined): stack traces in the logs then
  // name the TypeScript file and line.
  process.setSourceMapsEnabled(true);
  ({ main } = await import("../dist/cli/main.js"));
}
process.exitCode = await main(process.argv);
