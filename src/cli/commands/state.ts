/** `swoosh state [--at N]`: GET /state of a running server, printed as JSON (SPEC §7, §9). */
import { Option } from "commander";
import type { Command } from "commander";
import { integerIn } from "../flags.ts";
import { addClientOptions, clientOptionsFrom, printAnswer } from "../http-client.ts";
import type { ClientFlags } from "../http-client.ts";

interface StateFlags extends ClientFlags {
  at?: number;
}

export function registerState(program: Command): void {
  const command = program
    .command("state")
    .description("print a running server's state as JSON: {index, hlc, stateHash, logHash, state} (indented; past 64 MiB compact, as the server sends it)")
    .addOption(new Option("--at <index>", "the state as of this log index (0 = genesis); exit 2 with history_pruned when the log no longer reaches back").argParser(integerIn(0, Number.MAX_SAFE_INTEGER)));
  addClientOptions(command).action(async (flags: StateFlags) => {
    const query = flags.at === undefined ? "" : `?at=${flags.at}`;
    await printAnswer(clientOptionsFrom(flags), `/state${query}`);
  });
}
