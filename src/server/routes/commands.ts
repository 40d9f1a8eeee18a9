/**
 * `POST /commands`: a batch of commands in one request — the round-trip-
 * amortizing protocol for workers (complete what finished and claim the next
 * tasks in one call) and for bulk producers.
 *
 * Body `{commands: [{type, payload, id?, hlc?}, …]}` (1 to BATCH_COMMANDS_MAX, 1000).
 * The commands are handed to the engine in array order within one turn of the
 * event loop, so each one is validated against the state its predecessors left
 * and all of them share the same group commit. The answer — `{results: […]}`,
 * one item per command, `{index, hlc, result, duplicate?}` or
 * `{error: {code, message, details?}}` — is written once every accepted
 * command is durable (G1). A refused command does not stop the others: the
 * batch is not a transaction.
 *
 * `applyBatch` is the whole route past body parsing; the Fastify route and
 * the lean hot path (hot-path.ts) both call it.
 */
import { Readable } from "node:stream";
import type { FastifyBaseLogger, FastifyInstance } from "fastify";
import type { CommandOutcome } from "../../engine/engine.ts";
import type { ErrorBody } from "../../core/errors.ts";
import { JSON_CONTENT_TYPE, toSwooshError } from "../errors.ts";
import type { ServerRuntime } from "../runtime.ts";
import { checkCommandBatch, checkCommandEnvelope } from "../schemas.ts";
import { submitParsed } from "./command.ts";
import { readQuery } from "./common.ts";

export type BatchItem = CommandOutcome | { error: ErrorBody };

/** `POST /commands` past body parsing. */
export async function applyBatch(runtime: ServerRuntime, body: unknown, log: FastifyBaseLogger): Promise<{ results: BatchItem[] }> {
  const commands = checkCommandBatch(body);
  const engine = runtime.requireEngine();
  // Submit synchronously in order: the engine applies each before the next is looked at.
  const pending = commands.map((item) => {
    try {
      return submitParsed(runtime, engine, checkCommandEnvelope(item));
    } catch (error) {
      return Promise.reject(error instanceof Error ? error : new Error(String(error)));
    }
  });
  const settled = await Promise.allSettled(pending);
  const results: BatchItem[] = [];
  const refusals: ErrorBody["code"][] = [];
  for (const outcome of settled) {
    if (outcome.status === "fulfilled") {
      results.push(outcome.value);
      continue;
    }
    const known = toSwooshError(outcome.reason);
    // Anything unknown (a bug) fails the whole request as the single-command route would.
    if (known === null) throw outcome.reason;
    refusals.push(known.code);
    results.push({ error: known.toBody() });
  }
  // The engine stopped (flush failed, or shutting down) before any of it was durable: answer as /command would
  // (the request is then counted once, where it is answered). Items accepted before it stopped are durable and keep their slots otherwise.
  if (results.every((item) => "error" in item && item.error.code === "unavailable")) {
    throw toSwooshError(settled.find((o) => o.status === "rejected")?.reason) ?? new Error("unavailable");
  }
  // Refused items are answered inside the 200: counted here, one per item.
  for (const code of refusals) runtime.metrics.rejected(code);
  log.debug({ commands: commands.length }, "command batch applied");
  return { results };
}

/**
 * Past this many characters a batch's answer is built as UTF-8 pieces instead
 * of one string: 1,000 claims of up to 16 MiB of payloads each can pass V8's
 * longest string (~512 MiB), and the commands are applied by then.
 */
export const BATCH_ANSWER_STRING_CHARS_MAX = 64 * 1024 * 1024;

/**
 * `JSON.stringify(answer)`, as one string while it is short, else as buffers
 * whose concatenation is that text (each item serialized on its own, so no
 * single string grows past the longest item).
 */
export function batchAnswerBody(answer: { results: BatchItem[] }, stringCharsMax = BATCH_ANSWER_STRING_CHARS_MAX): string | Buffer[] {
  const head = '{"results":[';
  const texts: string[] = [];
  let chars = head.length;
  let pieces: Buffer[] | null = null;
  answer.results.forEach((item, i) => {
    const text = (i === 0 ? "" : ",") + JSON.stringify(item);
    chars += text.length;
    if (pieces === null && chars <= stringCharsMax) {
      texts.push(text);
      return;
    }
    if (pieces === null) {
      pieces = [Buffer.from(head + texts.join(""))];
      texts.length = 0;
    }
    pieces.push(Buffer.from(text));
  });
  if (pieces === null) return `${head}${texts.join("")}]}`;
  const bytes: Buffer[] = pieces;
  bytes.push(Buffer.from("]}"));
  return bytes;
}

export function registerCommandsRoute(app: FastifyInstance, runtime: ServerRuntime): void {
  app.post("/commands", async (request, reply) => {
    readQuery(request.query, []);
    const body = batchAnswerBody(await applyBatch(runtime, request.body, request.log));
    reply.type(JSON_CONTENT_TYPE);
    if (typeof body === "string") return reply.send(body);
    return reply.header("content-length", body.reduce((sum, piece) => sum + piece.length, 0)).send(Readable.from(body));
  });
}
