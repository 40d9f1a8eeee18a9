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

/** A listen address on the loopback interface ("localhost", 127.0.0.0/8, ::1). */
export function isLoopbackAddress(host: string): boolean {
  return host === "localhost" || host === "::1" || host === "[::1]" || /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(host);
}

/**
 * `Host` names a loopback address: localhost (and *.localhost, RFC 6761,
 * which browsers resolve to loopback themselves), 127.0.0.0/8 or [::1], with
 * or without a port. An absent Host is only possible in HTTP/1.0, which no
 * browser sends.
 */
export function isLoopbackHost(hostHeader: string | undefined): boolean {
  if (hostHeader === undefined) return true;
  const match = /^(\[::1\]|[^:[\]]+)(?::\d{1,5})?$/.exec(hostHeader);
  if (match === null) return false;
  const name = (match[1] as string).toLowerCase().replace(/\.$/, "");
  return name === "localhost" || name.endsWith(".localhost") || name === "[::1]" || /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(name);
}

export function foreignHost(hostHeader: string): SwooshError {
  return new SwooshError(
    "bad_request",
    `Host ${JSON.stringify(hostHeader)} is not a loopback name: without a token this server answers only requests for 127.0.0.1, localhost or [::1] (a guard against DNS rebinding); set --token-file or SWOOSH_TOKEN to accept other names`,
    { header: "host" },
  );
}
