/**
 * The README's "Try it with curl" walkthrough, read as steps a newcomer pastes
 * into a shell: each step is one command (continuation lines joined) and what
 * the README says it prints — a `# …` line under it, or a comment after it
 * that starts with `{` or `…`. Other comments only explain and expect nothing.
 *
 * An expected answer becomes a pattern: `…` stands for anything, HLC stamps,
 * millisecond times and 64-hex hashes for any value of their shape (they
 * differ on every run), `"index":N` captures the index so the caller can
 * allow for `system.tick` entries the server logged in between.
 */

export interface WalkthroughStep {
  /** The command as the README shows it (continuation lines joined with newlines). */
  readonly command: string;
  /** What the README says it prints, or null when it shows nothing. */
  readonly expected: string | null;
  /** The README line the command starts on (1-based), for failure messages. */
  readonly line: number;
}

/** The `sh` blocks between `## ${fromHeading}` and the next `## ` heading, as steps. */
export function walkthroughSteps(readme: string, fromHeading: string): WalkthroughStep[] {
  const lines = readme.split("\n");
  const start = lines.findIndex((line) => line === `## ${fromHeading}`);
  if (start < 0) throw new Error(`README has no "## ${fromHeading}" section`);
  const steps: Array<{ command: string; expected: string | null; line: number }> = [];
  let inBlock = false;
  for (let i = start + 1; i < lines.length; i++) {
    const line = lines[i] as string;
    if (!inBlock && line.startsWith("## ")) break;
    if (!inBlock) {
      inBlock = line === "```sh";
      continue;
    }
    if (line === "```") {
      inBlock = false;
      continue;
    }
    if (line.trim() === "") continue;
    const last = steps[steps.length - 1];
    if (line.startsWith("# ")) {
      if (last === undefined || last.expected !== null) throw new Error(`README line ${i + 1}: an expected answer with no command above it`);
      last.expected = line.slice(2);
      continue;
    }
    let command = line;
    const startLine = i + 1;
    while (command.endsWith("\\") && i + 1 < lines.length) command += "\n" + (lines[++i] as string);
    const inline = /\s+# (.*)$/.exec(command);
    let expected: string | null = null;
    if (inline !== null) {
      command = command.slice(0, inline.index);
      const comment = inline[1] as string;
      if (comment.startsWith("{") || comment.startsWith("…")) expected = comment;
    }
    steps.push({ command, expected, line: startLine });
  }
  return steps;
}

/** The index an answer `{"index":N,…}` carries, if any. */
export function answerIndex(text: string): number | null {
  const match = /"index":(\d+)/.exec(text);
  return match === null ? null : Number(match[1]);
}

/**
 * Whether `actual` is what `expected` describes, with `"index":N` compared
 * through `indexOk(N, actualIndex)` (the server may log ticks in between).
 */
export function matchesExpected(actual: string, expected: string, indexOk: (readmeIndex: number, actualIndex: number) => boolean): boolean {
  const readmeIndex = answerIndex(expected);
  const parts = expected.split("…").map((part) => shapePattern(part.trim()));
  const pattern = new RegExp((expected.startsWith("…") ? "" : "^") + parts.join(".*"), "s");
  if (!pattern.test(actual.trim())) return false;
  if (readmeIndex === null) return true;
  const actualIndex = answerIndex(actual);
  return actualIndex !== null && indexOk(readmeIndex, actualIndex);
}

/** A literal piece of an expected answer as a pattern: values that change from run to run match any value of their shape. */
function shapePattern(literal: string): string {
  return escapeRegExp(literal)
    .replace(/"index":\d+/g, '"index":\\d+')
    .replace(/\d{15}-\d{10}-node-1/g, "\\d{15}-\\d{10}-node-1")
    .replace(/\b\d{13}\b/g, "\\d{13}")
    .replace(/\b[0-9a-f]{64}\b/g, "[0-9a-f]{64}");
}

function escapeRegExp(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
}
