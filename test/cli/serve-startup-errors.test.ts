/**
 * How `swoosh serve` names a startup failure: the address for a listen error,
 * the data dir for a write it may not do (both EACCES).
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { startupError } from "../../src/cli/commands/serve.ts";
import { CliError, EXIT_RUNTIME_FAILURE } from "../../src/cli/exit-codes.ts";

const options = { dataDir: "/srv/swoosh", host: "127.0.0.1", port: 80 };

function errno(message: string, fields: Partial<NodeJS.ErrnoException>): NodeJS.ErrnoException {
  return Object.assign(new Error(message), fields);
}

describe("swoosh serve startup failures", () => {
  it("blames the address for listen's EACCES and the data dir for a file's", () => {
    const listen = startupError(errno("listen EACCES: permission denied 127.0.0.1:80", { code: "EACCES", syscall: "listen" }), options);
    assert.ok(listen instanceof CliError);
    assert.equal(listen.exitCode, EXIT_RUNTIME_FAILURE);
    assert.match(listen.message, /^cannot listen on 127\.0\.0\.1:80: /);
    for (const code of ["EACCES", "EPERM", "EROFS"]) {
      const write = startupError(errno(`${code}: permission denied, open '/srv/swoosh/genesis.json.tmp-1-1'`, { code, syscall: "open", path: "/srv/swoosh/genesis.json.tmp-1-1" }), options);
      assert.ok(write instanceof CliError, code);
      assert.equal(write.exitCode, EXIT_RUNTIME_FAILURE);
      assert.match(write.message, /^data dir \/srv\/swoosh cannot be written: /, code);
    }
    assert.match((startupError(errno("listen EADDRINUSE", { code: "EADDRINUSE", syscall: "listen" }), options) as Error).message, /^cannot listen/);
  });
});
