/**
 * The wire types of the HTTP API (SPEC §7) as the client sees them. Every
 * domain type is imported as a *type* from the server's schemas, so the two
 * cannot drift and importing the client loads no server code.
 */
import type { JsonValue } from "../core/json.ts";
import type { CommandPayload, CommandResult, CommandType } from "../domain/schemas.ts";
import type { Agent, AgentStatus, OrchestratorConfig, OrchestratorState, Task, TaskStatus } from "../domain/types.ts";
import type { WireEntry } from "../server/wire.ts";

export type { JsonValue, CommandPayload, CommandResult, CommandType, Agent, AgentStatus, OrchestratorConfig, OrchestratorState, Task, TaskStatus };

/** One lease of a `task.claim` result. */
export type ClaimedLease = CommandResult<"task.claim">["leases"][number];

/** A command as sent: `{type, payload, id?, hlc?}`. */
export interface CommandEnvelope<T extends CommandType = CommandType> {
  readonly type: T;
  readonly payload: CommandPayload<T>;
  /** Idempotency id; the client makes one up when absent (so a retry never applies twice). */
  readonly id?: string;
  /** Your own HLC timestamp (causality across systems); default: the greatest the client has seen. */
  readonly hlc?: string;
}

/** Any command, its payload typed by its type. */
export type AnyCommand = { [T in CommandType]: CommandEnvelope<T> }[CommandType];

/** `POST /command` 200: the log index and HLC the command got, and its result. */
export interface CommandAnswer<T extends CommandType = CommandType> {
  readonly index: number;
  readonly hlc: string;
  readonly result: CommandResult<T>;
  /** Present on an idempotent repeat of an id: this is the first outcome. */
  readonly duplicate?: true;
}

/** A log entry, as `GET /log` and `GET /watch` give it: `{index, hlc, type, payload, id?, prevHash, hash}`. */
export type LogEntry = WireEntry;

/** `GET /state`. */
export interface StateSnapshot {
  readonly index: number;
  /** The HLC of the command at `index` ("" at genesis). */
  readonly hlc: string;
  readonly stateHash: string;
  readonly logHash: string;
  readonly state: OrchestratorState;
}

/** A genesis document (SPEC §4). */
export interface GenesisDocument {
  readonly clusterId: string;
  readonly genesisTime: string;
  readonly state: OrchestratorState | { readonly [key: string]: JsonValue };
  readonly stateHash: string;
}

export interface InitializeAnswer {
  readonly clusterId: string;
  readonly stateHash: string;
  /** False when the data dir already held this same genesis. */
  readonly created: boolean;
}

export interface TaskFilters {
  /**
   * Tasks in this status, or in any of these (as `?status=a,b` reads);
   * absent: any status. An empty array matches no task: an empty page (with
   * the `index` it was read at), not the unfiltered listing.
   */
  readonly status?: TaskStatus | readonly TaskStatus[];
  readonly kind?: string;
  /** Tasks whose live lease this agent holds. */
  readonly agentId?: string;
  /** Page size, 1–1000 (server default 100). */
  readonly limit?: number;
  readonly cursor?: string;
}

export interface TaskPage {
  /** The log index the page was read at. */
  readonly index: number;
  readonly tasks: Task[];
  /** Pass back as `cursor` for the next page; null on the last page. */
  readonly nextCursor: string | null;
}

export interface AgentFilters {
  readonly status?: AgentStatus;
  readonly limit?: number;
  readonly cursor?: string;
}

export interface AgentPage {
  readonly index: number;
  readonly agents: Agent[];
  readonly nextCursor: string | null;
}

export interface LogPage {
  /** The range the WAL holds now (`firstIndex` = `lastIndex + 1` when empty). */
  readonly firstIndex: number;
  readonly lastIndex: number;
  readonly entries: LogEntry[];
}

export interface ReadyAnswer {
  readonly status: "ready";
  readonly index: number;
  readonly genesisHash: string;
}
