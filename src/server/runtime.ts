/**
 * The server's runtime: it owns the engine and what hangs off it (the /watch
 * hub, the ticker, the metrics), and its life:
 *
 *     awaiting_genesis ──POST /state──▶ ready ──close()──▶ closing ──▶ closed
 *                                        │
 *                                        └──WAL flush failed──▶ failed (503 to everything; onFatal)
 *
 * It opens the engine at once unless asked to wait for a genesis on an
 * uninitialized data dir (SPEC §4: `POST /state` initializes it then). Routes
 * reach the engine only through `requireEngine()`, which answers `unavailable`
 * in every state but ready.
 */
import type { IncomingMessage } from "node:http";
import { lastDispatched } from "./connection-ledger.ts";
import type { FastifyBaseLogger } from "fastify";
import { SwooshError } from "../core/errors.ts";
import type { OrchestratorModel } from "../domain/index.ts";
import type { Engine } from "../engine/engine.ts";
import { problemText } from "../engine/errors.ts";
import { checkGenesis, sameGenesis } from "../engine/genesis.ts";
import type { GenesisDocument } from "../engine/genesis.ts";
import { readGenesisFile } from "../engine/open.ts";
import { openSwoosh } from "../index.ts";
import type { SwooshOptions } from "../index.ts";
import { NodeFileSystem } from "../storage/node-fs.ts";
import { ClockLeadWatch } from "./clock-lead.ts";
import { ServerMetrics } from "./metrics.ts";
import { DEFAULT_WATCH_SETTINGS, WatchHub } from "./sse.ts";
import type { WatchSettings } from "./sse.ts";
import { DEFAULT_TICKER_SETTINGS, Ticker } from "../engine/ticker.ts";
import type { TickerSettings } from "../engine/ticker.ts";

export type RuntimePhase = "starting" | "awaiting_genesis" | "ready" | "closing" | "closed" | "failed";

/** Opens an engine; the default is `openSwoosh`. A seam for tests (a fault-injecting WAL) and embedders. */
export type EngineOpener = (options: SwooshOptions) => Promise<Engine<OrchestratorModel>>;

export interface RuntimeOptions {
  readonly dataDir: string;
  readonly genesis?: unknown;
  readonly awaitGenesis?: boolean;
  readonly snapshotEvery?: number;
  readonly nodeId?: string;
  readonly maxDriftMs?: number;
  readonly log: FastifyBaseLogger;
  /** Called once when a WAL flush failed, after the runtime stopped taking requests. */
  readonly onFatal: (error: Error) => void;
  readonly openEngine?: EngineOpener;
  readonly watch?: Partial<WatchSettings>;
  readonly ticker?: Partial<TickerSettings>;
  /** Aborts the engine's recovery at startup (openEngine's `signal`); `create` then rejects with its reason. */
  readonly startupSignal?: AbortSignal;
}

export class ServerRuntime {
  readonly metrics = new ServerMetrics();
  /** Warns when a client's own hlc moved the clock ahead of the wall clock (clock-lead.ts). */
  readonly clockLead: ClockLeadWatch;
  private phaseNow: RuntimePhase = "starting";
  private engineNow: Engine<OrchestratorModel> | null = null;
  private hubNow: WatchHub | null = null;
  private ticker: Ticker | null = null;
  private detachMetrics: (() => void) | null = null;
  /** Serializes opening (startup or POST /state) against itself and against close. */
  private opening: Promise<unknown> = Promise.resolve();
  private recovered = 0;
  private fatalError: Error | null = null;

  private constructor(readonly options: RuntimeOptions) {
    this.clockLead = new ClockLeadWatch(options.log, () => this.engineNow?.settings.clock.nowMs() ?? Date.now());
  }

  /** Opens the engine now, unless `awaitGenesis` and the data dir holds no genesis yet. */
  static async create(options: RuntimeOptions): Promise<ServerRuntime> {
    const runtime = ServerRuntime.unstarted(options);
    await runtime.start();
    return runtime;
  }

  /**
   * A runtime that has not opened its engine yet (phase `starting`): the
   * server listens with it while recovery runs, so /healthz answers and
   * /readyz says 503 "starting" instead of the port refusing connections.
   */
  static unstarted(options: RuntimeOptions): ServerRuntime {
    return new ServerRuntime(options);
  }

  /** Opens the engine (recovering the data dir), unless `awaitGenesis` and the data dir holds no genesis yet. */
  async start(): Promise<void> {
    const { options } = this;
    // Queued as one opening: a POST /state arriving meanwhile waits for it.
    const run = this.opening.then(async () => {
      const initialized = options.genesis === undefined && options.awaitGenesis ? (await readGenesisFile(new NodeFileSystem(), options.dataDir)) !== null : true;
      if (initialized) {
        await this.openNow(options.genesis, options.startupSignal);
        return;
      }
      if (this.phaseNow === "starting") this.phaseNow = "awaiting_genesis";
      options.log.info({ dataDir: options.dataDir }, "awaiting a genesis document: POST /state");
    });
    this.opening = run.catch(() => undefined);
    await run;
  }

  get phase(): RuntimePhase {
    return this.phaseNow;
  }

  /**
   * Whether `request`'s answer closes its connection because the server is
   * stopping, so that keep-alive sockets do not hold shutdown open until
   * their idle timeout: the last request dispatched on the connection only,
   * since requests pipelined behind it were applied too and are owed their
   * answers (connection-ledger.ts).
   */
  closesAtShutdown(request: IncomingMessage): boolean {
    return (this.phaseNow === "closing" || this.phaseNow === "closed" || this.phaseNow === "failed") && lastDispatched(request);
  }

  get genesisHash(): string | null {
    return this.engineNow?.genesis.stateHash ?? null;
  }

  /** The durable index recovery reached when the engine opened (0 before). */
  get recoveredIndex(): number {
    return this.recovered;
  }

  /** The engine, or `unavailable` when it is not open and serving. */
  requireEngine(): Engine<OrchestratorModel> {
    const engine = this.engineNow;
    if (this.phaseNow === "ready" && engine !== null) return engine;
    throw this.notServing();
  }

  requireHub(): WatchHub {
    const hub = this.hubNow;
    if (this.phaseNow === "ready" && hub !== null) return hub;
    throw this.notServing();
  }

  /** Why requests other than /healthz are refused now, or null while serving (or awaiting genesis). */
  refusal(): SwooshError | null {
    if (this.phaseNow === "closing" || this.phaseNow === "closed") return new SwooshError("unavailable", "the server is shutting down");
    if (this.phaseNow === "failed") return this.failedError();
    return null;
  }

  notServing(): SwooshError {
    if (this.phaseNow === "awaiting_genesis") return new SwooshError("unavailable", "the data dir is not initialized yet: POST /state with a genesis document");
    if (this.phaseNow === "starting") return new SwooshError("unavailable", "starting: the data dir is being recovered (GET /readyz answers 200 once it is done)");
    return this.refusal() ?? new SwooshError("unavailable", "the engine is not open");
  }

  /**
   * POST /state: initializes the data dir with `input` (opening the engine),
   * or confirms it already holds that genesis. Throws bad_request,
   * genesis_hash_mismatch or already_initialized (SPEC §4).
   */
  async initialize(input: unknown): Promise<{ genesis: GenesisDocument; created: boolean }> {
    const genesis = checkGenesis(input);
    const run = this.opening.then(async () => {
      const refusal = this.refusal();
      if (refusal) throw refusal;
      const engine = this.engineNow;
      if (engine !== null) {
        if (!sameGenesis(engine.genesis, genesis)) {
          throw new SwooshError("already_initialized", `the data dir was initialized with cluster ${JSON.stringify(engine.genesis.clusterId)} (state hash ${engine.genesis.stateHash})`, {
            clusterId: engine.genesis.clusterId,
            stateHash: engine.genesis.stateHash,
          });
        }
        return { genesis: engine.genesis, created: false };
      }
      const existing = await readGenesisFile(new NodeFileSystem(), this.options.dataDir);
      await this.openNow(genesis, undefined);
      return { genesis: (this.engineNow as Engine<OrchestratorModel> | null)?.genesis ?? genesis, created: existing === null };
    });
    this.opening = run.catch(() => undefined);
    return run;
  }

  /** Stops the ticker and the watch streams and refuses new requests; the engine stays open for in-flight commands. */
  async beginClose(): Promise<void> {
    await this.opening;
    if (this.phaseNow !== "failed") this.phaseNow = "closing";
    await this.ticker?.stop();
    this.hubNow?.closeAll();
  }

  /** Closes the engine: every accepted command durable, a final snapshot (unless failed), the WAL and the LOCK released. */
  async closeEngine(): Promise<void> {
    const engine = this.engineNow;
    const failed = this.phaseNow === "failed";
    if (!failed) this.phaseNow = "closed";
    this.detachMetrics?.();
    if (engine === null) return;
    this.engineNow = null;
    await engine.close({ snapshot: !failed });
  }

  private async openNow(genesis: unknown, signal: AbortSignal | undefined): Promise<void> {
    const { options } = this;
    const opener = options.openEngine ?? openSwoosh;
    const engine = await opener({
      dataDir: options.dataDir,
      ...(genesis === undefined ? {} : { genesis }),
      ...(options.snapshotEvery === undefined ? {} : { snapshotEvery: options.snapshotEvery }),
      ...(options.nodeId === undefined ? {} : { nodeId: options.nodeId }),
      ...(options.maxDriftMs === undefined ? {} : { maxDriftMs: options.maxDriftMs }),
      ...(signal === undefined ? {} : { signal }),
      onProgress: replayProgressLog(options.log),
      onFatal: (error) => this.fail(error),
      onSnapshotError: (error) => options.log.warn({ err: error }, "snapshot failed (the WAL still holds everything)"),
      // G3: a damaged snapshot is passed over (recovery and time travel fall back), but never silently.
      onSkippedSnapshot: (problem) =>
        options.log.warn(
          { file: problem.file, index: problem.index, expectedHash: problem.expectedHash, actualHash: problem.actualHash },
          `snapshot passed over: ${problemText(problem)}`,
        ),
      onOldWalDamage: (problem) => options.log.warn({ file: problem.file, index: problem.index }, `WAL damaged behind the snapshot recovery started from: ${problemText(problem)}`),
    });
    const stats = engine.stats();
    this.engineNow = engine;
    this.recovered = stats.durableIndex;
    const openedAtMs = engine.settings.clock.nowMs();
    this.detachMetrics = this.metrics.attach({ stats: () => engine.stats(), openedAtMs, nowMs: () => engine.settings.clock.nowMs() }, engine);
    this.hubNow = new WatchHub(engine, { ...DEFAULT_WATCH_SETTINGS, ...options.watch }, this.metrics, options.log);
    this.ticker = new Ticker(engine, options.log, { ...DEFAULT_TICKER_SETTINGS, ...options.ticker });
    this.phaseNow = "ready";
    this.ticker.start();
    options.log.info({ genesisHash: engine.genesis.stateHash, clusterId: engine.genesis.clusterId, index: stats.durableIndex }, "engine open");
  }

  /** The engine's onFatal: a flush failed. Everything after this is 503; then the embedder's onFatal. */
  private fail(error: Error): void {
    if (this.fatalError !== null) return;
    this.fatalError = error;
    this.phaseNow = "failed";
    this.options.log.fatal({ err: error }, "write-ahead log flush failed: refusing all requests");
    this.ticker?.stop().catch(() => undefined);
    this.hubNow?.closeAll();
    try {
      this.options.onFatal(error);
    } catch (hookError) {
      this.options.log.error({ err: hookError }, "onFatal threw");
    }
  }

  private failedError(): SwooshError {
    return new SwooshError("unavailable", `the write-ahead log failed and the server stopped taking requests: ${this.fatalError?.message ?? "unknown"}`);
  }
}

/** How often a long recovery says where it is. */
const REPLAY_PROGRESS_EVERY_MS = 5000;

/**
 * Recovery's progress as log lines: the first when the replay is under way,
 * then one every REPLAY_PROGRESS_EVERY_MS (a server replaying millions of
 * entries is not hung, and Ctrl-C stops it).
 */
function replayProgressLog(log: FastifyBaseLogger): (index: number, lastIndex: number) => void {
  let loggedAtMs: number | null = null;
  return (index, lastIndex) => {
    const nowMs = performance.now();
    if (loggedAtMs !== null && nowMs - loggedAtMs < REPLAY_PROGRESS_EVERY_MS) return;
    loggedAtMs = nowMs;
    log.info({ index, lastIndex }, `recovering: replayed the WAL to ${index} of ${lastIndex}`);
  };
}
