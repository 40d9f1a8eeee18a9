/**
 * `swoosh verify --data-dir D`: checks every snapshot, the whole WAL chain, and
 * replays comparing hashes at every kept snapshot. Exit 0 only if all holds,
 * 2 when the data is bad, 1 when only files it may not read stood in the way. A progress bar goes to stderr on a TTY.
 */
import { Option } from "commander";
import type { Command } from "commander";
import { problemText } from "../../engine/errors.ts";
import { verifyDataDir } from "../../engine/verify.ts";
import { orchestratorMachine } from "../../domain/index.ts";
import type { VerifyReport } from "../../engine/verify.ts";
import { CliError, EXIT_BAD_INPUT, EXIT_RUNTIME_FAILURE } from "../exit-codes.ts";
import { nonEmpty } from "../flags.ts";
import { progressBar } from "../progress.ts";

export function registerVerify(program: Command): void {
  program
    .command("verify")
    .description("verify a data directory: snapshots, the WAL hash chain, and a replay compared at every snapshot")
    .addOption(new Option("--data-dir <dir>", "the data directory").env("SWOOSH_DATA_DIR").argParser(nonEmpty).makeOptionMandatory())
    .option("--json", "print the report as JSON")
    .action(async (options: { dataDir: string; json?: boolean }) => {
      const bar = progressBar(process.stderr, "replay");
      const report = await verifyDataDir({ dataDir: options.dataDir, machine: orchestratorMachine, onProgress: bar.update });
      bar.done();
      if (options.json) {
        process.stdout.write(`${JSON.stringify(report, null, 2)}\n`);
      } else {
        process.stdout.write(
          [
            `data dir:   ${options.dataDir}`,
            `genesis:    ${report.genesisHash ?? "-"}`,
            `wal:        ${report.walFirstIndex === null ? "-" : `entries ${report.walFirstIndex}..${report.walLastIndex}`}`,
            `snapshots:  ${report.snapshotsChecked} checked, ${report.snapshotsMatched} reproduced by replay`,
            `replayed:   ${report.entriesReplayed} entries`,
            `state hash: ${report.finalStateHash ?? "-"}`,
            ...report.problems.map((p) => `PROBLEM ${problemText(p)}`),
            report.ok ? "OK" : "FAILED",
          ].join("\n") + "\n",
        );
      }
      if (!report.ok) throw new CliError(`verification failed: ${report.problems.length} problem(s)`, failureExitCode(report));
    });
}

/**
 * 2 when the data is bad; 1 when every problem is a file this process may not
 * read: nothing is known wrong with the data, the check could not be made.
 */
function failureExitCode(report: VerifyReport): number {
  return report.problems.every((problem) => problem.accessDenied === true) ? EXIT_RUNTIME_FAILURE : EXIT_BAD_INPUT;
}
