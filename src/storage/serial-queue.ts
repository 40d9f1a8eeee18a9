/**
 * Runs async tasks one at a time, in call order. The logs use it so that
 * concurrent `append`/`truncateBefore` calls never interleave: each one checks
 * the index and writes against the state the previous one left.
 */
export class SerialQueue {
  private tail: Promise<unknown> = Promise.resolve();

  /** Runs `task` after every task queued before it settled; settles as `task` does. */
  run<T>(task: () => Promise<T>): Promise<T> {
    const result = this.tail.then(task);
    // A failed task must not stop the ones behind it; its caller sees the rejection.
    this.tail = result.catch(() => undefined);
    return result;
  }

  /** Resolves once every task queued so far has settled. */
  async idle(): Promise<void> {
    await this.tail;
  }
}
