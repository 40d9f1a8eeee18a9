/**
 * `swoosh command TYPE [JSON]`: POST /command to a running server and print
 * the answer `{index, hlc, result}` (SPEC §6, §7). A JSON argument that does
 * not parse is bad usage (exit 2) and is never sent.
 */
import { Option } from "commander";
import type { Command } from "commander";
import { JsonValueError, assertJsonValue } from "../../core/json.ts";
import { CliError, EXIT_BAD_INPUT } from "../exit-codes.ts";
import { addClientOptions, clientOptionsFrom, printJson, requestJson } from "../http-client.ts";
import type { ClientFlags } from "../http-client.ts";

interface CommandFlags extends ClientFlags {
  id?: string;
  hlc?: string;
}

async function readStdin(): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of process.stdin) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString("utf8");
}

async function parsePayload(argument: string | undefined): Promise<unknown> {
  if (argument === undefined) return {};
  const text = argument === "-" ? await readStdin() : argument;
  let payload: unknown;
  try {
    payload = JSON.parse(text);
  } catch (error) {
    // One line, as every CLI failure: JSON.parse's message may quote the text with its newlines.
    throw new CliError(`the payload is not valid JSON: ${(error as Error).message.replace(/\r?\n/g, "\\n")}`, EXIT_BAD_INPUT);
  }
  // JSON.parse gives Infinity for 1e400 (and a lone surrogate for "\ud800"), which sending would turn into null
  // (or U+FFFD): refused here as the server refuses them (SPEC §3), not stored changed.
  try {
    assertJsonValue(payload, Number.MAX_SAFE_INTEGER);
  } catch (error) {
    if (error instanceof JsonValueError) throw new CliError(`the payload holds what is not a JSON value: ${error.message}`, EXIT_BAD_INPUT);
    throw error;
  }
  return payload;
}

export function registerCommand(program: Command): void {
  const command = program
    .command("command")
    .description("submit one command to a running server and print {index, hlc, result}")
    .argument("<type>", "the command type, e.g. task.submit (API_INTEGRATION.md lists them all)")
    .argument("[json]", "the payload as JSON, or - to read it from standard input; default {}")
    // Any string, the empty one included (SPEC §3: ids are arbitrary strings), as the server takes it.
    .addOption(new Option("--id <id>", "idempotency id: a repeat with the same id gets the first outcome back (duplicate: true)"))
    .addOption(new Option("--hlc <hlc>", "the client's own HLC timestamp (causality across systems); see API_INTEGRATION.md"))
    .addHelpText(
      "after",
      `\nExamples:\n  swoosh command agent.register '{"agentId":"a1","labels":["linux"],"capacity":2}'\n  swoosh command task.submit '{"taskId":"t1","kind":"build"}' --id submit-t1\n  swoosh command task.claim '{"agentId":"a1"}'`,
    );
  addClientOptions(command).action(async (type: string, json: string | undefined, flags: CommandFlags) => {
    const payload = await parsePayload(json);
    const body: Record<string, unknown> = { type, payload };
    if (flags.id !== undefined) body.id = flags.id;
    if (flags.hlc !== undefined) body.hlc = flags.hlc;
    printJson(await requestJson(clientOptionsFrom(flags), "POST", "/command", body));
  });
}
