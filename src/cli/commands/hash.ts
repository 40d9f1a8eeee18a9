/** `swoosh hash FILE`: prints computeStateHash of the JSON value in FILE ("-" reads stdin). */
import { readFile } from "node:fs/promises";
import type { Command } from "commander";
import { computeStateHash } from "../../core/hash.ts";
import { JsonValueError } from "../../core/json.ts";
import { parseJsonText } from "../../core/json-split.ts";
import { CliError, EXIT_BAD_INPUT, exitCodeForPath } from "../exit-codes.ts";

/** The input's bytes (parsed from bytes, a text larger than V8's longest string still reads). */
async function readInput(file: string): Promise<Buffer> {
  if (file !== "-") return readFile(file);
  const chunks: Buffer[] = [];
  for await (const chunk of process.stdin) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}

export function registerHash(program: Command): void {
  program
    .command("hash")
    .description("print the state hash (hex SHA-256 of RFC 8785 canonical JSON) of the JSON value in FILE")
    .argument("<file>", "a JSON file, or - for standard input")
    .action(async (file: string) => {
      let bytes: Buffer;
      try {
        bytes = await readInput(file);
      } catch (error) {
        throw new CliError(`cannot read ${file}: ${(error as Error).message}`, exitCodeForPath(error));
      }
      let value: unknown;
      try {
        value = parseJsonText(bytes);
      } catch (error) {
        throw new CliError(`${file} is not valid JSON: ${(error as Error).message}`, EXIT_BAD_INPUT);
      }
      try {
        process.stdout.write(`${computeStateHash(value)}\n`);
      } catch (error) {
        if (error instanceof JsonValueError) throw new CliError(`${file}: ${error.message}`, EXIT_BAD_INPUT);
        throw error;
      }
    });
}
