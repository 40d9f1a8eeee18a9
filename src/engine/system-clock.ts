/** The real wall clock, the one `Clock` that reads time; only the engine uses it. */
import type { Clock } from "../core/hlc.ts";

export const systemClock: Clock = {
  nowMs: () => Date.now(),
};
