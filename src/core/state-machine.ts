/**
 * The reducer contract the engine runs (SPEC G2).
 *
 * A state machine owns a live model (the canonical JSON state plus any derived
 * indexes) and changes it only in `apply`. `apply` reads nothing but the model,
 * the command and its context (HLC, log index, and "now" = the HLC's wall ms):
 * no clock, randomness, environment or unordered iteration.
 *
 * For speed the model is updated in place, under two rules:
 *  1. A refused command leaves the model exactly as it was (validate fully,
 *     then mutate).
 *  2. Values reachable from the state are replaced, never mutated, below the
 *     second level (state → collection → record). `view()` can then copy the
 *     top two levels and hand out a consistent picture that later commands do
 *     not change, which the engine serializes a slice at a time for snapshots.
 *
 * A machine whose state grows large should also offer `capture`: copying the
 * top two levels of 100,000 records takes tens of milliseconds in one go (an
 * event-loop stall every request waits behind), while a capture costs nothing
 * up front and is read a slice at a time.
 */
import type { ErrorBody } from "./errors.ts";
import type { JsonObject, JsonValue } from "./json.ts";
import type { StateCapture } from "./state-capture.ts";

export interface Command {
  readonly type: string;
  readonly payload: JsonValue;
}

export interface ApplyContext {
  /** The command's HLC, encoded. */
  readonly hlc: string;
  /** The command's log index (1 for the first command after genesis). */
  readonly index: number;
  /** Wall milliseconds of `hlc`: the only notion of time the reducer has. */
  readonly nowMs: number;
  /**
   * Set when the caller vouches that `command.payload` is a JSON value nested
   * at most JSON_DEPTH_MAX deep (the engine built it from its canonical text):
   * a machine may skip its own check. Absent means check. It never changes an
   * outcome, only whether a check that would pass is run.
   */
  readonly payloadIsJson?: true;
}

export type ApplyOutcome = { readonly ok: true; readonly result: JsonValue } | { readonly ok: false; readonly error: ErrorBody };

export interface StateMachine<Model> {
  /** A short name for logs and metrics. */
  readonly name: string;
  /**
   * Builds the live model from a canonical state (genesis or a verified
   * snapshot), rebuilding every index. The result must answer every later
   * command exactly as a model that reached this state by applying commands.
   * `lastAppliedHlc` (a snapshot's) is the HLC of the last command applied to
   * `state`: every later command's "now" is at least its wall ms, so a
   * machine may bring time-dependent indexes up to it, as the model that
   * never stopped may already have done.
   */
  restore(state: JsonObject, lastAppliedHlc?: string): Model;
  /** Validates and applies one command (rules above). */
  apply(model: Model, command: Command, context: ApplyContext): ApplyOutcome;
  /** The canonical state held by the model, as is (the caller must not mutate it). */
  state(model: Model): JsonObject;
  /**
   * A copy of the state that later `apply` calls do not change (copy the top
   * two levels; rule 2 makes that sufficient).
   */
  view(model: Model): JsonObject;
  /**
   * Optional: the state as of now, in O(1) (plus its small top-level fields),
   * readable later while `apply` goes on. Release it when done: until then the
   * model keeps the old value of every record it replaces.
   */
  capture?(model: Model): StateCapture;
  /**
   * Optional: how much a result weighs while the engine keeps it for
   * duplicates (G5) — e.g. the characters of the payloads it carries. A
   * function of the result alone: a table restored from a snapshot must weigh
   * its rows as the live one did. Absent: results weigh nothing.
   */
  outcomeWeight?(result: JsonValue): number;
}
