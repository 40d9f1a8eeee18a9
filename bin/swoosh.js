#!/usr/bin/env node
// The `swoosh` command. In a checkout (src/ beside bin/, dev dependencies
// installed) it runs the TypeScript CLI through tsx's loader, so an edit takes
// effect at once; otherwise (an installed package, or a checkout installed
// without dev dependencies) it runs the compiled dist/ (`npm run build`).
import { existsSync } from "node:fs";
import { URL } from "node:url";

// `serve` installs its SIGTERM/SIGINT/SIGHUP handlers once its modules are
// loaded (a second or two): a signal before that would kill it by Node's
// default (exit 143, no message). Kept here instead, serve's handlers act on
// it when they come (src/cli/shutdown.ts): it stops before serving and exits
// 0. What runs before this line (Node's own start, ~0.1 s, and a loader given
// with --import) is not covered.
if (process.argv[2] === "serve") {
  const signals = [];
  const keep = (signal) => signals.push(signal);
  for (const signal of ["SIGTERM", "SIGINT", "SIGHUP"]) process.on(signal, keep);
  globalThis[Symbol.for("swoosh.earlySignals")] = {
    signals,
    release: () => {
      for (const signal of ["SIGTERM", "SIGINT", "SIGHUP"]) process.off(signal, keep);
    },
  };
}

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
