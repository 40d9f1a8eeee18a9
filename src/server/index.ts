/**
 * The Swoosh HTTP server (SPEC §7): `startServer` opens (or awaits) the engine
 * in a data dir, listens, and hands back a handle whose `close()` shuts down
 * gracefully. `buildApp` gives the socket-free application for `app.inject`.
 *
 *     const server = await startServer({ dataDir: "./data" });   // http://127.0.0.1:7777
 *     ...
 *     await server.close();
 *
 * Shutdown order: refuse new requests (503) and stop ticking, end /watch
 * streams, stop listening and let in-flight requests finish (their commands
 * become durable), take a final snapshot, close the WAL (releasing the LOCK).
 */
import { isLoopbackAddress } from "./host-guard.ts";
import net from "node:net";
import type { FastifyBaseLogger, FastifyInstance } from "fastify";
import { buildApp } from "./app.ts";
import { createLogger } from "./logger.ts";
import { ServerRuntime } from "./runtime.ts";
import { watchHeap } from "./heap-watch.ts";
import type { EngineOpener } from "./runtime.ts";
import type { WatchSettings } from "./sse.ts";
import type { TickerSettings } from "../engine/ticker.ts";

export { buildApp, BODY_LIMIT_BYTES_DEFAULT, HTTP_TIMEOUTS } from "./app.ts";
export type { AppOptions } from "./app.ts";
export { ServerRuntime } from "./runtime.ts";
export type { RuntimeOptions, RuntimePhase, EngineOpener } from "./runtime.ts";
export { buildOpenApiDocument } from "./openapi.ts";

export interface ServerOptions {
  dataDir: string;
  /** Default "127.0.0.1". */
  host?: string;
  /** Default 7777; 0 = a free port. */
  port?: number;
  /** Bearer token; undefined = no auth. */
  token?: string;
  /** A genesis document to initialize/check the data dir (SPEC §4). */
  genesis?: unknown;
  /** Start without a data dir genesis and wait for POST /state (readyz 503 until then). */
  awaitGenesis?: boolean;
  snapshotEvery?: number;
  nodeId?: string;
  maxDriftMs?: number;
  /** Default 1 MiB → 413 payload_too_large. */
  bodyLimitBytes?: number;
  /** pino options, or false for none; default: pino at info to stderr. */
  logger?: boolean | object;
  /** WAL flush failed. Default: log, let in-flight requests get their 503, then process.exit(1). */
  onFatal?: (error: Error) => void;
  /** Seam (tests, embedders): opens the engine instead of `openSwoosh`, e.g. around a fault-injecting WAL. */
  openEngine?: EngineOpener;
  /** Tuning of GET /watch (buffer bound per stream, heartbeat, stream cap); defaults in sse.ts. */
  watch?: Partial<WatchSettings>;
  /** Tuning of the tick loop; defaults in ticker.ts. */
  ticker?: Partial<TickerSettings>;
  /** How long shutdown waits for idle and for stalled connections; defaults SHUTDOWN_DRAIN. */
  shutdownDrain?: Partial<ShutdownDrain>;
  /** Stops a startup under way (the WAL replay of recovery): `startServer` then rejects with the signal's reason, having written nothing. */
  signal?: AbortSignal;
}

export interface RunningServer {
  /** e.g. http://127.0.0.1:7777 */
  readonly url: string;
  readonly port: number;
  /** null while awaiting genesis. */
  readonly genesisHash: string | null;
  readonly recoveredIndex: number;
  readonly dataDir: string;
  /** Graceful: stop accepting, finish in-flight commands, final snapshot, close the WAL. */
  close(): Promise<void>;
}

export { createLogger };

/**
 * How connections end at shutdown (`drainConnections`). Every request that
 * arrives once it began is answered 503 with `Connection: close`, so a client
 * that keeps sending learns it was not applied; only an idle connection is
 * closed without an answer, after `idleGraceMs` (closing it at once reset
 * requests already on their way: ECONNRESET, applied or not unknown). A
 * client that stalls (a request half sent, an answer not read) is cut off
 * after `deadlineMs`: the listener is closed by then, so it would otherwise
 * hold the shutdown — and the final snapshot — for the 60 s socket timeout,
 * twice for a stalled reader.
 */
export interface ShutdownDrain {
  readonly idleGraceMs: number;
  readonly deadlineMs: number;
}
export const SHUTDOWN_DRAIN: ShutdownDrain = { idleGraceMs: 1000, deadlineMs: 10_000 };

/**
 * Stops listening and waits for the connections to end, closing idle ones
 * after the grace and all of them at the deadline; then closes the app.
 * `net.Server`'s close, not `http.Server`'s: that one also drops idle
 * keep-alive connections at once (requests on their way are reset) and stops
 * the header and request timeouts that bound a stalled client.
 */
export async function drainConnections(app: FastifyInstance, drain: ShutdownDrain): Promise<void> {
  const server = app.server;
  const drained = new Promise<void>((resolve) => net.Server.prototype.close.call(server, () => resolve()));
  const timers = [setTimeout(() => server.closeIdleConnections(), drain.idleGraceMs), setTimeout(() => server.closeAllConnections(), drain.deadlineMs)];
  try {
    await drained;
  } finally {
    for (const timer of timers) clearTimeout(timer);
  }
  // Fastify's onClose hooks; its own server.close finds the listener closed already (which it allows).
  await app.close();
}

export const DEFAULT_HOST = "127.0.0.1";
export const DEFAULT_PORT = 7777;
/** Time the default onFatal leaves in-flight requests to receive their 503 before exiting. */
export const FATAL_EXIT_DELAY_MS = 250;


function defaultOnFatal(log: FastifyBaseLogger): (error: Error) => void {
  return (error) => {
    log.fatal({ err: error }, `exiting in ${FATAL_EXIT_DELAY_MS} ms; a restart recovers from disk`);
    process.exitCode = 1;
    setTimeout(() => process.exit(1), FATAL_EXIT_DELAY_MS);
  };
}

export async function startServer(options: ServerOptions): Promise<RunningServer> {
  const logger = createLogger(options.logger);
  const runtime = ServerRuntime.unstarted({
    dataDir: options.dataDir,
    genesis: options.genesis,
    awaitGenesis: options.awaitGenesis,
    snapshotEvery: options.snapshotEvery,
    nodeId: options.nodeId,
    maxDriftMs: options.maxDriftMs,
    log: logger,
    onFatal: options.onFatal ?? defaultOnFatal(logger),
    openEngine: options.openEngine,
    watch: options.watch,
    ticker: options.ticker,
    startupSignal: options.signal,
  });
  const host = options.host ?? DEFAULT_HOST;
  const app = buildApp(runtime, { logger, token: options.token, bodyLimitBytes: options.bodyLimitBytes, loopbackHostsOnly: options.token === undefined && isLoopbackAddress(host) });
  // Listening first: an address that cannot be had fails before the data dir
  // is touched (no genesis written for a server that never ran), and while a
  // long recovery runs /healthz answers and /readyz says 503 "starting",
  // instead of a refused port a liveness probe would take for a dead process.
  try {
    await app.listen({ host, port: options.port ?? DEFAULT_PORT });
  } catch (error) {
    await app.close().catch(() => undefined);
    throw error;
  }
  try {
    await runtime.start();
  } catch (error) {
    await app.close().catch(() => undefined);
    await runtime.beginClose();
    await runtime.closeEngine();
    throw error;
  }
  const address = app.server.address();
  const port = typeof address === "object" && address !== null ? address.port : (options.port ?? DEFAULT_PORT);
  const url = `http://${host.includes(":") ? `[${host}]` : host}:${port}`;
  logger.info({ url, genesisHash: runtime.genesisHash, recoveredIndex: runtime.recoveredIndex, auth: options.token !== undefined }, "swoosh listening");
  // A warning in the log before the state outgrows the heap (heap-watch.ts).
  const stopHeapWatch = watchHeap(logger);

  let closing: Promise<void> | null = null;
  return {
    url,
    port,
    get genesisHash() {
      return runtime.genesisHash;
    },
    get recoveredIndex() {
      return runtime.recoveredIndex;
    },
    dataDir: options.dataDir,
    close() {
      closing ??= (async () => {
        stopHeapWatch();
        await runtime.beginClose();
        await drainConnections(app, { ...SHUTDOWN_DRAIN, ...options.shutdownDrain });
        await runtime.closeEngine();
        logger.info("swoosh stopped");
      })();
      return closing;
    },
  };
}
