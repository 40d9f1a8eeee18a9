/**
 * The bearer token (SPEC §7), for the server and the HTTP clients alike:
 * `--token-file FILE` (or `SWOOSH_TOKEN_FILE`) wins, else `SWOOSH_TOKEN` holds
 * the token itself, else there is none. A file's trailing newline is not part
 * of the token, so `echo secret > token` works.
 */
import { readFileSync } from "node:fs";
import { CliError, EXIT_BAD_INPUT } from "./exit-codes.ts";

/** Printable ASCII without spaces: anything else cannot travel in an Authorization header. */
const TOKEN_PATTERN = /^[\x21-\x7e]+$/;
const TOKEN_LENGTH_MAX = 4096;

function checked(token: string, source: string): string {
  if (token.length === 0) throw new CliError(`${source} is empty`, EXIT_BAD_INPUT);
  if (token.length > TOKEN_LENGTH_MAX || !TOKEN_PATTERN.test(token)) {
    throw new CliError(`${source}: a token is 1 to ${TOKEN_LENGTH_MAX} printable ASCII characters without spaces`, EXIT_BAD_INPUT);
  }
  return token;
}

/** Reads the token from `tokenFile`, else from `SWOOSH_TOKEN`; `undefined` when neither is set. */
export function resolveToken(tokenFile: string | undefined, env: NodeJS.ProcessEnv = process.env): string | undefined {
  if (tokenFile !== undefined) {
    let text: string;
    try {
      text = readFileSync(tokenFile, "utf8");
    } catch (error) {
      throw new CliError(`cannot read token file ${tokenFile}: ${(error as Error).message}`, EXIT_BAD_INPUT);
    }
    return checked(text.replace(/[\r\n]+$/, ""), `token file ${tokenFile}`);
  }
  const fromEnv = env.SWOOSH_TOKEN;
  if (fromEnv === undefined) return undefined;
  return checked(fromEnv, "SWOOSH_TOKEN");
}
