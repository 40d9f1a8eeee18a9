/**
 * The server's logger, also used by `swoosh serve` for its own lines (signals,
 * warnings), so that stderr carries only JSON lines at the chosen level.
 * Its own module: the CLI loads it before the HTTP stack.
 */
import pino from "pino";
import type { FastifyBaseLogger } from "fastify";

/** pino at info on stderr unless told otherwise; silent for `false`. */
export function createLogger(option: boolean | object | undefined): FastifyBaseLogger {
  if (option === false) return pino({ level: "silent" }) as unknown as FastifyBaseLogger;
  const options = typeof option === "object" && option !== null ? (option as pino.LoggerOptions & { stream?: pino.DestinationStream }) : {};
  const { stream, ...rest } = options;
  return pino({ level: "info", ...rest }, stream ?? pino.destination({ dest: 2, sync: true })) as unknown as FastifyBaseLogger;
}
