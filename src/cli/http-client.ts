/**
 * The HTTP client behind `swoosh state` and `swoosh command`: one JSON request
 * to a running server (global fetch), with SPEC §9 exit codes for every way it
 * can go wrong: a 4xx answer is the caller's mistake (2), a 5xx answer, no
 * answer or a timeout is a runtime failure (1). Error lines carry the SPEC §6
 * error code and message, never a stack trace.
 */
import { Option } from "commander";
import type { Command } from "commander";
import { CliError, EXIT_BAD_INPUT, EXIT_RUNTIME_FAILURE, StdoutClosed } from "./exit-codes.ts";
import { integerIn, parseBaseUrl } from "./flags.ts";
import { resolveToken } from "./token.ts";

export const DEFAULT_URL = "http://127.0.0.1:7777";

export interface ClientFlags {
  url: string;
  tokenFile?: string;
  timeoutMs: number;
}

export interface ClientOptions {
  readonly url: string;
  readonly token?: string;
  readonly timeoutMs: number;
}

/** Adds --url, --token-file and --timeout-ms to a client command. */
export function addClientOptions(command: Command): Command {
  return command
    .addOption(new Option("--url <url>", "the server's base URL").env("SWOOSH_URL").default(DEFAULT_URL).argParser(parseBaseUrl))
    .addOption(new Option("--token-file <file>", "send `Authorization: Bearer <token>` with the token in this file (SWOOSH_TOKEN holds the token itself)").env("SWOOSH_TOKEN_FILE"))
    .addOption(new Option("--timeout-ms <ms>", "give up after this long").default(30_000).argParser(integerIn(1, 3_600_000)));
}

export function clientOptionsFrom(flags: ClientFlags): ClientOptions {
  const token = resolveToken(flags.tokenFile);
  return token === undefined ? { url: flags.url, timeoutMs: flags.timeoutMs } : { url: flags.url, token, timeoutMs: flags.timeoutMs };
}

/** Why fetch failed, as the OS said it (ECONNREFUSED, ENOTFOUND, …) when it did. */
function networkReason(error: unknown): string {
  const cause = (error as { cause?: { code?: string; message?: string } }).cause;
  return cause?.code ?? cause?.message ?? (error as Error).message;
}

/** One line for an error answer: `code: message (HTTP status) details`. */
function describeErrorAnswer(status: number, statusText: string, text: string): string {
  let body: unknown;
  try {
    body = JSON.parse(text);
  } catch {
    return `HTTP ${status} ${statusText}`;
  }
  const error = (body as { error?: { code?: unknown; message?: unknown; details?: unknown } } | null)?.error;
  if (typeof error?.code !== "string") return `HTTP ${status} ${statusText}`;
  const details = error.details === undefined ? "" : ` details: ${JSON.stringify(error.details)}`;
  return `${error.code}: ${String(error.message)} (HTTP ${status})${details}`;
}

/** One request on its way: the answer's head, and how to name a failure while reading it. */
interface Exchange {
  readonly response: Response;
  readonly target: string;
  /** The CliError for `error` thrown while waiting: a timeout, or the server unreachable. */
  failed(error: unknown): CliError;
  /** Stops the timeout (the answer was read, or the exchange given up). */
  done(): void;
}

/**
 * An abort signal for `timeoutMs` whose timer holds the process open.
 * `AbortSignal.timeout`'s does not: when a server closes the connection at
 * once, Node 20's fetch never settles, nothing else is pending, and the
 * process ended with exit code 13 and no message instead of this timeout.
 */
function heldTimeout(timeoutMs: number): { signal: AbortSignal; clear(): void } {
  const controller = new AbortController();
  const timer = setTimeout(() => controller.abort(new DOMException(`no answer within ${timeoutMs} ms`, "TimeoutError")), timeoutMs);
  return { signal: controller.signal, clear: () => clearTimeout(timer) };
}

/** Sends a request; throws the SPEC §9 CliError when there is no answer. */
async function send(client: ClientOptions, method: "GET" | "POST", pathAndQuery: string, body?: unknown): Promise<Exchange> {
  const target = `${client.url}${pathAndQuery}`;
  const headers: Record<string, string> = { accept: "application/json" };
  if (body !== undefined) headers["content-type"] = "application/json";
  if (client.token !== undefined) headers.authorization = `Bearer ${client.token}`;
  const failed = (error: unknown): CliError => {
    if ((error as Error).name === "TimeoutError") return new CliError(`${method} ${target}: no answer within ${client.timeoutMs} ms`, EXIT_RUNTIME_FAILURE);
    return new CliError(`cannot reach ${client.url}: ${networkReason(error)}`, EXIT_RUNTIME_FAILURE);
  };
  const timeout = heldTimeout(client.timeoutMs);
  try {
    const response = await fetch(target, {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
      signal: timeout.signal,
    });
    return { response, target, failed, done: timeout.clear };
  } catch (error) {
    timeout.clear();
    throw failed(error);
  }
}

/** A non-2xx answer as its CliError: 4xx is the caller's mistake (2), anything else a runtime failure (1). */
function refusal(response: Response, text: string): CliError {
  const exitCode = response.status >= 400 && response.status < 500 ? EXIT_BAD_INPUT : EXIT_RUNTIME_FAILURE;
  return new CliError(describeErrorAnswer(response.status, response.statusText, text), exitCode);
}

function notJson(method: string, exchange: Exchange): CliError {
  return new CliError(`${method} ${exchange.target}: HTTP ${exchange.response.status} with a body that is not JSON`, EXIT_RUNTIME_FAILURE);
}

/** Sends one request and returns the parsed JSON answer of a 2xx response. */
export async function requestJson(client: ClientOptions, method: "GET" | "POST", pathAndQuery: string, body?: unknown): Promise<unknown> {
  const exchange = await send(client, method, pathAndQuery, body);
  let text: string;
  try {
    text = await exchange.response.text();
  } catch (error) {
    throw exchange.failed(error);
  } finally {
    exchange.done();
  }
  if (!exchange.response.ok) throw refusal(exchange.response, text);
  try {
    return JSON.parse(text);
  } catch {
    throw notJson(method, exchange);
  }
}

export function printJson(value: unknown): void {
  process.stdout.write(`${JSON.stringify(value, null, 2)}\n`);
}

/**
 * Answers up to this size are parsed and printed indented; a larger one is
 * copied to stdout as the server sent it (compact JSON), a chunk at a time:
 * a large state indented would need several times its size in memory, and
 * past ~512 MiB it cannot be held as one string at all.
 */
export const PRETTY_ANSWER_BYTES_MAX = 64 * 1024 * 1024;

/**
 * GET `pathAndQuery` and print its JSON answer: indented when it is at most
 * PRETTY_ANSWER_BYTES_MAX bytes, otherwise streamed as is. Errors as `requestJson`.
 */
export async function printAnswer(client: ClientOptions, pathAndQuery: string): Promise<void> {
  const exchange = await send(client, "GET", pathAndQuery);
  try {
    await printExchange(exchange);
  } finally {
    exchange.done();
  }
}

async function printExchange(exchange: Exchange): Promise<void> {
  const { response } = exchange;
  if (!response.ok || response.body === null) throw refusal(response, await response.text().catch(() => ""));
  const reader = response.body.getReader();
  const held: Uint8Array[] = [];
  let heldBytes = 0;
  let streaming = false;
  try {
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      if (streaming) {
        await writeOut(value);
        continue;
      }
      held.push(value);
      heldBytes += value.byteLength;
      if (heldBytes > PRETTY_ANSWER_BYTES_MAX) {
        streaming = true;
        for (const chunk of held.splice(0)) await writeOut(chunk);
      }
    }
  } catch (error) {
    // Stop receiving (else the connection keeps the process alive until the timeout).
    await reader.cancel().catch(() => undefined);
    if (error instanceof CliError) throw error;
    // Cut off mid-answer: what was printed is incomplete, and the exit status says so.
    if (!streaming) throw exchange.failed(error);
    throw new CliError(`GET ${exchange.target}: the answer broke off after part of it was printed: ${networkReason(error)}`, EXIT_RUNTIME_FAILURE);
  }
  if (streaming) {
    await writeOut(new TextEncoder().encode("\n"));
    return;
  }
  let value: unknown;
  try {
    value = JSON.parse(Buffer.concat(held).toString("utf8"));
  } catch {
    throw notJson("GET", exchange);
  }
  printJson(value);
}

/** Writes to stdout, waiting while its buffer is full (a pipe to a slow reader), so memory stays bounded. */
function writeOut(bytes: Uint8Array): Promise<void> {
  return new Promise((resolve, reject) => {
    process.stdout.write(bytes, (error) => {
      if (!error) resolve();
      else if ((error as NodeJS.ErrnoException).code === "EPIPE") reject(new StdoutClosed());
      else reject(new CliError(`writing to stdout failed: ${error.message}`, EXIT_RUNTIME_FAILURE));
    });
  });
}
