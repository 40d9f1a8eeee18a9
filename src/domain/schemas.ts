/**
 * The one schema source of the orchestrator (SPEC §5, §6): the canonical state,
 * the payload of every command and the result of every command, as TypeBox
 * schemas. The reducer validates payloads with them (validate.ts), the TS types
 * in types.ts are derived from them, and the HTTP layer can publish them as
 * OpenAPI components unchanged.
 *
 * Payload objects are closed (`additionalProperties: false`): an unknown field
 * is a `bad_request`, so a typo never silently means "use the default".
 * Bounds come from limits.ts.
 */
import { Type } from "@sinclair/typebox";
import type { Static, TSchema } from "@sinclair/typebox";
import type { JsonValue } from "../core/json.ts";
import {
  CAPACITY_MAX,
  CLAIM_LIMIT_MAX,
  CLUSTER_ID_LENGTH_MAX,
  DEPENDS_ON_COUNT_MAX,
  DURATION_MS_MAX,
  DURATION_MS_MIN,
  ID_LENGTH_MAX,
  KIND_LENGTH_MAX,
  LABEL_LENGTH_MAX,
  LABELS_COUNT_MAX,
  MAX_ATTEMPTS_MAX,
  PRIORITY_MAX,
  PRIORITY_MIN,
  PRUNE_BEFORE_MAX,
  PRUNE_LIMIT_MAX,
  REASON_LENGTH_MAX,
  RESULT_IDS_MAX,
} from "./limits.ts";

// ---------------------------------------------------------------- building blocks

/** Any JSON value (checked for JSON-ness separately: schemas cannot see lone surrogates or NaN). */
export const JsonValueSchema = Type.Unsafe<JsonValue>(Type.Unknown({ description: "Any JSON value." }));
export const IdSchema = Type.String({ maxLength: ID_LENGTH_MAX, description: "An arbitrary string id; the empty string is allowed." });
export const LabelSchema = Type.String({ maxLength: LABEL_LENGTH_MAX });
export const LabelsSchema = Type.Array(LabelSchema, { maxItems: LABELS_COUNT_MAX });
export const HlcSchema = Type.String({ pattern: "^\\d{15}-\\d{10}-[A-Za-z0-9_.-]{1,64}$", description: "An encoded HLC timestamp." });
export const WallMsSchema = Type.Integer({ minimum: 0, maximum: PRUNE_BEFORE_MAX, description: "Wall-clock milliseconds." });
export const TokenSchema = Type.Integer({ minimum: 1, maximum: Number.MAX_SAFE_INTEGER, description: "A fencing token." });
export const DurationMsSchema = Type.Integer({ minimum: DURATION_MS_MIN, maximum: DURATION_MS_MAX });
export const MaxAttemptsSchema = Type.Integer({ minimum: 1, maximum: MAX_ATTEMPTS_MAX });
export const PrioritySchema = Type.Integer({ minimum: PRIORITY_MIN, maximum: PRIORITY_MAX });

export const PhaseSchema = Type.Union([Type.Literal("active"), Type.Literal("draining"), Type.Literal("halted")]);
export const AgentStatusSchema = Type.Union([Type.Literal("ready"), Type.Literal("draining"), Type.Literal("offline")]);
export const TerminalStatusSchema = Type.Union([Type.Literal("succeeded"), Type.Literal("failed"), Type.Literal("cancelled")]);
export const TaskStatusSchema = Type.Union([
  Type.Literal("blocked"),
  Type.Literal("queued"),
  Type.Literal("leased"),
  Type.Literal("succeeded"),
  Type.Literal("failed"),
  Type.Literal("cancelled"),
]);

// ---------------------------------------------------------------- state (SPEC §5)

const configFields = {
  leaseTtlMs: DurationMsSchema,
  heartbeatTimeoutMs: DurationMsSchema,
  maxAttempts: MaxAttemptsSchema,
  backoffBaseMs: DurationMsSchema,
  backoffMaxMs: DurationMsSchema,
};
export const ConfigSchema = Type.Object(configFields, { additionalProperties: false });

export const LeaseSchema = Type.Object(
  { agentId: IdSchema, token: TokenSchema, expiresAt: WallMsSchema },
  { additionalProperties: false },
);

export const AgentSchema = Type.Object(
  {
    id: IdSchema,
    labels: LabelsSchema,
    capacity: Type.Integer({ minimum: 1, maximum: CAPACITY_MAX }),
    status: AgentStatusSchema,
    registeredAt: HlcSchema,
    lastSeenAt: HlcSchema,
  },
  { additionalProperties: false },
);

export const TaskSchema = Type.Object(
  {
    id: IdSchema,
    kind: Type.String({ minLength: 1, maxLength: KIND_LENGTH_MAX }),
    payload: JsonValueSchema,
    priority: PrioritySchema,
    dependsOn: Type.Array(IdSchema, { maxItems: DEPENDS_ON_COUNT_MAX }),
    requires: LabelsSchema,
    status: TaskStatusSchema,
    /** Leases of this task that ended without success (fail, expiry, agent removed or offline). */
    attempts: Type.Integer({ minimum: 0, maximum: MAX_ATTEMPTS_MAX }),
    maxAttempts: MaxAttemptsSchema,
    /** Not claimable before this wall ms (set by a retry backoff, cleared by the next claim). */
    notBefore: Type.Optional(WallMsSchema),
    /** Present exactly when status is "leased". */
    lease: Type.Optional(LeaseSchema),
    /** What `task.complete` reported. */
    result: Type.Optional(JsonValueSchema),
    /**
     * Why the latest attempt ended, or why the task is failed or cancelled: the
     * `error` of `task.fail` as given, or one of the reducer's own
     * `{code: "lease_expired" | "agent_offline" | "agent_removed", agentId, token}`,
     * `{code: "cancelled", reason?}`, `{code: "dependency_failed" | "dependency_cancelled", taskId}`.
     */
    error: Type.Optional(JsonValueSchema),
    createdAt: HlcSchema,
    updatedAt: HlcSchema,
  },
  { additionalProperties: false },
);

export const OrchestratorStateSchema = Type.Object(
  {
    schemaVersion: Type.Literal(1),
    clusterId: Type.String({ minLength: 1, maxLength: CLUSTER_ID_LENGTH_MAX }),
    phase: PhaseSchema,
    config: ConfigSchema,
    /** The last fencing token issued (0 before the first lease); the next lease gets this + 1. */
    leaseTokenSeq: Type.Integer({ minimum: 0, maximum: Number.MAX_SAFE_INTEGER }),
    agents: Type.Record(Type.String(), AgentSchema),
    tasks: Type.Record(Type.String(), TaskSchema),
  },
  { additionalProperties: false },
);

// ---------------------------------------------------------------- command payloads (SPEC §6)

const closed = { additionalProperties: false } as const;

export const AgentRegisterPayload = Type.Object(
  {
    agentId: IdSchema,
    /** Stored sorted and de-duplicated. */
    labels: Type.Optional(LabelsSchema),
    capacity: Type.Optional(Type.Integer({ minimum: 1, maximum: CAPACITY_MAX })),
  },
  closed,
);
export const AgentRefPayload = Type.Object({ agentId: IdSchema }, closed);

export const TaskSubmitPayload = Type.Object(
  {
    taskId: IdSchema,
    kind: Type.String({ minLength: 1, maxLength: KIND_LENGTH_MAX }),
    payload: Type.Optional(JsonValueSchema),
    priority: Type.Optional(PrioritySchema),
    /** Existing task ids, no duplicates. */
    dependsOn: Type.Optional(Type.Array(IdSchema, { maxItems: DEPENDS_ON_COUNT_MAX })),
    /** Labels an agent must all carry; stored sorted and de-duplicated. */
    requires: Type.Optional(LabelsSchema),
    maxAttempts: Type.Optional(MaxAttemptsSchema),
  },
  closed,
);
export const TaskClaimPayload = Type.Object(
  { agentId: IdSchema, limit: Type.Optional(Type.Integer({ minimum: 1, maximum: CLAIM_LIMIT_MAX })) },
  closed,
);
export const TaskCompletePayload = Type.Object({ taskId: IdSchema, token: TokenSchema, result: Type.Optional(JsonValueSchema) }, closed);
export const TaskFailPayload = Type.Object(
  { taskId: IdSchema, token: TokenSchema, error: JsonValueSchema, retryable: Type.Optional(Type.Boolean()) },
  closed,
);
export const TaskCancelPayload = Type.Object(
  { taskId: IdSchema, reason: Type.Optional(Type.String({ maxLength: REASON_LENGTH_MAX })) },
  closed,
);
export const TaskPrunePayload = Type.Object(
  {
    /** Prune tasks whose `updatedAt` wall ms is strictly less than this. */
    before: WallMsSchema,
    /** Terminal statuses to prune; all three when absent. */
    statuses: Type.Optional(Type.Array(TerminalStatusSchema, { minItems: 1, maxItems: 3, uniqueItems: true })),
    /** Remove at most this many (statuses in the order succeeded, failed, cancelled; oldest first within each); every match when absent. */
    limit: Type.Optional(
      Type.Integer({
        minimum: 1,
        maximum: PRUNE_LIMIT_MAX,
        description: "At most this many tasks are removed; the result's `more` says whether matching tasks remain (call again).",
      }),
    ),
  },
  closed,
);
export const SetPhasePayload = Type.Object({ phase: PhaseSchema }, closed);
/** Any subset of the config fields; the merged config must still satisfy backoffBaseMs <= backoffMaxMs. */
export const ConfigurePayload = Type.Partial(ConfigSchema, closed);
export const TickPayload = Type.Object({}, closed);

/** Every command type of SPEC §6 with its payload schema. */
export const COMMAND_PAYLOAD_SCHEMAS = {
  "agent.register": AgentRegisterPayload,
  "agent.heartbeat": AgentRefPayload,
  "agent.drain": AgentRefPayload,
  "agent.remove": AgentRefPayload,
  "task.submit": TaskSubmitPayload,
  "task.claim": TaskClaimPayload,
  "task.complete": TaskCompletePayload,
  "task.fail": TaskFailPayload,
  "task.cancel": TaskCancelPayload,
  "task.prune": TaskPrunePayload,
  "orchestrator.setPhase": SetPhasePayload,
  "orchestrator.configure": ConfigurePayload,
  "system.tick": TickPayload,
} as const satisfies Record<string, TSchema>;

export type CommandType = keyof typeof COMMAND_PAYLOAD_SCHEMAS;
export const COMMAND_TYPES = Object.keys(COMMAND_PAYLOAD_SCHEMAS) as CommandType[];

// ---------------------------------------------------------------- command results

const IdListSchema = Type.Array(IdSchema, { maxItems: RESULT_IDS_MAX, description: `At most ${RESULT_IDS_MAX} of the ids, sorted (which ones: API_INTEGRATION.md, Commands).` });

export const AgentRegisterResult = Type.Object({ agentId: IdSchema, created: Type.Boolean() }, closed);
export const AgentHeartbeatResult = Type.Object(
  {
    agentId: IdSchema,
    status: AgentStatusSchema,
    leases: Type.Integer({ minimum: 0 }),
    expiresAt: WallMsSchema,
    offlineAt: Type.Integer({
      minimum: 0,
      maximum: PRUNE_BEFORE_MAX,
      description: "now + heartbeatTimeoutMs: without another heartbeat or register, the first tick from then on takes the agent offline.",
    }),
  },
  closed,
);
export const AgentDrainResult = Type.Object({ agentId: IdSchema, status: AgentStatusSchema }, closed);
export const ReleasedLeasesSchema = Type.Object(
  { requeued: Type.Integer({ minimum: 0 }), failed: Type.Integer({ minimum: 0 }), cancelled: Type.Integer({ minimum: 0 }) },
  { ...closed, description: "Leases released: tasks queued again, tasks failed (attempts used up), dependents cancelled by those failures." },
);
export const AgentRemoveResult = Type.Object({ agentId: IdSchema, released: ReleasedLeasesSchema }, closed);
export const TaskSubmitResult = Type.Object({ taskId: IdSchema, created: Type.Boolean(), status: TaskStatusSchema }, closed);
export const ClaimedLeaseSchema = Type.Object(
  {
    taskId: IdSchema,
    kind: Type.String(),
    payload: JsonValueSchema,
    token: TokenSchema,
    expiresAt: WallMsSchema,
    /** 1 for the first attempt: the task's `attempts` before this lease plus one. */
    attempt: Type.Integer({ minimum: 1 }),
  },
  closed,
);
export const TaskClaimResult = Type.Object({ leases: Type.Array(ClaimedLeaseSchema) }, closed);
export const TaskCompleteResult = Type.Object(
  { taskId: IdSchema, status: Type.Literal("succeeded"), unblocked: Type.Integer({ minimum: 0 }) },
  closed,
);
export const TaskFailResult = Type.Object(
  {
    taskId: IdSchema,
    status: Type.Union([Type.Literal("queued"), Type.Literal("failed")]),
    attempts: Type.Integer({ minimum: 1 }),
    notBefore: Type.Optional(WallMsSchema),
    cancelled: Type.Integer({ minimum: 0 }),
  },
  closed,
);
export const TaskCancelResult = Type.Object(
  { taskId: IdSchema, cancelled: Type.Integer({ minimum: 1 }), taskIds: IdListSchema },
  { ...closed, description: "`cancelled` counts the task and every dependent cancelled with it." },
);
export const TaskPruneResult = Type.Object(
  {
    pruned: Type.Integer({ minimum: 0 }),
    taskIds: IdListSchema,
    /** Only with a `limit`: true when tasks the prune would remove are left. */
    more: Type.Optional(Type.Boolean()),
  },
  closed,
);
export const SetPhaseResult = Type.Object({ phase: PhaseSchema, previous: PhaseSchema }, closed);
export const ConfigureResult = Type.Object({ config: ConfigSchema }, closed);
export const TickResult = Type.Object(
  {
    expired: Type.Integer({ minimum: 0, description: "Leases that expired." }),
    offline: Type.Integer({ minimum: 0, description: "Agents that went offline." }),
    agentIds: IdListSchema,
    released: ReleasedLeasesSchema,
  },
  closed,
);

/** Every command type with the schema of its result. */
export const COMMAND_RESULT_SCHEMAS = {
  "agent.register": AgentRegisterResult,
  "agent.heartbeat": AgentHeartbeatResult,
  "agent.drain": AgentDrainResult,
  "agent.remove": AgentRemoveResult,
  "task.submit": TaskSubmitResult,
  "task.claim": TaskClaimResult,
  "task.complete": TaskCompleteResult,
  "task.fail": TaskFailResult,
  "task.cancel": TaskCancelResult,
  "task.prune": TaskPruneResult,
  "orchestrator.setPhase": SetPhaseResult,
  "orchestrator.configure": ConfigureResult,
  "system.tick": TickResult,
} as const satisfies Record<CommandType, TSchema>;

export type CommandPayload<T extends CommandType> = Static<(typeof COMMAND_PAYLOAD_SCHEMAS)[T]>;
export type CommandResult<T extends CommandType> = Static<(typeof COMMAND_RESULT_SCHEMAS)[T]>;
