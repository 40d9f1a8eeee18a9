/**
 * Reads a genesis document for `swoosh serve --genesis FILE` (SPEC §4) and
 * checks its shape and hash before any server starts, so a bad file is one
 * line and exit code 2, not a half-started server.
 */
import { readFile } from "node:fs/promises";
import { SwooshError } from "../core/errors.ts";
import { checkGenesis } from "../engine/genesis.ts";
import type { GenesisDocument } from "../engine/genesis.ts";
import { CliError, EXIT_BAD_INPUT } from "./exit-codes.ts";

export async function readGenesisDocument(file: string): Promise<GenesisDocument> {
  let text: string;
  try {
    text = await readFile(file, "utf8");
  } catch (error) {
    throw new CliError(`cannot read genesis file ${file}: ${(error as Error).message}`, EXIT_BAD_INPUT);
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (error) {
    throw new CliError(`genesis file ${file} is not valid JSON: ${(error as Error).message}`, EXIT_BAD_INPUT);
  }
  try {
    return checkGenesis(parsed);
  } catch (error) {
    if (error instanceof SwooshError) throw new CliError(`genesis file ${file}: ${error.code}: ${error.message}`, EXIT_BAD_INPUT);
    throw error;
  }
}
