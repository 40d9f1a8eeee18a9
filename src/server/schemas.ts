/**
 * TypeBox schemas of the HTTP layer: the command envelope it validates, and
 * the response bodies it publishes in /openapi.json. Everything inside a
 * command (payloads, results, the state) comes from src/domain/schemas.ts, so
 * the documentation and the validation are the same objects.
 */
import { Type } from "@sinclair/typebox";
import type { Static } from "@sinclair/typebox";
import { TypeCompiler } from "@sinclair/typebox/compiler";
import { ValueErrorType } from "@sinclair/typebox/errors";
import { ERROR_STATUS, SwooshError } from "../core/errors.ts";
import { COMMAND_ID_LENGTH_MAX, COMMAND_TYPE_LENGTH_MAX } from "../engine/engine.ts";
import { AgentSchema, HlcSchema, JsonValueSchema, OrchestratorStateSchema, TaskSchema } from "../domain/index.ts";

/** The engine's own bounds on the envelope (checkEnvelope), so the schema and the engine cannot disagree. */
export { COMMAND_ID_LENGTH_MAX, COMMAND_TYPE_LENGTH_MAX };

function sha256(description = "Lowercase hex SHA-256.") {
  return Type.String({ pattern: "^[0-9a-f]{64}$", description });
}
const Sha256Schema = sha256();
const IndexSchema = Type.Integer({ minimum: 0, description: "A WAL index (0 = genesis)." });

/** `POST /command` body (SPEC §6). Closed: an unknown top-level field is a 400. */
export const CommandEnvelopeSchema = Type.Object(
  {
    type: Type.String({ minLength: 1, maxLength: COMMAND_TYPE_LENGTH_MAX, description: "A command type of SPEC §6." }),
    payload: Type.Optional(JsonValueSchema),
    id: Type.Optional(Type.String({ maxLength: COMMAND_ID_LENGTH_MAX, description: "Idempotency key: a repeat gets the first outcome back with duplicate: true." })),
    hlc: Type.Optional(Type.String({ pattern: HlcSchema.pattern, description: "The client's own HLC (causality across systems); refused with clock_drift when too far ahead." })),
  },
  { additionalProperties: false },
);
export type CommandEnvelope = Static<typeof CommandEnvelopeSchema>;

const envelopeCheck = TypeCompiler.Compile(CommandEnvelopeSchema);

/** The body as an envelope, or `bad_request` naming the first problem. */
export function checkCommandEnvelope(body: unknown): CommandEnvelope {
  if (typeof body !== "object" || body === null || Array.isArray(body)) throw new SwooshError("bad_request", "a command is a JSON object {type, payload, id?, hlc?}");
  if (envelopeCheck.Check(body)) return body;
  const first = envelopeCheck.Errors(body).First();
  const path = first?.path ?? "";
  if (first !== undefined && first.type === ValueErrorType.ObjectAdditionalProperties) {
    // TypeBox reports the object, not the key: name the unknown fields ourselves.
    const extra = Object.keys(body).filter((key) => !Object.prototype.hasOwnProperty.call(CommandEnvelopeSchema.properties, key));
    throw new SwooshError("bad_request", `unknown command field ${extra.map((key) => JSON.stringify(key)).join(", ")}`, { field: extra[0] ?? "" });
  }
  throw new SwooshError("bad_request", `command ${path || "(root)"}: ${first?.message ?? "invalid"}`, { field: path });
}

/** Most commands in one `POST /commands` batch. */
export const BATCH_COMMANDS_MAX = 1000;

/** `POST /commands` body. Items are checked one by one (a bad item is answered in its slot, not for the whole batch). */
export const CommandBatchSchema = Type.Object(
  { commands: Type.Array(Type.Unknown({ description: "A CommandEnvelope." }), { minItems: 1, maxItems: BATCH_COMMANDS_MAX }) },
  { additionalProperties: false },
);

const batchCheck = TypeCompiler.Compile(CommandBatchSchema);

/** The batch's items (still unchecked), or `bad_request` for a body that is not `{commands: [...]}` of 1..BATCH_COMMANDS_MAX. */
export function checkCommandBatch(body: unknown): unknown[] {
  if (batchCheck.Check(body)) return body.commands;
  throw new SwooshError("bad_request", `a batch is {"commands": [command, …]} with 1 to ${BATCH_COMMANDS_MAX} commands`, { field: "commands" });
}

/** `POST /command` 200 body; `result` is the command type's result schema. */
export const CommandOutcomeSchema = Type.Object(
  {
    index: Type.Integer({ minimum: 1 }),
    hlc: HlcSchema,
    result: JsonValueSchema,
    duplicate: Type.Optional(Type.Literal(true, { description: "Present on an idempotent repeat of a command id." })),
  },
  { additionalProperties: false },
);

export const ErrorCodeSchema = Type.Union(
  Object.keys(ERROR_STATUS).map((code) => Type.Literal(code)),
  { description: "A SPEC §6 error code; each has one HTTP status." },
);

export const ErrorBodySchema = Type.Object(
  {
    error: Type.Object(
      { code: ErrorCodeSchema, message: Type.String(), details: Type.Optional(JsonValueSchema) },
      { additionalProperties: false },
    ),
  },
  { additionalProperties: false },
);

export const StateResponseSchema = Type.Object(
  {
    index: IndexSchema,
    hlc: Type.String({ description: "HLC of the entry at `index` (empty at genesis)." }),
    stateHash: Sha256Schema,
    logHash: sha256("Hash of the WAL entry at `index` (the genesis state hash at 0)."),
    state: OrchestratorStateSchema,
  },
  { additionalProperties: false },
);

export const GenesisDocumentSchema = Type.Object(
  {
    clusterId: Type.String({ minLength: 1, maxLength: 256 }),
    genesisTime: Type.String({ description: "ISO-8601 time." }),
    state: OrchestratorStateSchema,
    stateHash: Sha256Schema,
  },
  { additionalProperties: false },
);

export const GenesisResultSchema = Type.Object(
  {
    clusterId: Type.String(),
    stateHash: sha256("The genesis state hash (the anchor of the WAL chain)."),
    created: Type.Boolean({ description: "true when this request initialized the data dir (201), false when it already held this genesis (200)." }),
  },
  { additionalProperties: false },
);

export const TaskListSchema = Type.Object(
  {
    index: IndexSchema,
    tasks: Type.Array(TaskSchema),
    nextCursor: Type.Union([Type.String(), Type.Null()], { description: "Pass as `cursor` for the next page; null on the last page." }),
  },
  { additionalProperties: false },
);

export const AgentListSchema = Type.Object(
  {
    index: IndexSchema,
    agents: Type.Array(AgentSchema),
    nextCursor: Type.Union([Type.String(), Type.Null()]),
  },
  { additionalProperties: false },
);

export const LogEntrySchema = Type.Object(
  {
    index: Type.Integer({ minimum: 1 }),
    hlc: HlcSchema,
    type: Type.String(),
    payload: JsonValueSchema,
    id: Type.Optional(Type.String()),
    prevHash: Sha256Schema,
    hash: sha256("SHA-256(prevHash + canonicalJSON(entry without hash))."),
  },
  { additionalProperties: false },
);

export const LogPageSchema = Type.Object(
  {
    firstIndex: Type.Integer({ minimum: 1, description: "Oldest entry the WAL still holds (lastIndex + 1 when none)." }),
    lastIndex: IndexSchema,
    entries: Type.Array(LogEntrySchema),
  },
  { additionalProperties: false },
);

export const HealthSchema = Type.Object({ status: Type.Literal("ok") }, { additionalProperties: false });
export const ReadySchema = Type.Object(
  { status: Type.Literal("ready"), index: IndexSchema, genesisHash: Sha256Schema },
  { additionalProperties: false },
);
