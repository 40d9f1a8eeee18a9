/**
 * What each connection still owes and whether it is closing, for pipelined
 * requests (several sent on one connection before the first answer).
 *
 * Node parses and dispatches every request it has the bytes of, whatever is
 * still unanswered before it, and writes their answers in order. Two rules
 * follow that Node alone does not keep:
 * - Once an answer with `Connection: close` is decided, no request after it
 *   on that connection may be processed (RFC 9112 §9.6): its answer would
 *   never be written, so a command applied for it is one its client cannot
 *   know about. `processable` says whether a request may still be applied.
 * - Bytes that do not parse after complete requests (Node's clientError)
 *   must not be answered before those requests are: a raw 400 written at
 *   once would be read as the answer to a command that was applied.
 *   `answerAfterPending` holds it until the last owed answer is written.
 */
import type { IncomingMessage, ServerResponse } from "node:http";
import type { Socket } from "node:net";

interface Ledger {
  /** Requests dispatched on the connection so far (each gets the next number). */
  dispatched: number;
  /** Requests answered so far (Node writes answers in order, so these are the first `answered`). */
  answered: number;
  /** The newest request dispatched, to tell whether its body was read in full. */
  newest: IncomingMessage | null;
  /** The number of the request whose answer closes the connection: none after it is processed. */
  closesAfter: number;
  /** A raw answer to write (and then end the connection) once the first `lastWordsAfter` requests are answered. */
  lastWords: string | null;
  lastWordsAfter: number;
}

const LEDGER = Symbol("swoosh.connectionLedger");
const SEQUENCE = Symbol("swoosh.requestSequence");

type TrackedSocket = Socket & { [LEDGER]?: Ledger };
type TrackedRequest = IncomingMessage & { [SEQUENCE]?: number };

function ledgerOf(socket: Socket): Ledger {
  const tracked = socket as TrackedSocket;
  return (tracked[LEDGER] ??= { dispatched: 0, answered: 0, newest: null, closesAfter: Infinity, lastWords: null, lastWordsAfter: 0 });
}

/** Called for every request the server dispatches, in the order Node dispatches them. */
export function trackRequest(request: IncomingMessage, response: ServerResponse): void {
  const socket = request.socket;
  const ledger = ledgerOf(socket);
  const sequence = ++ledger.dispatched;
  (request as TrackedRequest)[SEQUENCE] = sequence;
  ledger.newest = request;
  // A client that said this is its last request (HTTP/1.0, Connection: close): nothing after it is processed.
  if (!response.shouldKeepAlive) ledger.closesAfter = Math.min(ledger.closesAfter, sequence);
  response.once("close", () => {
    ledger.answered += 1;
    if (ledger.lastWords !== null && ledger.answered >= ledger.lastWordsAfter) writeLastWords(socket, ledger);
  });
}

function writeLastWords(socket: Socket, ledger: Ledger): void {
  const words = ledger.lastWords;
  ledger.lastWords = null;
  if (words !== null && socket.writable) socket.end(words);
}

/** The answer to `request` closes its connection: requests dispatched after it are not to be processed. */
export function closesConnection(request: IncomingMessage): void {
  const sequence = (request as TrackedRequest)[SEQUENCE];
  if (sequence === undefined) return;
  const ledger = ledgerOf(request.socket);
  ledger.closesAfter = Math.min(ledger.closesAfter, sequence);
}

/** True when no request was dispatched after `request` on its connection: its answer may close it without leaving one unanswered. */
export function lastDispatched(request: IncomingMessage): boolean {
  const sequence = (request as TrackedRequest)[SEQUENCE];
  if (sequence === undefined) return true;
  return sequence >= ledgerOf(request.socket).dispatched;
}

/** False when an answer before this request on its connection closes it: the request must not be applied (nor answered). */
export function processable(request: IncomingMessage): boolean {
  const sequence = (request as TrackedRequest)[SEQUENCE];
  if (sequence === undefined) return true;
  return sequence <= ledgerOf(request.socket).closesAfter;
}

/**
 * For an answer Node's parser error needs (written raw, then the connection
 * ends): when complete requests before the bad bytes are still owed their
 * answers, `words` waits for the last of them and true is returned; false
 * means nothing is owed, write now. (A request whose own body did not parse
 * is not waited for: these words are its answer.)
 */
export function answerAfterPending(socket: Socket, words: string): boolean {
  const ledger = (socket as TrackedSocket)[LEDGER];
  if (ledger === undefined) return false;
  const owedThrough = ledger.newest !== null && !ledger.newest.complete ? ledger.dispatched - 1 : ledger.dispatched;
  if (ledger.answered >= owedThrough) return false;
  ledger.closesAfter = Math.min(ledger.closesAfter, owedThrough);
  ledger.lastWords ??= words;
  ledger.lastWordsAfter = owedThrough;
  return true;
}
