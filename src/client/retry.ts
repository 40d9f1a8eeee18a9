/**
 * Retrying with exponential backoff and jitter, bounded in attempts and in
 * elapsed time.
 *
 * The delay before retry n (n = 1, 2, …) is "equal jitter": half of
 * min(maxDelayMs, baseDelayMs · 2^(n−1)) plus a random part of the other half,
 * so delays grow for sure while clients that failed together spread out.
 *
 * A failure carrying `retryAfterMs` (the server's Retry-After) waits at
 * least that long; past `elapsedMaxMs` it is given up instead.
 *
 * Only failures the caller declares retryable are retried. The client retries
 * commands only because every command it sends carries an idempotency id: a
 * retry of a command that did apply gets the first outcome back (G5).
 */

export interface RetryPolicy {
  /** Tries in all, the first included (1 = no retry). */
  readonly attemptsMax: number;
  readonly baseDelayMs: number;
  readonly maxDelayMs: number;
  /** No retry starts later than this after the first try began. */
  readonly elapsedMaxMs: number;
}

export const DEFAULT_RETRY_POLICY: RetryPolicy = Object.freeze({
  attemptsMax: 8,
  baseDelayMs: 100,
  maxDelayMs: 5_000,
  elapsedMaxMs: 60_000,
});

/** The wait before retry `retry` (1-based), in [cap/2, cap] for cap = min(maxDelayMs, baseDelayMs · 2^(retry−1)). */
export function backoffDelayMs(retry: number, policy: Pick<RetryPolicy, "baseDelayMs" | "maxDelayMs">, random: () => number = Math.random): number {
  const exponent = Math.min(Math.max(retry - 1, 0), 30);
  const capMs = Math.min(policy.maxDelayMs, policy.baseDelayMs * 2 ** exponent);
  return Math.round(capMs / 2 + random() * (capMs / 2));
}

/** Resolves after `ms`, or rejects with the signal's reason when it aborts first. */
export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) {
      reject(signal.reason as Error);
      return;
    }
    const onAbort = (): void => {
      clearTimeout(timer);
      reject(signal?.reason as Error);
    };
    const timer = setTimeout(() => {
      signal?.removeEventListener("abort", onAbort);
      resolve();
    }, ms);
    signal?.addEventListener("abort", onAbort, { once: true });
  });
}

export interface RetryHooks {
  readonly signal?: AbortSignal;
  /** Called before each wait: the failure, the retry about to happen (1-based) and the wait. */
  readonly onRetry?: (error: unknown, retry: number, delayMs: number) => void;
  readonly random?: () => number;
  readonly nowMs?: () => number;
}

/**
 * Runs `attempt` until it resolves, a failure is not `retryable`, the
 * attempts are used up or the next retry would start after `elapsedMaxMs`;
 * then rethrows the last failure.
 */
export async function withRetry<T>(attempt: (tryNumber: number) => Promise<T>, retryable: (error: unknown) => boolean, policy: RetryPolicy, hooks: RetryHooks = {}): Promise<T> {
  const nowMs = hooks.nowMs ?? Date.now;
  const startedAtMs = nowMs();
  for (let tryNumber = 1; ; tryNumber++) {
    try {
      return await attempt(tryNumber);
    } catch (error) {
      if (hooks.signal?.aborted || !retryable(error) || tryNumber >= policy.attemptsMax) throw error;
      const delayMs = retryDelayMs(error, tryNumber, policy, hooks.random);
      if (nowMs() + delayMs - startedAtMs > policy.elapsedMaxMs) throw error;
      hooks.onRetry?.(error, tryNumber, delayMs);
      await sleep(delayMs, hooks.signal);
    }
  }
}

/** How long to wait before try `tryNumber + 1` after `error`: the backoff, and never sooner than a server's Retry-After. */
export function retryDelayMs(error: unknown, tryNumber: number, policy: RetryPolicy, random?: () => number): number {
  const askedMs = (error as { retryAfterMs?: unknown } | null)?.retryAfterMs;
  return Math.max(backoffDelayMs(tryNumber, policy, random), typeof askedMs === "number" ? askedMs : 0);
}
