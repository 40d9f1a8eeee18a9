/**
 * A level-triggered wake-up for the worker's loop: `wake()` before or during
 * `wait()` ends the wait; wakes that come while nobody waits are remembered
 * (once), so no wake-up is lost between a check and the wait.
 */

/** setTimeout's longest delay; longer waits are cut to it (the loop just looks again). */
const TIMER_MAX_MS = 2 ** 31 - 1;

export class Wakeup {
  private pending = false;
  private resolveWait: (() => void) | null = null;

  wake(): void {
    this.pending = true;
    this.resolveWait?.();
  }

  /** Resolves on the next wake (or a remembered one), or after `timeoutMs`. */
  wait(timeoutMs: number): Promise<void> {
    if (this.pending) {
      this.pending = false;
      return Promise.resolve();
    }
    return new Promise((resolve) => {
      const done = (): void => {
        clearTimeout(timer);
        this.resolveWait = null;
        this.pending = false;
        resolve();
      };
      const timer = setTimeout(done, Math.min(TIMER_MAX_MS, Math.max(0, timeoutMs)));
      this.resolveWait = done;
    });
  }
}
