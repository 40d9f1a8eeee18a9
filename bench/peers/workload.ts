/**
 * The write every peer is given: one Swoosh `task.submit` command per
 * operation, with a distinct task id, an idempotency id, and a task payload
 * of about 100 bytes. The same body bytes are what an HTTP peer receives and
 * what a key-value peer (etcd) stores as the value, so every peer makes the
 * same bytes durable.
 */

/** Bytes the task's own `payload` object takes as JSON (roughly; the shard number varies). */
export const TASK_PAYLOAD_TARGET_BYTES = 100;

export interface TaskSubmitBody {
  /** Unique key for the operation (the task id); key-value peers store under it. */
  readonly key: string;
  /** The JSON text of the `POST /command` body. */
  readonly json: string;
}

/** A task payload of about TASK_PAYLOAD_TARGET_BYTES of JSON. */
export function taskPayload(seq: number): Record<string, unknown> {
  return {
    repo: "github.com/example/project",
    commit: ((seq * 2654435761) >>> 0).toString(16).padStart(8, "0"),
    shard: seq % 16,
    args: ["--fast", "--json", "--retry=2"],
  };
}

/** The `task.submit` command of operation `seq` in a measurement tagged `runTag`, as a library caller builds it. */
export function taskSubmitCommand(runTag: string, seq: number): { type: string; payload: Record<string, unknown>; id: string } {
  return {
    type: "task.submit",
    payload: { taskId: `${runTag}-t${seq}`, kind: "bench", payload: taskPayload(seq) },
    id: `${runTag}-c${seq}`,
  };
}

/**
 * The command body for operation `seq` of a measurement tagged `runTag`
 * (tags keep ids distinct across measurements against the same server).
 */
export function taskSubmitBody(runTag: string, seq: number): TaskSubmitBody {
  return { key: `${runTag}-t${seq}`, json: JSON.stringify(taskSubmitCommand(runTag, seq)) };
}
