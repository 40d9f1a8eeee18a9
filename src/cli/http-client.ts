/**
 * The HTTP client behind `swoosh state` and `swoosh command`: one JSON request
 * to a running server (global fetch), with SPEC §9 exit codes for every way it
 * can go wrong: a 4xx answer is the caller's mistake (2), a 5xx answer, no
 * answer or a timeout is a runtime failure (1). Error lines carry the SPEC §6
 * error code and message, never a stack trace.
 */
import { Option } from "commander";
import type { Command } from "commander";
import { CliError, EXIT_BAD_INPUT, EXIT_RUNTIME_FAILURE } from "./exit-codes.ts";
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

/** Sends one request and returns the parsed JSON answer of a 2xx response. */
export async function requestJson(client: ClientOptions, method: "GET" | "POST", pathAndQuery: string, body?: unknown): Promise<unknown> {
  const target = `${client.url}${pathAndQuery}`;
  const headers: Record<string, string> = { accept: "application/json" };
  if (body !== undefined) headers["content-type"] = "application/json";
  if (client.token !== undefined) headers.authorization = `Bearer ${client.token}`;
  let response: Response;
  let text: string;
  try {
    response = await fetch(target, {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
      signal: AbortSignal.timeout(client.timeoutMs),
    });
    text = await response.text();
  } catch (error) {
    if ((error as Error).name === "TimeoutError") throw new CliError(`${method} ${target}: no answer within ${client.timeoutMs} ms`, EXIT_RUNTIME_FAILURE);
    throw new CliError(`cannot reach ${client.url}: ${networkReason(error)}`, EXIT_RUNTIME_FAILURE);
  }
  if (!response.ok) {
    const exitCode = response.status >= 400 && response.status < 500 ? EXIT_BAD_INPUT : EXIT_RUNTIME_FAILURE;
    throw new CliError(describeErrorAnswer(response.status, response.statusText, text), exitCode);
  }
  try {
    return JSON.parse(text);
  } catch {
    throw new CliError(`${method} ${target}: HTTP ${response.status} with a body that is not JSON`, EXIT_RUNTIME_FAILURE);
  }
}

export function printJson(value: unknown): void {
  process.stdout.write(`${JSON.stringify(value, null, 2)}\n`);
}
