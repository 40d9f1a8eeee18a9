/**
 * `GET /openapi.json`: an OpenAPI 3.1 document generated from the TypeBox
 * schemas that validate requests (domain/schemas.ts for payloads, results and
 * the state; ./schemas.ts for the envelope and response bodies). JSON Schema
 * 2020-12 is OpenAPI 3.1's own dialect, so the schemas go in unchanged, less
 * TypeBox's symbol keys.
 *
 * Every command type gets `<Name>Payload`, `<Name>Result` and `<Name>Command`
 * components; `Command` is their `oneOf`, discriminated by `type`. Large shared
 * schemas (state, task, agent…) are components, and any inline copy of one is
 * replaced by a `$ref` to it. Error responses list the SPEC §6 codes per status.
 */
import { readFileSync } from "node:fs";
import type { TSchema } from "@sinclair/typebox";
import { ERROR_STATUS } from "../core/errors.ts";
import { JSON_DEPTH_MAX } from "../core/json.ts";
import { BODY_DEPTH_MAX } from "./json-body.ts";
import type { ErrorCode } from "../core/errors.ts";
import {
  AgentSchema,
  COMMAND_PAYLOAD_SCHEMAS,
  COMMAND_RESULT_SCHEMAS,
  COMMAND_TYPES,
  ConfigSchema,
  HlcSchema,
  LeaseSchema,
  OrchestratorStateSchema,
  TaskSchema,
} from "../domain/index.ts";
import type { CommandType } from "../domain/index.ts";
import {
  AgentListSchema,
  COMMAND_ID_LENGTH_MAX,
  CommandEnvelopeSchema,
  CommandOutcomeSchema,
  ErrorBodySchema,
  GenesisDocumentSchema,
  GenesisResultSchema,
  HealthSchema,
  LogEntrySchema,
  LogPageSchema,
  ReadySchema,
  StateResponseSchema,
  TaskListSchema,
} from "./schemas.ts";

type Json = null | boolean | number | string | Json[] | { [key: string]: Json };
type JsonRecord = { [key: string]: Json };

/** A TypeBox schema as plain JSON (symbol keys dropped). */
function plain(schema: TSchema | JsonRecord): JsonRecord {
  return JSON.parse(JSON.stringify(schema)) as JsonRecord;
}

/** "task.submit" → "TaskSubmit". */
export function commandComponentName(type: string): string {
  return type
    .split(/[^A-Za-z0-9]+/)
    .map((part) => part.charAt(0).toUpperCase() + part.slice(1))
    .join("");
}

const ref = (name: string): JsonRecord => ({ $ref: `#/components/schemas/${name}` });

/** Components an inline copy of which becomes a $ref (largest first, so a Task inside a TaskList is found as a Task). */
const SHARED: ReadonlyArray<[string, TSchema]> = [
  ["OrchestratorState", OrchestratorStateSchema],
  ["Task", TaskSchema],
  ["Agent", AgentSchema],
  ["LogEntry", LogEntrySchema],
  ["Config", ConfigSchema],
  ["Lease", LeaseSchema],
];

/** Replaces every subtree equal to a shared component (other than `selfName`) with a $ref. */
function withRefs(node: Json, shared: ReadonlyMap<string, string>, selfName: string | null, root = true): Json {
  if (typeof node !== "object" || node === null) return node;
  if (!root) {
    const name = shared.get(JSON.stringify(node));
    if (name !== undefined && name !== selfName) return ref(name);
  }
  if (Array.isArray(node)) return node.map((item) => withRefs(item, shared, selfName, false));
  const out: JsonRecord = {};
  for (const [key, value] of Object.entries(node)) out[key] = withRefs(value, shared, selfName, false);
  return out;
}

const REQUEST_ID_HEADER: JsonRecord = {
  "X-Request-Id": { description: "The request's id: the client's own when it is 1–64 characters of [A-Za-z0-9._:-], else the server's. Log lines carry it.", schema: { type: "string" } },
};
const INDEX_HEADER: JsonRecord = { "Swoosh-Index": { description: "The log index the answer reflects.", schema: { type: "integer", minimum: 0 } } };
/** Headers particular to an error status. */
const ERROR_HEADERS: Readonly<Record<number, JsonRecord>> = {
  401: { "WWW-Authenticate": { description: 'Bearer realm="swoosh"', schema: { type: "string" } } },
  503: { "Retry-After": { description: "Seconds to wait, when the server knows (GET /state while its state texts are all in use).", schema: { type: "integer", minimum: 0 } } },
};

/** Gives every inline response of every operation the X-Request-Id header (the shared error responses carry it already). */
function withRequestIdHeaders(paths: Record<string, Json>): void {
  for (const item of Object.values(paths) as JsonRecord[]) {
    for (const operation of Object.values(item) as JsonRecord[]) {
      for (const response of Object.values(operation.responses as JsonRecord) as JsonRecord[]) {
        if (response.$ref !== undefined) continue;
        response.headers = { ...REQUEST_ID_HEADER, ...((response.headers as JsonRecord | undefined) ?? {}) };
      }
    }
  }
}

/** HEAD beside GET for `paths`: the same headers and statuses, no body. */
function withHeadOperations(paths: Record<string, Json>, heads: readonly string[]): void {
  for (const path of heads) {
    const item = paths[path] as JsonRecord;
    const get = item.get as JsonRecord;
    const responses: JsonRecord = {};
    for (const [status, response] of Object.entries(get.responses as JsonRecord) as [string, JsonRecord][]) {
      responses[status] = response.$ref !== undefined ? response : { description: response.description as string, ...(response.headers !== undefined ? { headers: response.headers } : {}) };
    }
    item.head = { ...get, operationId: `${get.operationId as string}Head`, summary: `${get.summary as string} Headers only.`, responses };
  }
}

function errorResponses(statuses: readonly number[]): Record<string, Json> {
  const out: Record<string, Json> = {};
  for (const status of statuses) out[String(status)] = { $ref: `#/components/responses/Error${status}` };
  return out;
}

function json(schema: JsonRecord, description: string): JsonRecord {
  return { description, content: { "application/json": { schema } } };
}

function queryParameter(name: string, description: string, schema: JsonRecord): JsonRecord {
  return { name, in: "query", required: false, description, schema };
}

const LIMIT = (max: number, fallback: number): JsonRecord => ({ type: "integer", minimum: 1, maximum: max, default: fallback });

function packageVersion(): string {
  try {
    return (JSON.parse(readFileSync(new URL("../../package.json", import.meta.url), "utf8")) as { version: string }).version;
  } catch {
    return "0.0.0";
  }
}

/** The whole document (built once per process; it depends on nothing at run time). */
export function buildOpenApiDocument(): JsonRecord {
  const schemas: Record<string, JsonRecord> = {};
  for (const [name, schema] of SHARED) schemas[name] = plain(schema);
  const shared = new Map<string, string>(SHARED.map(([name, schema]) => [JSON.stringify(plain(schema)), name]));

  const mapping: Record<string, Json> = {};
  for (const type of COMMAND_TYPES) {
    const name = commandComponentName(type);
    const payload = plain(COMMAND_PAYLOAD_SCHEMAS[type as CommandType]);
    schemas[`${name}Payload`] = payload;
    schemas[`${name}Result`] = plain(COMMAND_RESULT_SCHEMAS[type as CommandType]);
    const payloadRequired = Array.isArray(payload.required) && payload.required.length > 0;
    schemas[`${name}Command`] = {
      type: "object",
      description: `The \`${type}\` command (SPEC §6).`,
      additionalProperties: false,
      required: payloadRequired ? ["type", "payload"] : ["type"],
      properties: {
        type: { const: type, type: "string" },
        payload: ref(`${name}Payload`),
        id: { type: "string", maxLength: COMMAND_ID_LENGTH_MAX, description: "Idempotency key." },
        hlc: plain(HlcSchema),
      },
    };
    mapping[type] = `#/components/schemas/${name}Command`;
  }
  schemas.Command = {
    description: `A command: ${COMMAND_TYPES.join(", ")}. The server validates the envelope with \`CommandEnvelope\` and the payload with the type's schema.`,
    oneOf: COMMAND_TYPES.map((type) => ref(`${commandComponentName(type)}Command`)),
    discriminator: { propertyName: "type", mapping },
  };
  schemas.CommandEnvelope = plain(CommandEnvelopeSchema);
  const outcome = plain(CommandOutcomeSchema);
  (outcome.properties as JsonRecord).result = {
    description: "The command type's result.",
    oneOf: COMMAND_TYPES.map((type) => ref(`${commandComponentName(type)}Result`)),
  };
  schemas.CommandOutcome = outcome;
  schemas.ErrorBody = plain(ErrorBodySchema);
  schemas.StateResponse = plain(StateResponseSchema);
  schemas.GenesisDocument = plain(GenesisDocumentSchema);
  schemas.GenesisResult = plain(GenesisResultSchema);
  schemas.TaskList = plain(TaskListSchema);
  schemas.AgentList = plain(AgentListSchema);
  schemas.LogPage = plain(LogPageSchema);
  schemas.Health = plain(HealthSchema);
  schemas.Ready = plain(ReadySchema);
  for (const name of Object.keys(schemas)) schemas[name] = withRefs(schemas[name] as JsonRecord, shared, name) as JsonRecord;

  // The reducer refuses a repeated dependency itself, naming its index (task-submit.ts); the schema leaves it to it.
  const dependsOn = (schemas.TaskSubmitPayload?.properties as JsonRecord | undefined)?.dependsOn;
  if (typeof dependsOn === "object" && dependsOn !== null && !Array.isArray(dependsOn)) dependsOn.uniqueItems = true;

  const byStatus = new Map<number, ErrorCode[]>();
  for (const [code, status] of Object.entries(ERROR_STATUS) as [ErrorCode, number][]) byStatus.set(status, [...(byStatus.get(status) ?? []), code]);
  const responses: Record<string, Json> = {};
  for (const [status, codes] of byStatus) {
    responses[`Error${status}`] = { ...json(ref("ErrorBody"), `Error with code ${codes.join(" | ")}.`), headers: { ...REQUEST_ID_HEADER, ...(ERROR_HEADERS[status] ?? {}) } };
  }

  // X-Request-Id joins these below (withRequestIdHeaders), as it joins every inline response.
  const etagHeader = { ETag: { description: 'The state hash, quoted: "<stateHash>".', schema: { type: "string" } } };
  const paths: Record<string, Json> = {
    "/state": {
      get: {
        operationId: "getState",
        summary: "The durable state with its index, HLC, state hash and log hash.",
        parameters: [
          queryParameter("at", "The state as of this log index (0 = genesis).", { type: "integer", minimum: 0 }),
          { name: "If-None-Match", in: "header", required: false, description: "A state hash (quoted or not); 304 when it is current.", schema: { type: "string" } },
        ],
        responses: {
          "200": { ...json(ref("StateResponse"), "The state."), headers: etagHeader },
          "304": { description: "The state hash named in If-None-Match is current.", headers: etagHeader },
          ...errorResponses([400, 401, 404, 410, 503]),
        },
      },
      post: {
        operationId: "initializeGenesis",
        summary: "Initialize the data dir with a genesis document (SPEC §4).",
        requestBody: { required: true, content: { "application/json": { schema: ref("GenesisDocument") } } },
        responses: {
          "200": json(ref("GenesisResult"), "The data dir already holds this genesis."),
          "201": json(ref("GenesisResult"), "The data dir was initialized."),
          ...errorResponses([400, 401, 409, 413, 422, 503]),
        },
      },
    },
    "/command": {
      post: {
        operationId: "submitCommand",
        summary: "Submit a command; answered only once it is durable.",
        requestBody: { required: true, content: { "application/json": { schema: ref("Command") } } },
        responses: { "200": json(ref("CommandOutcome"), "Applied and flushed (or an idempotent repeat: duplicate true)."), ...errorResponses([400, 401, 404, 409, 413, 503]) },
      },
    },
    "/commands": {
      post: {
        operationId: "submitCommands",
        summary: "Submit a batch of commands, applied in order and flushed together; answered once every accepted one is durable.",
        requestBody: {
          required: true,
          content: { "application/json": { schema: { type: "object", required: ["commands"], additionalProperties: false, properties: { commands: { type: "array", minItems: 1, maxItems: 1000, items: ref("Command") } } } } },
        },
        responses: {
          "200": json(
            { type: "object", required: ["results"], properties: { results: { type: "array", items: { oneOf: [ref("CommandOutcome"), ref("ErrorBody")] } } } },
            "One result per command, in order: an outcome, or an error body for a refused command (the batch is not a transaction).",
          ),
          ...errorResponses([400, 401, 413, 503]),
        },
      },
    },
    "/tasks": {
      get: {
        operationId: "listTasks",
        summary: "Tasks in ascending id order, filtered and paged.",
        parameters: [
          queryParameter("status", "One status or several, comma-separated.", { type: "string" }),
          queryParameter("kind", "Exact task kind.", { type: "string" }),
          queryParameter("agentId", "Agent holding the task's live lease.", { type: "string" }),
          queryParameter("limit", "Page size.", LIMIT(1000, 100)),
          queryParameter("cursor", "nextCursor of the previous page.", { type: "string" }),
        ],
        responses: { "200": { ...json(ref("TaskList"), "One page."), headers: INDEX_HEADER }, ...errorResponses([400, 401, 503]) },
      },
    },
    "/tasks/{id}": {
      get: {
        operationId: "getTask",
        summary: "One task.",
        parameters: [{ name: "id", in: "path", required: true, description: "Task id (URL-encoded).", schema: { type: "string" } }],
        responses: { "200": { ...json(ref("Task"), "The task."), headers: INDEX_HEADER }, ...errorResponses([400, 401, 404, 503]) },
      },
    },
    "/agents": {
      get: {
        operationId: "listAgents",
        summary: "Agents in ascending id order, paged.",
        parameters: [
          queryParameter("status", "ready, draining or offline.", { type: "string", enum: ["ready", "draining", "offline"] }),
          queryParameter("limit", "Page size.", LIMIT(1000, 100)),
          queryParameter("cursor", "nextCursor of the previous page.", { type: "string" }),
        ],
        responses: { "200": { ...json(ref("AgentList"), "One page."), headers: INDEX_HEADER }, ...errorResponses([400, 401, 503]) },
      },
    },
    "/log": {
      get: {
        operationId: "readLog",
        summary: "Durable WAL entries from an index on.",
        parameters: [
          queryParameter("from", "First index (default: the oldest entry held).", { type: "integer", minimum: 1 }),
          queryParameter("limit", "Most entries.", LIMIT(1000, 100)),
        ],
        responses: { "200": json(ref("LogPage"), "Entries in index order."), ...errorResponses([400, 401, 410, 503]) },
      },
    },
    "/watch": {
      get: {
        operationId: "watch",
        summary: "Server-sent events: one per applied command (id: index, data: the LogEntry JSON), replayed from the resume point, then live.",
        parameters: [
          { name: "Last-Event-ID", in: "header", required: false, description: "Resume after this index.", schema: { type: "integer", minimum: 0 } },
          queryParameter("from", "Start at this index (0: the oldest entry held). Default: only new entries.", { type: "integer", minimum: 0 }),
        ],
        responses: {
          "200": {
            description: "An event stream. Comment lines are heartbeats; a client that takes nothing for 60 s is disconnected and resumes with Last-Event-ID.",
            content: { "text/event-stream": { schema: { type: "string" }, "x-event-data": ref("LogEntry") } },
          },
          ...errorResponses([400, 401, 404, 410, 503]),
        },
      },
    },
    "/healthz": {
      get: { operationId: "health", summary: "The process answers (no token needed).", security: [], responses: { "200": json(ref("Health"), "Alive.") } },
    },
    "/readyz": {
      get: { operationId: "ready", summary: "Recovered or initialized, and serving.", responses: { "200": json(ref("Ready"), "Ready."), ...errorResponses([400, 401, 503]) } },
    },
    "/metrics": {
      get: {
        operationId: "metrics",
        summary: "Prometheus metrics.",
        // 400: a foreign Host without a token (host-guard.ts); 503: once shutdown began (every path but /healthz).
        responses: { "200": { description: "Prometheus text format.", content: { "text/plain": { schema: { type: "string" } } } }, ...errorResponses([400, 401, 503]) },
      },
    },
    "/openapi.json": {
      get: {
        operationId: "openapi",
        summary: "This document.",
        responses: { "200": { description: "OpenAPI 3.1.", content: { "application/json": { schema: { type: "object" } } } }, ...errorResponses([400, 401, 503]) },
      },
    },
  };

  // Fastify answers HEAD on every GET route.
  withHeadOperations(
    paths,
    Object.keys(paths).filter((path) => (paths[path] as JsonRecord).get !== undefined),
  );
  withRequestIdHeaders(paths);

  return {
    openapi: "3.1.0",
    info: {
      title: "Swoosh",
      version: packageVersion(),
      description:
        "A deterministic, durable orchestration state machine. Every error is {\"error\": {\"code\", \"message\", \"details\"?}} with a SPEC §6 code. " +
        `Request bodies are application/json (any other media type is 400 bad_request), at most the server's body limit (413), payloads nested at most ${JSON_DEPTH_MAX} levels, bodies ${BODY_DEPTH_MAX}. ` +
        "Every maxLength counts UTF-16 code units (JavaScript's string.length), not code points: a character outside the Basic Multilingual Plane, such as an emoji, counts 2. " +
        "Every response carries X-Request-Id.",
    },
    "x-string-length-unit": "UTF-16 code units",
    jsonSchemaDialect: "https://spec.openapis.org/oas/3.1/dialect/base",
    security: [{ bearer: [] }],
    paths,
    components: {
      schemas,
      responses,
      securitySchemes: { bearer: { type: "http", scheme: "bearer", description: "Required on every path but /healthz when the server runs with a token." } },
    },
  };
}
