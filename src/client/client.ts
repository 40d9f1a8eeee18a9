/**
 * `SwooshClient`: every command of SPEC §6 and every endpoint of SPEC §7,
 * typed with the server's own schemas (imported as types only).
 *
 * Every command carries an idempotency id — the caller's, or one made up per
 * logical command and reused by every retry of it — so retrying after a
 * dropped connection, a timeout or a 503 never applies a command twice (G5).
 * Reads are retried the same way. Retries back off exponentially with jitter
 * and are bounded in attempts and time (retry.ts).
 *
 * HLC propagation: the client remembers the greatest HLC of any answer and
 * sends it as `hlc` with each command (unless the command brings its own), so
 * the server stamps what a client does after what it saw. If the server
 * refuses it as `clock_drift` (only possible when talking to a server whose
 * clock is far behind one seen earlier), the client forgets it and sends the
 * command again without one.
 */
import { SwooshApiError } from "./errors.ts";
import { HlcTracker } from "./hlc.ts";
import { HttpTransport, jsonBody } from "./http.ts";
import type { HttpAnswer, HttpRequest } from "./http.ts";
import { DEFAULT_RETRY_POLICY, withRetry } from "./retry.ts";
import type { RetryPolicy } from "./retry.ts";
import type {
  AgentFilters,
  AgentPage,
  AnyCommand,
  CommandAnswer,
  CommandPayload,
  CommandType,
  GenesisDocument,
  InitializeAnswer,
  LogEntry,
  LogPage,
  ReadyAnswer,
  StateSnapshot,
  Task,
  TaskFilters,
  TaskPage,
  Agent,
} from "./types.ts";
import { watchLog } from "./watch.ts";
import type { WatchOptions } from "./watch.ts";

export const DEFAULT_URL = "http://127.0.0.1:7777";
export const REQUEST_TIMEOUT_MS_DEFAULT = 30_000;

export interface SwooshClientOptions {
  /** Base URL of the server. Default http://127.0.0.1:7777. */
  readonly url?: string;
  /** Bearer token, when the server has one. */
  readonly token?: string | undefined;
  /** One try of a request gives up after this long. Default 30 000. */
  readonly timeoutMs?: number;
  /** Retry policy of every call (default DEFAULT_RETRY_POLICY); false: never retry. */
  readonly retry?: Partial<RetryPolicy> | false;
  /** Send the greatest HLC seen with each command. Default true. */
  readonly propagateHlc?: boolean;
  /** Told about each retry (for logging). */
  readonly onRetry?: (info: { readonly method: string; readonly path: string; readonly error: unknown; readonly retry: number; readonly delayMs: number }) => void;
  /** A fetch to use instead of the global one. */
  readonly fetch?: typeof fetch;
}

export interface CallOptions {
  readonly signal?: AbortSignal;
  /** This call's retry policy, over the client's; false: one try. */
  readonly retry?: Partial<RetryPolicy> | false;
}

export interface CommandOptions extends CallOptions {
  /** Idempotency id (≤ 256 characters). Default: a fresh UUID, reused by the retries of this call. */
  readonly id?: string;
  /** Your own HLC timestamp; default the greatest the client has seen. */
  readonly hlc?: string;
}

/** One slot of a `commands()` answer. */
export type BatchItemResult<T extends CommandType = CommandType> =
  | { readonly ok: true; readonly id: string; readonly index: number; readonly hlc: string; readonly result: CommandAnswer<T>["result"]; readonly duplicate?: true }
  | { readonly ok: false; readonly id: string; readonly error: SwooshApiError };

/** The answers of a batch, slot by slot, each typed by its command's type. */
export type BatchResults<L extends readonly AnyCommand[]> = { -readonly [K in keyof L]: BatchItemResult<L[K]["type"]> };

type WireBatchItem = { index: number; hlc: string; result: unknown; duplicate?: true } | { error: { code: string; message: string; details?: unknown } };

function newId(): string {
  return globalThis.crypto.randomUUID();
}

function query(params: Record<string, string | number | undefined>): string {
  const search = new URLSearchParams();
  for (const [key, value] of Object.entries(params)) if (value !== undefined) search.set(key, String(value));
  const text = search.toString();
  return text === "" ? "" : `?${text}`;
}

export class SwooshClient {
  private readonly http: HttpTransport;
  private readonly hlc = new HlcTracker();
  private readonly retryPolicy: RetryPolicy | false;

  constructor(private readonly options: SwooshClientOptions = {}) {
    this.http = new HttpTransport({
      url: options.url ?? DEFAULT_URL,
      token: options.token,
      timeoutMs: options.timeoutMs ?? REQUEST_TIMEOUT_MS_DEFAULT,
      fetch: options.fetch,
    });
    this.retryPolicy = options.retry === false ? false : { ...DEFAULT_RETRY_POLICY, ...options.retry };
  }

  /** The server's base URL. */
  get url(): string {
    return this.http.baseUrl;
  }

  /** The greatest HLC seen in any answer (sent with commands), or undefined. */
  get lastHlc(): string | undefined {
    return this.hlc.value;
  }

  /** Merges an HLC from elsewhere (another system's clock) into the one sent with commands. */
  observeHlc(hlc: string): void {
    this.hlc.observe(hlc);
  }

  // ------------------------------------------------------------------ commands (SPEC §6)

  /** `POST /command`: any command by type. Throws SwooshApiError for a refusal. */
  async command<T extends CommandType>(type: T, payload: CommandPayload<T>, options: CommandOptions = {}): Promise<CommandAnswer<T>> {
    const id = options.id ?? newId();
    for (let driftRetried = false; ; driftRetried = true) {
      const hlc = options.hlc ?? (this.options.propagateHlc === false ? undefined : this.hlc.value);
      const body = { type, payload, id, ...(hlc === undefined ? {} : { hlc }) };
      try {
        const answer = await this.request({ method: "POST", path: "/command", body, signal: options.signal }, options.retry);
        const outcome = jsonBody<CommandAnswer<T>>(answer, "POST /command");
        this.hlc.observe(outcome.hlc);
        return outcome;
      } catch (error) {
        if (error instanceof SwooshApiError && error.code === "clock_drift" && options.hlc === undefined && hlc !== undefined && !driftRetried) {
          this.hlc.forget();
          continue;
        }
        throw error;
      }
    }
  }

  /**
   * `POST /commands`: a batch applied in order and flushed together (one
   * round trip), answered slot by slot — a refused command does not stop the
   * others. Every command gets an id (yours or a fresh one), reused by retries.
   */
  async commands<const L extends readonly AnyCommand[]>(commands: L, options: CallOptions = {}): Promise<BatchResults<L>> {
    const ids = commands.map((command) => command.id ?? newId());
    for (let driftRetried = false; ; driftRetried = true) {
      const autoHlc = this.options.propagateHlc === false ? undefined : this.hlc.value;
      const wire = commands.map((command, i) => {
        const hlc = command.hlc ?? autoHlc;
        return { type: command.type, payload: command.payload, id: ids[i] as string, ...(hlc === undefined ? {} : { hlc }) };
      });
      const answer = await this.request({ method: "POST", path: "/commands", body: { commands: wire }, signal: options.signal }, options.retry);
      const { results } = jsonBody<{ results: WireBatchItem[] }>(answer, "POST /commands");
      if (!Array.isArray(results) || results.length !== commands.length) throw new SwooshApiError("bad_response", `POST /commands: ${commands.length} commands but ${Array.isArray(results) ? results.length : "no"} results`, answer.status);
      const drifted = results.some((item, i) => "error" in item && item.error.code === "clock_drift" && commands[i]?.hlc === undefined);
      if (drifted && autoHlc !== undefined && !driftRetried) {
        this.hlc.forget();
        continue;
      }
      return results.map((item, i): BatchItemResult => {
        const id = ids[i] as string;
        if ("error" in item) return { ok: false, id, error: SwooshApiError.fromBatchItem(item) };
        this.hlc.observe(item.hlc);
        const ok = { ok: true as const, id, index: item.index, hlc: item.hlc, result: item.result as CommandAnswer["result"] };
        return item.duplicate === true ? { ...ok, duplicate: true } : ok;
      }) as BatchResults<L>;
    }
  }

  registerAgent(payload: CommandPayload<"agent.register">, options?: CommandOptions): Promise<CommandAnswer<"agent.register">> {
    return this.command("agent.register", payload, options);
  }

  heartbeat(payload: CommandPayload<"agent.heartbeat">, options?: CommandOptions): Promise<CommandAnswer<"agent.heartbeat">> {
    return this.command("agent.heartbeat", payload, options);
  }

  drainAgent(payload: CommandPayload<"agent.drain">, options?: CommandOptions): Promise<CommandAnswer<"agent.drain">> {
    return this.command("agent.drain", payload, options);
  }

  removeAgent(payload: CommandPayload<"agent.remove">, options?: CommandOptions): Promise<CommandAnswer<"agent.remove">> {
    return this.command("agent.remove", payload, options);
  }

  submitTask(payload: CommandPayload<"task.submit">, options?: CommandOptions): Promise<CommandAnswer<"task.submit">> {
    return this.command("task.submit", payload, options);
  }

  claim(payload: CommandPayload<"task.claim">, options?: CommandOptions): Promise<CommandAnswer<"task.claim">> {
    return this.command("task.claim", payload, options);
  }

  complete(payload: CommandPayload<"task.complete">, options?: CommandOptions): Promise<CommandAnswer<"task.complete">> {
    return this.command("task.complete", payload, options);
  }

  fail(payload: CommandPayload<"task.fail">, options?: CommandOptions): Promise<CommandAnswer<"task.fail">> {
    return this.command("task.fail", payload, options);
  }

  cancel(payload: CommandPayload<"task.cancel">, options?: CommandOptions): Promise<CommandAnswer<"task.cancel">> {
    return this.command("task.cancel", payload, options);
  }

  prune(payload: CommandPayload<"task.prune">, options?: CommandOptions): Promise<CommandAnswer<"task.prune">> {
    return this.command("task.prune", payload, options);
  }

  setPhase(payload: CommandPayload<"orchestrator.setPhase">, options?: CommandOptions): Promise<CommandAnswer<"orchestrator.setPhase">> {
    return this.command("orchestrator.setPhase", payload, options);
  }

  configure(payload: CommandPayload<"orchestrator.configure">, options?: CommandOptions): Promise<CommandAnswer<"orchestrator.configure">> {
    return this.command("orchestrator.configure", payload, options);
  }

  /** `system.tick`: the server sends it by itself; sending one is harmless. */
  tick(options?: CommandOptions): Promise<CommandAnswer<"system.tick">> {
    return this.command("system.tick", {}, options);
  }

  // ------------------------------------------------------------------ reads (SPEC §7)

  /**
   * `GET /state` (`at`: as of that log index). With `ifNoneMatch` (a state
   * hash, e.g. the last `stateHash`), resolves to null while it is current (304).
   */
  getState(options: CallOptions & { readonly at?: number; readonly ifNoneMatch: string }): Promise<StateSnapshot | null>;
  getState(options?: CallOptions & { readonly at?: number }): Promise<StateSnapshot>;
  async getState(options: CallOptions & { readonly at?: number; readonly ifNoneMatch?: string } = {}): Promise<StateSnapshot | null> {
    const headers: Record<string, string> = {};
    if (options.ifNoneMatch !== undefined) headers["if-none-match"] = `"${options.ifNoneMatch.replace(/^W\//, "").replace(/"/g, "")}"`;
    const answer = await this.request({ method: "GET", path: `/state${query({ at: options.at })}`, headers, signal: options.signal }, options.retry);
    if (answer.status === 304) return null;
    const snapshot = jsonBody<StateSnapshot>(answer, "GET /state");
    this.hlc.observe(snapshot.hlc);
    return snapshot;
  }

  /** `POST /state`: initializes a server started with --await-genesis. The same genesis again answers `created: false`. */
  async initialize(genesis: GenesisDocument, options: CallOptions = {}): Promise<InitializeAnswer> {
    // Safe to retry: the same genesis twice is not an error.
    const answer = await this.request({ method: "POST", path: "/state", body: genesis, signal: options.signal }, options.retry);
    return jsonBody<InitializeAnswer>(answer, "POST /state");
  }

  /**
   * `GET /tasks`: one page, ascending id. `status: []` matches no task: the
   * server has no way to say so (`status=` is a 400), so the page is asked
   * for without `status` and one task at most, for its `index`, and answered
   * empty — never the unfiltered listing.
   */
  async listTasks(filters: TaskFilters = {}, options: CallOptions = {}): Promise<TaskPage> {
    const { status } = filters;
    const matchesNone = typeof status === "object" && status.length === 0;
    const statuses = typeof status === "object" ? status.join(",") : status;
    const path = `/tasks${query({ status: matchesNone ? undefined : statuses, kind: filters.kind, agentId: filters.agentId, limit: matchesNone ? 1 : filters.limit, cursor: filters.cursor })}`;
    const page = jsonBody<TaskPage>(await this.request({ method: "GET", path, signal: options.signal }, options.retry), "GET /tasks");
    return matchesNone ? { index: page.index, tasks: [], nextCursor: null } : page;
  }

  /** Every task matching `filters`, page after page (`filters.limit` is the page size). */
  async *iterateTasks(filters: Omit<TaskFilters, "cursor"> = {}, options: CallOptions = {}): AsyncGenerator<Task, void, undefined> {
    let cursor: string | undefined;
    do {
      const page = await this.listTasks({ ...filters, cursor }, options);
      yield* page.tasks;
      cursor = page.nextCursor ?? undefined;
    } while (cursor !== undefined);
  }

  /** `GET /tasks/:id`; SwooshApiError `unknown_task` when there is none. */
  async getTask(taskId: string, options: CallOptions = {}): Promise<Task> {
    return jsonBody<Task>(await this.request({ method: "GET", path: `/tasks/${encodeURIComponent(taskId)}`, signal: options.signal }, options.retry), "GET /tasks/:id");
  }

  /** `GET /agents`: one page, ascending id. */
  async listAgents(filters: AgentFilters = {}, options: CallOptions = {}): Promise<AgentPage> {
    const path = `/agents${query({ status: filters.status, limit: filters.limit, cursor: filters.cursor })}`;
    return jsonBody<AgentPage>(await this.request({ method: "GET", path, signal: options.signal }, options.retry), "GET /agents");
  }

  /** Every agent matching `filters`, page after page. */
  async *iterateAgents(filters: Omit<AgentFilters, "cursor"> = {}, options: CallOptions = {}): AsyncGenerator<Agent, void, undefined> {
    let cursor: string | undefined;
    do {
      const page = await this.listAgents({ ...filters, cursor }, options);
      yield* page.agents;
      cursor = page.nextCursor ?? undefined;
    } while (cursor !== undefined);
  }

  /** `GET /log`: entries from `from` (default the oldest held), at most `limit` (1–1000). */
  async readLog(range: { readonly from?: number; readonly limit?: number } = {}, options: CallOptions = {}): Promise<LogPage> {
    const page = jsonBody<LogPage>(await this.request({ method: "GET", path: `/log${query({ from: range.from, limit: range.limit })}`, signal: options.signal }, options.retry), "GET /log");
    this.hlc.observe(page.entries.at(-1)?.hlc);
    return page;
  }

  /**
   * `GET /watch` as an async iterable of log entries, resumed with
   * Last-Event-ID after every disconnect (watch.ts). End it with `signal` or
   * by breaking out of the loop.
   */
  watch(options: WatchOptions = {}): AsyncGenerator<LogEntry, void, undefined> {
    return watchLog(this.http, options, (entry) => this.hlc.observe(entry.hlc));
  }

  /** `GET /healthz`: the process answers. */
  async healthz(options: CallOptions = {}): Promise<{ status: "ok" }> {
    return jsonBody(await this.request({ method: "GET", path: "/healthz", signal: options.signal }, options.retry), "GET /healthz");
  }

  /** `GET /readyz`: recovered and serving; `unavailable` (after retries) otherwise. */
  async readyz(options: CallOptions = {}): Promise<ReadyAnswer> {
    return jsonBody(await this.request({ method: "GET", path: "/readyz", signal: options.signal }, options.retry), "GET /readyz");
  }

  /** `GET /metrics`: Prometheus text. */
  async metrics(options: CallOptions = {}): Promise<string> {
    return (await this.request({ method: "GET", path: "/metrics", headers: { accept: "text/plain" }, signal: options.signal }, options.retry)).text;
  }

  /** `GET /openapi.json`: the OpenAPI 3.1 document. */
  async openapi(options: CallOptions = {}): Promise<Record<string, unknown>> {
    return jsonBody(await this.request({ method: "GET", path: "/openapi.json", signal: options.signal }, options.retry), "GET /openapi.json");
  }

  // ------------------------------------------------------------------ transport

  private request(request: HttpRequest, retry: Partial<RetryPolicy> | false | undefined): Promise<HttpAnswer> {
    let policy: RetryPolicy | false = this.retryPolicy;
    if (retry === false) policy = false;
    else if (retry !== undefined) policy = { ...(policy === false ? DEFAULT_RETRY_POLICY : policy), ...retry };
    if (policy === false) return this.http.send(request);
    return withRetry(
      () => this.http.send(request),
      (error) => error instanceof SwooshApiError && error.retryable,
      policy,
      {
        signal: request.signal,
        onRetry: (error, retryNumber, delayMs) => this.options.onRetry?.({ method: request.method, path: request.path, error, retry: retryNumber, delayMs }),
      },
    );
  }
}
