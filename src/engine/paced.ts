/**
 * Background work on the main thread in paced steps: snapshots, large reads
 * (GET /state, GET /tasks) and time-travel replays let the event loop run
 * between steps, and pause about as long as each step took, so that commands
 * keep being served while they run.
 */
import { createHash } from "node:crypto";

/** Steps shorter than this are followed by no pause (only a turn of the event loop). */
const STEP_FREE_MS = 0.5;

/**
 * Hands the snapshot's pieces on, letting the event loop run between them
 * (commands keep being served while a large state is written). Empty pieces
 * are only pause points (RecordTextCache.capturedPieces).
 *
 * After each step the snapshot pauses about as long as the step took, so it
 * uses at most about half of the main thread: back to back, its steps held
 * every flush completion and request behind one another and commands waited
 * 10–15 ms while a snapshot ran; paced, they wait about one step.
 */
export async function* slicedPieces(pieces: Iterable<string>, paced: () => boolean): AsyncGenerator<string> {
  const pause = pacer(paced);
  for (const piece of pieces) {
    if (piece.length > 0) yield piece;
    await pause();
  }
}

/** A state's canonical text, gathered: its pieces as UTF-8 bytes, their SHA-256 (the state hash) and length. */
export interface CollectedText {
  readonly stateHash: string;
  readonly pieces: readonly Buffer[];
  readonly byteLength: number;
}

/**
 * Gathers `pieces` as UTF-8 bytes; `check` runs before the first and after
 * each one, and may throw to give the text up. Bytes, not strings: a text is
 * held until its clients have read it, and as buffers it is held outside V8's
 * heap, where the state itself lives (each piece is encoded once, as the
 * socket would have encoded it anyway). Pieces end between members, never
 * inside a string, so each encodes on its own. `keep: false` keeps no piece
 * (`pieces` comes back empty): the hash of a text nobody will be sent.
 */
export async function collectText(pieces: Iterable<string> | AsyncIterable<string>, check: () => void = () => undefined, keep = true): Promise<CollectedText> {
  const hash = createHash("sha256");
  const kept: Buffer[] = [];
  let byteLength = 0;
  check();
  for await (const piece of pieces) {
    const bytes = Buffer.from(piece, "utf8");
    hash.update(bytes);
    byteLength += bytes.length;
    // Not kept: only the hash is wanted, and each piece is let go once hashed.
    if (keep) kept.push(bytes);
    check();
  }
  return { stateHash: hash.digest("hex"), pieces: kept, byteLength };
}

/**
 * Runs `steps` to its end, a step (up to each `yield`) at a time, pausing
 * after each as a snapshot does; resolves with what it returns.
 */
export async function runPaced<T>(steps: Generator<void, T>, paced: () => boolean): Promise<T> {
  const pause = pacer(paced);
  for (;;) {
    const next = steps.next();
    if (next.done === true) return next.value;
    await pause();
  }
}

/** A read keeps pausing for this long after it last saw a command applied. */
const WRITES_RECENT_MS = 250;

/**
 * A `paced` for reads: true while `position` (the applied index) has moved
 * within the last WRITES_RECENT_MS, as far as the read's steps saw, and
 * `paced` says so. A large read on a server with no writes then runs its
 * steps back to back (a turn of the event loop between them, so requests are
 * still served) instead of pausing after each one for nobody: GET /state of
 * a 313 MB state took 11.8 s, now 6.7 s. Any write load keeps the pauses on.
 */
export function pacedWhileAdvancing(position: () => number, paced: () => boolean, nowMs: () => number = () => performance.now()): () => boolean {
  let seen = position();
  let movedAtMs = Number.NEGATIVE_INFINITY;
  return () => {
    const now = position();
    if (now !== seen) {
      seen = now;
      movedAtMs = nowMs();
    }
    return nowMs() - movedAtMs < WRITES_RECENT_MS && paced();
  };
}

/** A pause to await after each step of work, timing the step itself (the time since the last pause ended). */
export function pacer(paced: () => boolean): () => Promise<void> {
  let stepStartedMs = performance.now();
  return async () => {
    await pauseAfterStep(performance.now() - stepStartedMs, paced());
    stepStartedMs = performance.now();
  };
}

/**
 * Lets the event loop run after a step of background work: a pause about as
 * long as the step (so the work takes at most about half the main thread), or
 * only a turn for a short step or when not `paced` (once the engine is
 * closing, no command waits any more, and the final snapshot holds up the exit).
 */
function pauseAfterStep(stepMs: number, paced: boolean): Promise<void> {
  return new Promise<void>((resolve) => (stepMs < STEP_FREE_MS || !paced ? setImmediate(resolve) : setTimeout(resolve, stepMs)));
}
