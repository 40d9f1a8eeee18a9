/**
 * A server-sent events parser (the WHATWG "event stream" rules, the parts a
 * Swoosh stream uses): feed it text as it arrives, get whole events back.
 *
 * Lines end with LF, CR LF or CR; a blank line dispatches the event; `data:`
 * lines join with LF; `id:` sets the last event id (kept across events, as
 * EventSource does); `event:` names the event (default "message"); `retry:`
 * suggests a reconnect delay; lines starting with `:` are comments (keep-alives,
 * and Swoosh's opening `: swoosh watch from N`), handed to `onComment`.
 */

export interface SseEvent {
  /** The last event id as of this event (undefined until one was sent). */
  readonly id: string | undefined;
  readonly event: string;
  readonly data: string;
}

export class SseParser {
  private buffer = "";
  private data: string[] = [];
  private eventName = "";
  private lastEventIdValue: string | undefined;
  /** The reconnect delay the server suggested last (`retry:`), if any. */
  retryMs: number | undefined;

  /** `onComment` gets the text of each comment line, without the colon and one leading space. */
  constructor(private readonly onComment?: (text: string) => void) {}

  get lastEventId(): string | undefined {
    return this.lastEventIdValue;
  }

  /** Adds a chunk of the stream and returns the events it completed. */
  push(chunk: string): SseEvent[] {
    this.buffer += chunk;
    const events: SseEvent[] = [];
    for (;;) {
      const match = /\r\n|\r|\n/.exec(this.buffer);
      if (match === null) break;
      // A CR at the very end may be the first half of CR LF: wait for the next chunk.
      if (match[0] === "\r" && match.index === this.buffer.length - 1) break;
      const line = this.buffer.slice(0, match.index);
      this.buffer = this.buffer.slice(match.index + match[0].length);
      const event = this.line(line);
      if (event !== undefined) events.push(event);
    }
    return events;
  }

  private line(line: string): SseEvent | undefined {
    if (line === "") return this.dispatch();
    if (line.startsWith(":")) {
      this.onComment?.(line.slice(line.startsWith(": ") ? 2 : 1));
      return undefined;
    }
    const colon = line.indexOf(":");
    const field = colon === -1 ? line : line.slice(0, colon);
    let value = colon === -1 ? "" : line.slice(colon + 1);
    if (value.startsWith(" ")) value = value.slice(1);
    switch (field) {
      case "data":
        this.data.push(value);
        break;
      case "event":
        this.eventName = value;
        break;
      case "id":
        if (!value.includes("\0")) this.lastEventIdValue = value;
        break;
      case "retry":
        if (/^\d+$/.test(value)) this.retryMs = Number(value);
        break;
      default:
        break;
    }
    return undefined;
  }

  private dispatch(): SseEvent | undefined {
    const data = this.data;
    const eventName = this.eventName;
    this.data = [];
    this.eventName = "";
    if (data.length === 0) return undefined;
    return { id: this.lastEventIdValue, event: eventName === "" ? "message" : eventName, data: data.join("\n") };
  }
}
