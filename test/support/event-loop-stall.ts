/**
 * How long the event loop was held at most while some work ran: the longest
 * gap a 1 ms interval timer sees, the stretch after its last tick included
 * (a stall at the very end would otherwise never show).
 */
export async function longestStallMs(work: () => Promise<void>): Promise<number> {
  let last = performance.now();
  let worst = 0;
  const timer = setInterval(() => {
    const now = performance.now();
    worst = Math.max(worst, now - last);
    last = now;
  }, 1);
  try {
    await work();
  } finally {
    clearInterval(timer);
  }
  return Math.max(worst, performance.now() - last);
}
