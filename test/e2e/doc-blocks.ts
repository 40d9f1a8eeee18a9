/**
 * Fenced code blocks of a Markdown document, for the tests that run the
 * documents' examples as written (api-integration-doc, durability-doc).
 */
import assert from "node:assert/strict";

export interface FencedBlock {
  /** The info string's language (`json`, `sh`, `python`, or empty). */
  readonly lang: string;
  readonly text: string;
}

/** The fenced blocks that follow `marker` in `doc` (named `docName` in failures), in order. */
export function fencedBlocksAfter(doc: string, docName: string, marker: string): FencedBlock[] {
  const from = doc.indexOf(marker);
  assert.ok(from >= 0, `${docName} has "${marker}"`);
  return [...doc.slice(from).matchAll(/^```(\w*)\n([\s\S]*?)^```$/gm)].map((m) => ({ lang: m[1] as string, text: m[2] as string }));
}
