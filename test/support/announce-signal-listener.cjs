// Preloaded (node --require) by a test: writes one line to stderr when the first
// SIGTERM listener is added through process.on, so the test knows the moment
// bin/swoosh.js started keeping the signal without timing guesses (Node's own
// native SIGTERM handler makes the kernel's caught-signal mask useless for that).
"use strict";
const on = process.on;
let announced = false;
process.on = function (event, listener) {
  const result = on.call(this, event, listener);
  // Said after the listener is in place, never before.
  if (event === "SIGTERM" && !announced) {
    announced = true;
    // The caller's frame, so the test can tell which code installed it.
    const caller = (new Error().stack ?? "").split("\n")[2] ?? "";
    process.stderr.write(`test: a SIGTERM listener is installed ${caller.trim()}\n`);
  }
  return result;
};
