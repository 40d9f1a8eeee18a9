/**
 * The other half of `spawnPeer` for our own child entries: print the ready
 * line once listening, and shut down cleanly (so `--cpu-prof` profiles get
 * written) on SIGTERM/SIGINT or when the parent goes away (stdin closes).
 * Shutdown is bounded: the process exits within `graceMs` whatever `close` does.
 */
import type { Server } from "node:http";

export function announceReady(fields: Record<string, unknown>): void {
  process.stdout.write(JSON.stringify({ ready: true, ...fields }) + "\n");
}

export function exitWhenTold(close: () => Promise<void>, graceMs = 4000): void {
  let closing = false;
  const shutdown = (): void => {
    if (closing) return;
    closing = true;
    setTimeout(() => process.exit(3), graceMs).unref();
    close().then(
      () => process.exit(0),
      (error: unknown) => {
        console.error("close failed:", error);
        process.exit(1);
      },
    );
  };
  process.once("SIGTERM", shutdown);
  process.once("SIGINT", shutdown);
  process.stdin.on("end", shutdown).on("close", shutdown).resume();
}

/**
 * Listens on `host`:`port` (0: a free one), announces the URL, and on shutdown
 * drops every connection, closes, and runs `afterClose` (a store to flush).
 */
export function serveUntilTold(server: Server, host: string, port: number, afterClose: () => void = () => undefined): void {
  server.listen(port, host, () => {
    const address = server.address();
    const bound = typeof address === "object" && address ? address.port : 0;
    announceReady({ url: `http://${host}:${bound}`, port: bound });
  });
  exitWhenTold(
    () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => {
          afterClose();
          resolve();
        });
      }),
  );
}
