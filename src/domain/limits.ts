/**
 * Every bound the orchestrator enforces, and the default configuration.
 *
 * Limits keep one command's cost and the state's size predictable (TigerStyle:
 * put a limit on everything). They are part of the external contract: a payload
 * beyond any of them is refused with `bad_request` naming the offending path.
 *
 * Lengths are in UTF-16 code units (JavaScript `string.length`), because that is
 * what JSON Schema's `maxLength` measures in TypeBox and in every JS client.
 * Free-form JSON (a task's payload, result, error) is bounded in depth by
 * core's JSON_DEPTH_MAX (64, counted from the command payload) and in size by
 * the HTTP body limit (1 MiB), not here.
 */
import { HLC_WALL_MAX } from "../core/hlc.ts";

/** Agent and task ids: any string (the empty string included) up to this length. */
export const ID_LENGTH_MAX = 1024;
/** `clusterId` of the genesis state. */
export const CLUSTER_ID_LENGTH_MAX = 256;
/** Task `kind`: 1 to this many code units. */
export const KIND_LENGTH_MAX = 1024;
/** One agent label or one `requires` entry. */
export const LABEL_LENGTH_MAX = 256;
/** Labels per agent and `requires` entries per task. */
export const LABELS_COUNT_MAX = 64;
/** `dependsOn` entries per task (a join wider than this should fan in through intermediate tasks). */
export const DEPENDS_ON_COUNT_MAX = 1000;
/** Concurrent leases one agent may hold. */
export const CAPACITY_MAX = 10_000;
/** Tasks one `task.claim` may lease. */
export const CLAIM_LIMIT_MAX = 1000;
/**
 * Characters of task payloads (canonical JSON) one `task.claim` hands out at
 * most, one lease at least: the leases carry the payloads, and 1,000 leases
 * of ~900 KB payloads made an answer past V8's longest string — the claim was
 * applied and durable, but its answer failed after 12 s (503 internal
 * error), so the worker never learned its tokens. A claim that stops here
 * leases fewer than asked, as when fewer tasks are queued ("up to", SPEC §6).
 */
export const CLAIM_PAYLOAD_CHARS_MAX = 16 * 1024 * 1024;
/** Task priorities are 32-bit signed integers, so comparisons by subtraction cannot overflow. */
export const PRIORITY_MIN = -(2 ** 31);
export const PRIORITY_MAX = 2 ** 31 - 1;
/** Per-task `maxAttempts` and the configured default. */
export const MAX_ATTEMPTS_MAX = 1000;
/** Every configured duration (lease TTL, heartbeat timeout, backoff): 1 ms to 30 days. */
export const DURATION_MS_MIN = 1;
export const DURATION_MS_MAX = 30 * 24 * 60 * 60 * 1000;
/** `task.cancel` reason. */
export const REASON_LENGTH_MAX = 4096;
/** `task.prune` `before`: any wall-ms an HLC can carry. */
export const PRUNE_BEFORE_MAX = HLC_WALL_MAX;
/**
 * `task.prune` `limit`: most tasks one prune may remove. Removing costs ~2 µs
 * per task on the event loop (200,000 tasks: 0.4 s during which no command is
 * answered); a limit keeps each step short, and `more` says to call again.
 */
export const PRUNE_LIMIT_MAX = 1_000_000;
/** Lists of ids inside a command result (cancelled, pruned, offline) are cut at this length; counts stay exact. */
export const RESULT_IDS_MAX = 100;

/**
 * The default configuration of a new cluster. A lease lives 30 s and a worker is
 * expected to heartbeat well within that (every ~10 s); an agent silent for 60 s
 * (two lease lifetimes) is offline. Three attempts, backing off 1 s, 2 s, … up to 60 s.
 */
export const DEFAULT_CONFIG = Object.freeze({
  leaseTtlMs: 30_000,
  heartbeatTimeoutMs: 60_000,
  maxAttempts: 3,
  backoffBaseMs: 1_000,
  backoffMaxMs: 60_000,
});
