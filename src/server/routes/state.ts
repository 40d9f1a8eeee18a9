/**
 * `GET /state` and `POST /state` (SPEC §7, §4).
 *
 * GET answers `{index, hlc, stateHash, logHash, state}` read at one index,
 * with `ETag: "<stateHash>"`; `If-None-Match` naming that hash (quoted or not,
 * weak or strong) gets 304, and `*` always does (there is always a current
 * state), without a text read for sending or a slot for one. `?at=INDEX`
 * answers the state as of that index (404 past the end, 410 when the log no
 * longer reaches back).
 *
 * POST initializes the data dir with a genesis document: 201 when it did,
 * 200 when the dir already holds the same genesis.
 */
import { Readable } from "node:stream";
import type { FastifyInstance, FastifyReply } from "fastify";
import { SwooshError } from "../../core/errors.ts";
import type { StateText } from "../../engine/engine.ts";
import { JSON_CONTENT_TYPE } from "../errors.ts";
import type { ServerRuntime } from "../runtime.ts";
import { parseIndex, readQuery } from "./common.ts";

/**
 * Distinct state texts being sent at once. Each holds a whole state's text
 * (~36 MB at 100,000 tasks) until its client has read it all, and a client
 * may read slowly (a silent one is cut off by the connection timeout); past
 * this many, GET /state answers 503 `unavailable` with Retry-After until one
 * of them is done, so slow readers cannot make the server's memory grow
 * without bound. Clients reading at one index share one text.
 */
export const STATE_TEXTS_SENDING_MAX = 4;

/** A GET /state from the moment it may read a text until its response is done. */
interface StateSlot {
  /** What it reads: the live state at an index, or a time travel's target. */
  readonly key: string;
  /** A text of `key` that responses are sending now: this one sends it too, with no read of its own. */
  readonly shared: StateText | null;
  text: StateText | null;
  closed: boolean;
}

/**
 * The texts responses are sending (each with how many responses send it), and
 * the reads under way that will hold one, by what they read: a burst of reads
 * is counted before any of them holds a text, and reads of the same thing
 * (clients polling one index) share a place, as they share the text.
 */
class SendingTexts {
  private readonly responses = new Map<StateText, number>();
  /** The text responses are sending for each key (the latest, when several). */
  private readonly sendingByKey = new Map<string, StateText>();
  private readonly reading = new Map<string, number>();

  /**
   * Room for the text `key` names, held until `reply`'s response is done; else
   * 503 `unavailable` with Retry-After. A key being read or sent takes no more
   * room: the engine shares reads of one key, and a text being sent is reused.
   */
  reserve(reply: FastifyReply, key: string): StateSlot {
    const shared = this.sendingByKey.get(key) ?? null;
    const taken = this.reading.size + this.responses.size;
    if (shared === null && !this.reading.has(key) && taken >= STATE_TEXTS_SENDING_MAX) {
      reply.header("retry-after", "1");
      throw new SwooshError("unavailable", `${taken} state texts are being read or sent to clients; retry once one of them is done`, { sending: taken });
    }
    this.reading.set(key, (this.reading.get(key) ?? 0) + 1);
    const slot: StateSlot = { key, shared, text: null, closed: false };
    reply.raw.once("close", () => {
      slot.closed = true;
      if (slot.text === null) this.doneReading(key);
      else this.release(slot as StateSlot & { text: StateText });
    });
    return slot;
  }

  /** The slot's read gave `read`, which its response now sends (sharing it with others that send the same text). */
  hold(slot: StateSlot, read: StateText): void {
    if (slot.closed || slot.text !== null) return;
    this.doneReading(slot.key);
    slot.text = read;
    this.responses.set(read, (this.responses.get(read) ?? 0) + 1);
    this.sendingByKey.set(slot.key, read);
  }

  private doneReading(key: string): void {
    countDown(this.reading, key);
  }

  private release(slot: StateSlot & { text: StateText }): void {
    countDown(this.responses, slot.text);
    if (!this.responses.has(slot.text) && this.sendingByKey.get(slot.key) === slot.text) this.sendingByKey.delete(slot.key);
  }
}

/** One fewer of `key` in `counts`; the key goes at zero. */
function countDown<K>(counts: Map<K, number>, key: K): void {
  const left = (counts.get(key) ?? 1) - 1;
  if (left > 0) counts.set(key, left);
  else counts.delete(key);
}

/** True when an If-None-Match header value names `hash`. */
export function etagMatches(header: string | string[] | undefined, hash: string): boolean {
  if (header === undefined) return false;
  const values = (Array.isArray(header) ? header.join(",") : header).split(",");
  for (const raw of values) {
    let tag = raw.trim();
    if (tag === "*") return true;
    if (tag.startsWith("W/")) tag = tag.slice(2);
    if (tag.length >= 2 && tag.startsWith('"') && tag.endsWith('"')) tag = tag.slice(1, -1);
    if (tag === hash) return true;
  }
  return false;
}

/**
 * True when an If-None-Match header value is `*`: false, per RFC 9110
 * §13.1.2, whenever the resource has a current representation, and GET /state
 * always has one (an `?at` index that has none keeps its 404 or 410).
 */
function matchesAnyTag(header: string | string[] | undefined): boolean {
  if (header === undefined) return false;
  return (Array.isArray(header) ? header.join(",") : header).split(",").some((tag) => tag.trim() === "*");
}

/** 304 Not Modified carrying the ETag a 200 would have (RFC 9110 §15.4.5). */
function notModified(reply: FastifyReply, stateHash: string): FastifyReply {
  return reply.code(304).header("etag", `"${stateHash}"`).send();
}

/** The response's members before the state, in the order GET /state has always listed them. */
function stateHead(read: StateText): string {
  return `{"index":${read.index},"hlc":${JSON.stringify(read.hlc)},"stateHash":"${read.stateHash}","logHash":"${read.logHash}","state":`;
}

function* stateBody(head: string, pieces: readonly (string | Buffer)[]): Generator<Buffer> {
  yield Buffer.from(head);
  for (const piece of pieces) yield typeof piece === "string" ? Buffer.from(piece) : piece;
  yield Buffer.from("}");
}

/** The answer `{index, hlc, stateHash, logHash, state}`, the state sent as the text it was read as. */
function sendStateText(reply: FastifyReply, read: StateText, sending: SendingTexts, slot: StateSlot): FastifyReply {
  sending.hold(slot, read);
  const head = stateHead(read);
  return reply
    .type(JSON_CONTENT_TYPE)
    .header("content-length", Buffer.byteLength(head) + read.byteLength + 1)
    .send(Readable.from(stateBody(head, read.pieces)));
}

export function registerStateRoutes(app: FastifyInstance, runtime: ServerRuntime): void {
  const sending = new SendingTexts();
  /** A read the engine gave up for want of heap (it names the figures) is worth retrying in a few seconds: say so. */
  const retryLaterWhenShortOfMemory = async (reply: FastifyReply, read: Promise<StateText>): Promise<StateText> => {
    try {
      return await read;
    } catch (error) {
      const details = error instanceof SwooshError ? error.details : undefined;
      if (typeof details === "object" && details !== null && "heapLimitBytes" in details) reply.header("retry-after", "5");
      throw error;
    }
  };
  app.get("/state", async (request, reply) => {
    const engine = runtime.requireEngine();
    const { at: atText } = readQuery(request.query, ["at"]);
    const ifNoneMatch = request.headers["if-none-match"];
    if (matchesAnyTag(ifNoneMatch)) {
      // 304 whatever the state is: only its hash is needed for the ETag, so no
      // text is held for sending and no slot taken (none free is no reason for 503).
      if (atText === undefined) return notModified(reply, await engine.stateHash());
      // A past index's hash comes from its time travel (404 or 410 as without the header); the text is let go at once.
      return notModified(reply, (await retryLaterWhenShortOfMemory(reply, engine.stateTextAt(parseIndex(atText, "at")))).stateHash);
    }
    if (atText !== undefined) {
      // Time travel: a snapshot plus a replay, done a step at a time, then sent as for the live state.
      const at = parseIndex(atText, "at");
      const slot = sending.reserve(reply, `at ${at}`);
      const read = slot.shared ?? (await retryLaterWhenShortOfMemory(reply, engine.stateTextAt(at)));
      reply.header("etag", `"${read.stateHash}"`);
      if (etagMatches(ifNoneMatch, read.stateHash)) return reply.code(304).send();
      return sendStateText(reply, read, sending, slot);
    }
    if (ifNoneMatch !== undefined) {
      // Polling: while nothing was applied, the remembered hash answers 304 without reading the state.
      const remembered = await engine.rememberedStateHash();
      if (remembered !== undefined && etagMatches(ifNoneMatch, remembered)) return notModified(reply, remembered);
    }
    // The state's canonical text, read a slice at a time and sent as it is:
    // no copy of the state, and no one long serialization on the event loop.
    const slot = sending.reserve(reply, `live ${engine.stats().appliedIndex}`);
    const read = slot.shared ?? (await retryLaterWhenShortOfMemory(reply, engine.stateText()));
    reply.header("etag", `"${read.stateHash}"`);
    if (etagMatches(ifNoneMatch, read.stateHash)) return reply.code(304).send();
    return sendStateText(reply, read, sending, slot);
  });

  app.post("/state", async (request, reply) => {
    readQuery(request.query, []);
    const { genesis, created } = await runtime.initialize(request.body);
    request.log.info({ clusterId: genesis.clusterId, genesisHash: genesis.stateHash, created }, created ? "data dir initialized" : "same genesis again");
    return reply.code(created ? 201 : 200).send({ clusterId: genesis.clusterId, stateHash: genesis.stateHash, created });
  });
}
