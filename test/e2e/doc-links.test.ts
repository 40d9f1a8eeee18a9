/**
 * Every relative link in the repository's Markdown files leads to a file of
 * the repository. A link out of it (the README once sent readers to
 * `../shared/SPEC.md`, which exists only beside the checkout it was written
 * in) is a dead end for anyone who clones the repository.
 */
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { readFile } from "node:fs/promises";
import path from "node:path";
import { it } from "node:test";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";

const REPO_ROOT = fileURLToPath(new URL("../..", import.meta.url));

/** `[text](target)` and `![alt](target)`; an optional title after the target is left out. */
const LINK = /\]\(([^)\s]+)(?:\s+"[^"]*")?\)/g;

function isRelative(target: string): boolean {
  return !/^[a-z][a-z0-9+.-]*:/i.test(target) && !target.startsWith("#") && !target.startsWith("/");
}

it("links in the Markdown files lead to files of the repository", async () => {
  const { stdout } = await promisify(execFile)("git", ["ls-files", "-z"], { cwd: REPO_ROOT });
  const tracked = new Set(stdout.split("\0").filter((file) => file.length > 0));
  const docs = [...tracked].filter((file) => file.endsWith(".md"));
  assert.ok(docs.includes("README.md") && docs.includes("SPEC.md"), `Markdown files found: ${docs.join(", ")}`);
  const broken: string[] = [];
  for (const doc of docs) {
    const text = await readFile(path.join(REPO_ROOT, doc), "utf8");
    for (const [, target] of text.matchAll(LINK)) {
      if (target === undefined || !isRelative(target)) continue;
      const file = path.posix.normalize(path.posix.join(path.posix.dirname(doc), decodeURIComponent(target.split("#")[0] as string)));
      // A directory link (`bench/`) leads somewhere when a tracked file lies below it.
      const leads = tracked.has(file) || [...tracked].some((other) => other.startsWith(file.endsWith("/") ? file : `${file}/`));
      if (!leads) broken.push(`${doc}: ${target}`);
    }
  }
  assert.deepEqual(broken, []);
});
