/**
 * `swoosh/client` loads no server, engine, storage or LMDB code (STYLE: "the
 * client imports only *types* from the server"). Checked twice: statically,
 * every import of src/client that is not `import type` stays inside
 * src/client (or is a node: builtin, or a pure core module: the error-code
 * table, the JSON value check); and at
 * run time, a fresh child process importing src/client/index.ts resolves
 * nothing but those files.
 */
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { readdir, readFile } from "node:fs/promises";
import path from "node:path";
import { describe, it } from "node:test";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import ts from "typescript";

const root = fileURLToPath(new URL("../../", import.meta.url));
const clientDir = path.join(root, "src/client");
/** Value imports allowed outside src/client: pure core modules that import nothing at run time themselves (the error-code table, the JSON value check). */
const ALLOWED_OUTSIDE = new Set([path.join(root, "src/core/errors.ts"), path.join(root, "src/core/json.ts")]);
const FORBIDDEN = [/\/src\/server\//, /\/src\/storage\//, /\/src\/engine\//, /\/src\/domain\//, /node_modules\/lmdb/, /node_modules\/fastify/, /node_modules\/@sinclair/];

async function sourceFiles(dir: string): Promise<string[]> {
  const files: string[] = [];
  for (const entry of await readdir(dir, { withFileTypes: true })) {
    const full = path.join(dir, entry.name);
    if (entry.isDirectory()) files.push(...(await sourceFiles(full)));
    else if (entry.name.endsWith(".ts")) files.push(full);
  }
  return files;
}

/** The specifiers of a file's imports and re-exports that survive compilation (not `import type` / `export type`). */
function valueImports(file: string, text: string): string[] {
  const source = ts.createSourceFile(file, text, ts.ScriptTarget.ES2022, false, ts.ScriptKind.TS);
  const specifiers: string[] = [];
  const visit = (node: ts.Node): void => {
    if (ts.isImportDeclaration(node) && !node.importClause?.isTypeOnly && ts.isStringLiteral(node.moduleSpecifier)) specifiers.push(node.moduleSpecifier.text);
    if (ts.isExportDeclaration(node) && !node.isTypeOnly && node.moduleSpecifier !== undefined && ts.isStringLiteral(node.moduleSpecifier)) specifiers.push(node.moduleSpecifier.text);
    if (ts.isCallExpression(node) && node.expression.kind === ts.SyntaxKind.ImportKeyword) specifiers.push(node.arguments[0]?.getText(source) ?? "?");
    ts.forEachChild(node, visit);
  };
  visit(source);
  return specifiers;
}

describe("swoosh/client isolation", () => {
  it("imports values only from src/client, node: builtins and two pure core modules", async () => {
    const files = await sourceFiles(clientDir);
    assert.ok(files.length >= 10, `found ${files.length} client modules`);
    const offending: string[] = [];
    for (const file of files) {
      for (const specifier of valueImports(file, await readFile(file, "utf8"))) {
        if (specifier.startsWith("node:")) continue;
        const target = specifier.startsWith(".") ? path.resolve(path.dirname(file), specifier) : specifier;
        if (target.startsWith(clientDir + path.sep) || ALLOWED_OUTSIDE.has(target)) continue;
        offending.push(`${path.relative(root, file)} imports ${specifier}`);
      }
    }
    assert.deepEqual(offending, []);
  });

  it("a fresh process importing src/client/index.ts loads no server, engine, storage, domain or LMDB module", async () => {
    const fixture = fileURLToPath(new URL("./fixtures/list-client-imports.ts", import.meta.url));
    const { stdout } = await promisify(execFile)(process.execPath, ["--import", "tsx", fixture], { cwd: root, timeout: 30_000 });
    const { resolved, commonJs } = JSON.parse(stdout) as { resolved: string[]; commonJs: string[] };
    const files = resolved.filter((url) => url.startsWith("file:")).map((url) => fileURLToPath(url));
    assert.ok(files.includes(path.join(clientDir, "index.ts")) && files.includes(path.join(clientDir, "worker/worker.ts")), `the hook saw the client load: ${files.join(", ")}`);
    for (const file of [...files, ...commonJs]) {
      for (const pattern of FORBIDDEN) assert.doesNotMatch(file, pattern);
      // tsx and its compiler run the TypeScript; nothing else may come along.
      assert.ok(file.startsWith(clientDir + path.sep) || ALLOWED_OUTSIDE.has(file) || !file.startsWith(root) || /node_modules\/(tsx|esbuild|get-tsconfig|resolve-pkg-maps)\//.test(file), `unexpected module ${file}`);
    }
    assert.ok(
      resolved.filter((url) => !url.startsWith("file:")).every((url) => url.startsWith("node:")),
      `only node: builtins besides files: ${resolved.join(", ")}`,
    );
  });
});
