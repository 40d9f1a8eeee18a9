/**
 * The guard against DNS rebinding for a server without a token on a
 * loopback address (the default): a web page can have its own host name
 * resolve to 127.0.0.1, and the browser then lets its scripts read GET /state
 * and send commands, whose task payloads workers may act on. Such requests
 * carry the page's host name in `Host`; requests for this server name a
 * loopback address. So without a token, only loopback names are served
 * (`/healthz`, which tells nothing, stays open to all). With a token, the
 * page cannot authenticate, and any name is accepted (reverse proxies).
 */
import { SwooshError } from "../core/errors.ts";

/**
 * The host name of an authority (`name[:port]`), as a URL parser reads it:
 * lower-cased, IPv4 shorthand expanded (`127.1` is 127.0.0.1), IPv6
 * compressed in brackets (`[0:0:0:0:0:0:0:1]` is `[::1]`), without a trailing
 * dot. Null for anything that is no authority (user info, a path, spaces).
 */
function hostnameOf(authority: string): string | null {
  if (!/^[A-Za-z0-9._~:[\]-]+$/.test(authority)) return null;
  try {
    return new URL(`http://${authority}/`).hostname.replace(/\.$/, "");
  } catch {
    return null;
  }
}

/** localhost and *.localhost (RFC 6761: browsers resolve them to loopback themselves), 127.0.0.0/8, ::1, and ::ffff:127.0.0.0/104. */
function isLoopbackName(hostname: string): boolean {
  return (
    hostname === "localhost" ||
    hostname.endsWith(".localhost") ||
    /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(hostname) ||
    hostname === "[::1]" ||
    /^\[::ffff:7f[0-9a-f]{2}:[0-9a-f]{1,4}\]$/.test(hostname)
  );
}

/** A listen address on the loopback interface, in any of its spellings (`--host LOCALHOST`, `0:0:0:0:0:0:0:1`). */
export function isLoopbackAddress(host: string): boolean {
  const authority = host.includes(":") && !host.startsWith("[") ? `[${host}]` : host;
  const hostname = hostnameOf(authority);
  return hostname !== null && isLoopbackName(hostname);
}

/**
 * `Host` names this server on a loopback address: a loopback name (any
 * spelling, any port), or 0.0.0.0, which reaches the loopback listener on
 * Linux and is no page's origin. An absent Host is only possible in
 * HTTP/1.0, which no browser sends.
 */
export function isLoopbackHost(hostHeader: string | undefined): boolean {
  if (hostHeader === undefined) return true;
  if (hostHeader === lastHostJudged.header) return lastHostJudged.loopback;
  const hostname = hostnameOf(hostHeader);
  const loopback = hostname !== null && (hostname === "0.0.0.0" || isLoopbackName(hostname));
  lastHostJudged = { header: hostHeader, loopback };
  return loopback;
}

/**
 * The last Host value judged, with its verdict (a function of the value
 * alone): a client names the same Host on every request, and parsing it is a
 * URL built per request, a few µs of each POST /command on the write path.
 */
let lastHostJudged: { readonly header: string; readonly loopback: boolean } = { header: "", loopback: false };

export function foreignHost(hostHeader: string): SwooshError {
  return new SwooshError(
    "bad_request",
    `Host ${JSON.stringify(hostHeader)} is not a loopback name: without a token this server answers only requests for 127.0.0.1, localhost or [::1] (a guard against DNS rebinding); set --token-file or SWOOSH_TOKEN to accept other names`,
    { header: "host" },
  );
}
