/**
 * GET /openapi.json: an OpenAPI 3.1 document with every endpoint of SPEC §7,
 * every command type of SPEC §6 (payload, result, command), error responses
 * for every SPEC code, and no dangling $ref. Also checks that the socket-free
 * `buildApp` answers through `app.inject`.
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { ERROR_STATUS } from "../../src/core/errors.ts";
import { COMMAND_TYPES } from "../../src/domain/index.ts";
import { ServerRuntime, buildApp, createLogger } from "../../src/server/index.ts";
import { commandComponentName } from "../../src/server/openapi.ts";
import { tempDirClosedFirst } from "../support/engine-fixtures.ts";
import { get, startTestServer } from "./helpers.ts";

type Json = { [key: string]: unknown };

function collectRefs(node: unknown, out: string[] = []): string[] {
  if (Array.isArray(node)) for (const item of node) collectRefs(item, out);
  else if (typeof node === "object" && node !== null) {
    for (const [key, value] of Object.entries(node)) {
      if (key === "$ref" && typeof value === "string") out.push(value);
      else collectRefs(value, out);
    }
  }
  return out;
}

function resolve(doc: Json, ref: string): unknown {
  assert.ok(ref.startsWith("#/"), ref);
  return ref
    .slice(2)
    .split("/")
    .reduce<unknown>((node, part) => (node as Json | undefined)?.[part.replace(/~1/g, "/").replace(/~0/g, "~")], doc);
}

describe("server: OpenAPI", () => {
  it("publishes every endpoint and command type, with errors, and no dangling $ref", async (t) => {
    const { url } = await startTestServer(t);
    const answer = await get(url, "/openapi.json");
    assert.equal(answer.status, 200);
    assert.match(answer.headers.get("content-type") ?? "", /^application\/json/);
    const doc = answer.body as Json;
    assert.equal(doc.openapi, "3.1.0");
    const paths = doc.paths as Record<string, Record<string, Json>>;
    const expected: Array<[string, string]> = [
      ["/state", "get"],
      ["/state", "head"],
      ["/state", "post"],
      ["/command", "post"],
      ["/commands", "post"],
      ["/tasks", "get"],
      ["/tasks/{id}", "get"],
      ["/agents", "get"],
      ["/log", "get"],
      ["/watch", "get"],
      ["/watch", "head"],
      ["/healthz", "get"],
      ["/readyz", "get"],
      ["/metrics", "get"],
      ["/openapi.json", "get"],
    ];
    for (const [path, method] of expected) {
      const operation = paths[path]?.[method];
      assert.ok(operation, `${method.toUpperCase()} ${path}`);
      assert.ok((operation.responses as Json)["200"] ?? (operation.responses as Json)["201"], `${path} success response`);
    }
    assert.deepEqual(Object.keys(paths).sort(), [...new Set(expected.map(([path]) => path))].sort());
    // HEAD is answered on every GET route (Fastify's own), so it is documented on each.
    for (const [path, item] of Object.entries(paths)) if (item.get) assert.ok(item.head, `HEAD ${path}`);
    for (const path of ["/tasks", "/agents", "/log", "/readyz", "/metrics", "/openapi.json", "/healthz"]) {
      const head = await fetch(`${url}${path}`, { method: "HEAD" });
      assert.equal(head.status, 200, `HEAD ${path} is answered`);
    }
    // Every path but /healthz may answer 400 (a foreign Host without a token) and 503 (shutdown began), so each documents them.
    for (const [path, item] of Object.entries(paths)) {
      if (path === "/healthz") continue;
      for (const [method, operation] of Object.entries(item)) {
        for (const status of ["400", "503"]) assert.ok((operation.responses as Json)[status], `${method.toUpperCase()} ${path} documents ${status}`);
      }
    }

    const schemas = (doc.components as Json).schemas as Record<string, Json>;
    const mapping = ((schemas.Command as Json).discriminator as Json).mapping as Record<string, string>;
    assert.deepEqual(Object.keys(mapping).sort(), [...COMMAND_TYPES].sort());
    for (const type of COMMAND_TYPES) {
      const name = commandComponentName(type);
      for (const suffix of ["Payload", "Result", "Command"]) assert.ok(schemas[`${name}${suffix}`], `${name}${suffix}`);
    }
    const responses = (doc.components as Json).responses as Record<string, Json>;
    for (const status of new Set(Object.values(ERROR_STATUS))) assert.ok(responses[`Error${status}`], `Error${status}`);
    const errorCodes = (((schemas.ErrorBody as Json).properties as Json).error as { properties: { code: { anyOf: Array<{ const: string }> } } }).properties.code.anyOf.map((c) => c.const);
    assert.deepEqual(errorCodes.sort(), Object.keys(ERROR_STATUS).sort());
    // The command endpoint documents its 4xx answers.
    assert.ok(["400", "401", "404", "409", "413", "503"].every((status) => (paths["/command"]?.post?.responses as Json)[status]));

    // Headers the server sends are documented: X-Request-Id on every response, the 401's challenge, the 503's Retry-After, Swoosh-Index.
    for (const [path, item] of Object.entries(paths)) {
      for (const [method, operation] of Object.entries(item)) {
        for (const [status, response] of Object.entries(operation.responses as Record<string, Json>)) {
          const resolved = (typeof response.$ref === "string" ? resolve(doc, response.$ref) : response) as Json;
          assert.ok((resolved.headers as Json | undefined)?.["X-Request-Id"], `${method.toUpperCase()} ${path} ${status}: X-Request-Id`);
        }
      }
    }
    assert.ok((responses.Error401?.headers as Json)["WWW-Authenticate"]);
    assert.ok((responses.Error503?.headers as Json)["Retry-After"]);
    for (const path of ["/tasks", "/tasks/{id}", "/agents"]) assert.ok((((paths[path]?.get?.responses as Json)["200"] as Json).headers as Json)["Swoosh-Index"], path);
    // An undecodable task id is a 400; a repeated dependency is refused; lengths are UTF-16 code units.
    assert.ok((paths["/tasks/{id}"]?.get?.responses as Json)["400"]);
    assert.equal((((schemas.TaskSubmitPayload as Json).properties as Json).dependsOn as Json).uniqueItems, true);
    assert.match(String((doc.info as Json).description), /UTF-16 code units/);

    const refs = collectRefs(doc);
    assert.ok(refs.length > 30);
    for (const ref of refs) assert.ok(resolve(doc, ref) !== undefined, `dangling ${ref}`);
    assert.doesNotMatch(answer.text, /"\[object /);
  });

  it("buildApp answers without a socket (app.inject)", async (t) => {
    const { dir, closeFirst } = await tempDirClosedFirst(t, "swoosh-server-");
    const logger = createLogger(false);
    const runtime = await ServerRuntime.create({ dataDir: dir, log: logger, onFatal: () => undefined });
    const app = buildApp(runtime, { logger });
    closeFirst(async () => {
      await runtime.beginClose();
      await app.close();
      await runtime.closeEngine();
    });
    const submitted = await app.inject({ method: "POST", url: "/command", payload: { type: "agent.register", payload: { agentId: "a" } } });
    assert.equal(submitted.statusCode, 200, submitted.body);
    const state = await app.inject({ method: "GET", url: "/state" });
    assert.equal(state.json().index, 1);
  });
});
