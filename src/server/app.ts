/**
 * The Fastify application: hooks, the body parser, error handling and the
 * routes of SPEC §7, over a `ServerRuntime`. No socket here: `startServer`
 * (index.ts) listens; tests may use `app.inject`.
 *
 * Every request passes, in order: a request id (`X-Request-Id` echoed, taken
 * from the client when it is a short token, else a UUID), the token check
 * (auth.ts), and the runtime's gate (503 while shutting down or after a WAL
 * failure). `/healthz` passes the last two unconditionally.
 */
import http from "node:http";
import Fastify from "fastify";
import type { FastifyBaseLogger, FastifyInstance } from "fastify";
import { bearerChecker, PUBLIC_PATHS, unauthorized } from "./auth.ts";
import { closesConnection, processable, trackRequest } from "./connection-ledger.ts";
import { foreignHost, isLoopbackHost } from "./host-guard.ts";
import { answerFor, clientErrorHandlerFor, installErrorHandlers, sendError, toSwooshError } from "./errors.ts";
import { createHotPath } from "./hot-path.ts";
import type { HotPath } from "./hot-path.ts";
import { installJsonBodyParser } from "./json-body.ts";
import { registerAgentRoutes } from "./routes/agents.ts";
import { registerCommandRoute } from "./routes/command.ts";
import { registerCommandsRoute } from "./routes/commands.ts";
import { registerHealthRoutes } from "./routes/health.ts";
import { registerLogRoute } from "./routes/log.ts";
import { registerMetricsRoute } from "./routes/metrics.ts";
import { registerOpenApiRoute } from "./routes/openapi.ts";
import { registerStateRoutes } from "./routes/state.ts";
import { registerTaskRoutes } from "./routes/tasks.ts";
import { registerWatchRoute } from "./routes/watch.ts";
import { parseQueryString } from "./query-string.ts";
import { requestIdOf } from "./request-id.ts";
import type { ServerRuntime } from "./runtime.ts";
import { SwooshError } from "../core/errors.ts";

export const BODY_LIMIT_BYTES_DEFAULT = 1024 * 1024;

/** The routes whose refusals `swoosh_command_rejections_total` counts. */
const WRITE_PATHS: ReadonlySet<string> = new Set(["/command", "/commands"]);

/** Timeouts, each bounding what one slow or silent client can hold. */
export const HTTP_TIMEOUTS = {
  /** Whole request (headers and body) must arrive within this. */
  requestTimeoutMs: 30_000,
  /** Headers must arrive within this (slowloris). */
  headersTimeoutMs: 10_000,
  /** A socket with no traffic either way is closed (watch streams send heartbeats well within it). */
  connectionTimeoutMs: 60_000,
  /** An idle keep-alive connection is closed after this. */
  keepAliveTimeoutMs: 5_000,
  /**
   * How often Node enforces the two request timeouts above. Its default, 30 s,
   * let a slowloris connection live up to 40 s instead of 10; checked every
   * second, a timeout holds to within a second.
   */
  checkIntervalMs: 1_000,
} as const;

/** Longest URL-decoded path parameter (a task id of 1024 UTF-16 units, percent-encoded, fits). */
const PARAM_LENGTH_MAX = 12_288;

export interface AppOptions {
  readonly logger: FastifyBaseLogger;
  /** Bearer token; undefined = no authentication. */
  readonly token?: string;
  readonly bodyLimitBytes?: number;
  /** Serve only requests whose Host is a loopback name (host-guard.ts): set without a token on a loopback address. */
  readonly loopbackHostsOnly?: boolean;
}

export function buildApp(runtime: ServerRuntime, options: AppOptions): FastifyInstance {
  const bodyLimitBytes = options.bodyLimitBytes ?? BODY_LIMIT_BYTES_DEFAULT;
  const tokenOk = options.token === undefined ? null : bearerChecker(options.token);
  // Set once Fastify (and its logger) exist; the server is created inside Fastify() below.
  let hotPath: HotPath | null = null;
  const app = Fastify({
    loggerInstance: options.logger,
    bodyLimit: bodyLimitBytes,
    // Strict percent-decoding of the query: what does not decode is refused by readQuery (query-string.ts).
    routerOptions: { maxParamLength: PARAM_LENGTH_MAX, querystringParser: parseQueryString },
    requestTimeout: HTTP_TIMEOUTS.requestTimeoutMs,
    connectionTimeout: HTTP_TIMEOUTS.connectionTimeoutMs,
    keepAliveTimeout: HTTP_TIMEOUTS.keepAliveTimeoutMs,
    // The server Fastify would build, plus the lean path for the write routes (hot-path.ts) in front of its handler.
    serverFactory: (fastifyHandler) => {
      const server = http.createServer(
        // Node answers an HTTP/1.1 request without Host with a bare 400 (no body); the onRequest hook below does it in JSON.
        { connectionsCheckingInterval: HTTP_TIMEOUTS.checkIntervalMs, requireHostHeader: false },
        (request, response) => {
          trackRequest(request, response);
          if (hotPath === null || !hotPath(request, response)) fastifyHandler(request, response);
        },
      );
      // An Expect other than 100-continue is ignored (RFC 9110 §10.1.1 allows it): the request is served, or
      // refused, as any other, instead of Node's bare 417 sent before the token is even checked.
      server.on("checkExpectation", (request: http.IncomingMessage, response: http.ServerResponse) => server.emit("request", request, response));
      server.keepAliveTimeout = HTTP_TIMEOUTS.keepAliveTimeoutMs;
      server.requestTimeout = HTTP_TIMEOUTS.requestTimeoutMs;
      server.setTimeout(HTTP_TIMEOUTS.connectionTimeoutMs);
      return server;
    },
    // Our gate answers 503 in the SPEC error shape while closing; Fastify's would not.
    return503OnClosing: false,
    // Connections are ended by drainConnections (index.ts): closing idle ones at once reset requests on their way.
    forceCloseConnections: false,
    requestIdHeader: false,
    genReqId: requestIdOf,
    clientErrorHandler: clientErrorHandlerFor(options.logger),
    // A URL Fastify cannot decode (`/tasks/%zz`) ends here, before the onRequest
    // hook: the same request id and token check, then the 400.
    frameworkErrors: (error, request, reply) => {
      reply.header("x-request-id", String(request.id));
      if (tokenOk !== null && !tokenOk(request.headers.authorization)) {
        reply.header("www-authenticate", 'Bearer realm="swoosh"');
        sendError(reply, answerFor(unauthorized(), request.log, String(request.id)));
        return;
      }
      // Logged as the error handler logs a refusal (an unknown failure becomes a 503 there, so it is named 400 first).
      sendError(reply, answerFor(toSwooshError(error) ?? new SwooshError("bad_request", "the request could not be routed"), request.log, String(request.id)));
    },
  }) as unknown as FastifyInstance;

  app.server.headersTimeout = HTTP_TIMEOUTS.headersTimeoutMs;
  installJsonBodyParser(app);
  // The write routes' refusals that Fastify answers (the lean path counts its own): one count per request.
  installErrorHandlers(app, (request, code) => {
    // The route matched, not the raw URL: `/%63ommand` is routed (and refused) as /command, so it counts as one.
    if (request.method === "POST" && WRITE_PATHS.has(request.routeOptions.url ?? "")) runtime.metrics.rejected(code);
  });

  const loopbackHostsOnly = options.loopbackHostsOnly === true;
  hotPath = createHotPath({ runtime, log: app.log, bodyLimitBytes, tokenOk, loopbackHostsOnly, requestIdOf });
  // Callback-style hooks: no promise per request on the hot path.
  app.addHook("onRequest", (request, reply, done) => {
    reply.header("x-request-id", String(request.id));
    // RFC 9112 §3.2: an HTTP/1.1 request without Host gets a 400.
    if (request.raw.httpVersion === "1.1" && request.headers.host === undefined) {
      reply.header("connection", "close");
      done(new SwooshError("bad_request", "an HTTP/1.1 request needs a Host header"));
      return;
    }
    const path = request.url.split("?", 1)[0] ?? "";
    if (PUBLIC_PATHS.has(path)) {
      done();
      return;
    }
    if (loopbackHostsOnly && !isLoopbackHost(request.headers.host)) {
      done(foreignHost(request.headers.host ?? ""));
      return;
    }
    if (tokenOk !== null && !tokenOk(request.headers.authorization)) {
      reply.header("www-authenticate", 'Bearer realm="swoosh"');
      done(unauthorized());
      return;
    }
    const refusal = runtime.refusal();
    if (refusal !== null) reply.header("connection", "close");
    done(refusal ?? undefined);
  });

  // Requests that were in flight when shutdown began answer with Connection: close (runtime.closesAtShutdown).
  app.addHook("onSend", (request, reply, payload, done) => {
    if (runtime.closesAtShutdown(request.raw)) reply.header("connection", "close");
    if (reply.getHeader("connection") === "close") closesConnection(request.raw);
    done(null, payload);
  });
  // A request pipelined behind an answer that closes the connection is neither applied nor answered (connection-ledger.ts).
  app.addHook("preHandler", (request, reply, done) => {
    if (processable(request.raw)) {
      done();
      return;
    }
    request.log.info("not processed: an earlier answer on its connection closes it (RFC 9112 §9.6)");
    reply.hijack();
  });

  registerHealthRoutes(app, runtime);
  registerStateRoutes(app, runtime);
  registerCommandRoute(app, runtime);
  registerCommandsRoute(app, runtime);
  registerTaskRoutes(app, runtime);
  registerAgentRoutes(app, runtime);
  registerLogRoute(app, runtime);
  registerWatchRoute(app, runtime);
  registerMetricsRoute(app, runtime);
  registerOpenApiRoute(app);
  return app;
}
