/**
 * Argument parsers for commander options. A bad value throws commander's
 * `InvalidArgumentError`, which commander reports in one line (naming the flag,
 * or the environment variable it came from) and main() turns into exit code 2.
 */
import { InvalidArgumentError } from "commander";

/** An integer in [min, max], written in decimal. */
export function integerIn(min: number, max: number): (text: string) => number {
  return (text: string) => {
    const value = /^-?\d+$/.test(text.trim()) ? Number(text) : Number.NaN;
    if (!Number.isSafeInteger(value) || value < min || value > max) {
      throw new InvalidArgumentError(`expected an integer from ${min} to ${max}.`);
    }
    return value;
  };
}

/** A TCP port; 0 asks the OS for a free one. */
export const parsePort = integerIn(0, 65_535);

/** A non-empty string (an empty environment variable is a mistake, not a value). */
export function nonEmpty(text: string): string {
  if (text.length === 0) throw new InvalidArgumentError("must not be empty.");
  return text;
}

/** An http(s) URL without a trailing slash, so paths can be appended. */
export function parseBaseUrl(text: string): string {
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    throw new InvalidArgumentError("expected a URL such as http://127.0.0.1:7777.");
  }
  if (url.protocol !== "http:" && url.protocol !== "https:") throw new InvalidArgumentError("expected an http:// or https:// URL.");
  return url.href.replace(/\/+$/, "");
}
