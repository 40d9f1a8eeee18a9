/**
 * A worker for tests of TimeTravelWorkers (started through bin/ts-worker.js):
 * answers "pid" with its thread id, and exits on "exit".
 */
import { parentPort, threadId } from "node:worker_threads";
import type { MessagePort } from "node:worker_threads";

const port = parentPort as MessagePort;
port.on("message", (message: string) => {
  if (message === "exit") process.exit(0);
  port.postMessage(threadId);
});
