/**
 * Child process for the data-dir lock race test: waits until the wall-clock
 * moment given, tries `lockDataDir`, prints "GOT" or "REFUSED", holds what it
 * got for a while (so every contender tries while it is held), then releases.
 *
 * Run: node --import tsx test/support/lock-contender.ts DATA_DIR START_AT_MS HOLD_MS
 */
import { lockDataDir } from "../../src/engine/dir-lock.ts";

const [dataDir, startAtText, holdText] = process.argv.slice(2);
const startAtMs = Number(startAtText);
// Spin the last stretch: the contenders should reach the lock within the same millisecond.
while (Date.now() < startAtMs - 20) await new Promise((resolve) => setTimeout(resolve, 5));
while (Date.now() < startAtMs);
try {
  const lock = await lockDataDir(dataDir as string);
  process.stdout.write("GOT\n");
  await new Promise((resolve) => setTimeout(resolve, Number(holdText)));
  await lock.release();
} catch (error) {
  process.stdout.write(`REFUSED ${(error as Error).message}\n`);
}
