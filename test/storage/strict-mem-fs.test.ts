/**
 * The strict in-memory file system forgets exactly what was not fsynced, so
 * crash tests built on it mean something.
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { FsCrashedError, FsError, StrictMemFileSystem } from "../../src/storage/strict-mem-fs.ts";

async function writeFile(fs: StrictMemFileSystem, path: string, text: string, options: { sync: boolean }): Promise<void> {
  const handle = await fs.create(path);
  await handle.write(text);
  if (options.sync) await handle.sync();
  await handle.close();
}

async function afterPowerLoss(fs: StrictMemFileSystem, tearSeed?: number): Promise<void> {
  fs.crash(tearSeed === undefined ? {} : { tearSeed });
  fs.restart();
}

describe("StrictMemFileSystem", () => {
  it("keeps a file whose data and directory entry were both fsynced", async () => {
    const fs = new StrictMemFileSystem();
    await fs.mkdirp("/d");
    await writeFile(fs, "/d/a", "durable", { sync: true });
    await fs.syncDir("/d");
    await afterPowerLoss(fs);
    assert.equal((await fs.readFile("/d/a")).toString(), "durable");
  });

  it("fileSize: a file's bytes as written (synced or not), EISDIR for a directory, ENOENT for nothing", async () => {
    const fs = new StrictMemFileSystem();
    await fs.mkdirp("/d");
    await writeFile(fs, "/d/a", "héllo", { sync: false });
    assert.equal(await fs.fileSize("/d/a"), Buffer.byteLength("héllo"));
    await assert.rejects(fs.fileSize("/d"), (error: unknown) => error instanceof FsError && error.code === "EISDIR");
    await assert.rejects(fs.fileSize("/d/b"), (error: unknown) => error instanceof FsError && error.code === "ENOENT");
  });

  it("loses a created file whose directory was not fsynced, even if its data was", async () => {
    const fs = new StrictMemFileSystem();
    await fs.mkdirp("/d");
    await writeFile(fs, "/d/a", "data", { sync: true });
    await afterPowerLoss(fs);
    assert.equal(await fs.exists("/d/a"), false);
  });

  it("keeps an fsynced directory entry but loses unsynced data (an empty file)", async () => {
    const fs = new StrictMemFileSystem();
    await fs.mkdirp("/d");
    await writeFile(fs, "/d/a", "never synced", { sync: false });
    await fs.syncDir("/d");
    await afterPowerLoss(fs);
    assert.equal((await fs.readFile("/d/a")).length, 0);
  });

  it("undoes an unsynced rename and an unsynced unlink", async () => {
    const fs = new StrictMemFileSystem();
    await fs.mkdirp("/d");
    await writeFile(fs, "/d/a", "A", { sync: true });
    await writeFile(fs, "/d/b", "B", { sync: true });
    await fs.syncDir("/d");
    await fs.rename("/d/a", "/d/c");
    await fs.unlink("/d/b");
    assert.deepEqual(await fs.readdir("/d"), ["c"]);
    await afterPowerLoss(fs);
    assert.deepEqual(await fs.readdir("/d"), ["a", "b"]);
    assert.equal((await fs.readFile("/d/a")).toString(), "A");
  });

  it("reverts an unsynced rewrite of a synced file to the synced content", async () => {
    const fs = new StrictMemFileSystem();
    await fs.mkdirp("/d");
    await writeFile(fs, "/d/a", "old", { sync: true });
    await fs.syncDir("/d");
    await writeFile(fs, "/d/a", "new", { sync: false });
    await afterPowerLoss(fs);
    assert.equal((await fs.readFile("/d/a")).toString(), "old");
  });

  it("tears unsynced appends to a seeded prefix, reproducibly", async () => {
    const survivors = new Set<string>();
    for (let seed = 1; seed <= 40; seed++) {
      const runs: string[] = [];
      for (let repeat = 0; repeat < 2; repeat++) {
        const fs = new StrictMemFileSystem();
        await fs.mkdirp("/d");
        const handle = await fs.create("/d/a");
        await handle.write("synced|");
        await handle.sync();
        await fs.syncDir("/d");
        await handle.write("unsynced tail");
        await afterPowerLoss(fs, seed);
        runs.push((await fs.readFile("/d/a")).toString());
      }
      assert.equal(runs[0], runs[1], `seed ${seed} is not reproducible`);
      const text = runs[0] as string;
      assert.ok(("synced|unsynced tail").startsWith(text) && text.startsWith("synced|"), `seed ${seed}: ${text}`);
      survivors.add(text);
    }
    // Tearing really varies the surviving prefix.
    assert.ok(survivors.size > 3, `only ${survivors.size} distinct outcomes`);
  });

  it("refuses every call after a crash until restart, and old handles stay dead", async () => {
    const fs = new StrictMemFileSystem();
    await fs.mkdirp("/d");
    const handle = await fs.create("/d/a");
    fs.crash();
    await assert.rejects(fs.readdir("/d"), FsCrashedError);
    await assert.rejects(handle.write("x"), FsCrashedError);
    fs.restart();
    await assert.rejects(handle.write("x"), FsCrashedError);
    assert.deepEqual(await fs.readdir("/d"), []);
  });

  it("injects errno failures once, with no effect", async () => {
    const fs = new StrictMemFileSystem();
    await fs.mkdirp("/d");
    const handle = await fs.create("/d/a");
    fs.failNext("write", "ENOSPC");
    await assert.rejects(handle.write("x"), (error: unknown) => error instanceof FsError && error.code === "ENOSPC");
    await handle.write("y");
    fs.failNext("sync", "EIO");
    await assert.rejects(handle.sync(), (error: unknown) => error instanceof FsError && error.code === "EIO");
    await handle.sync();
    assert.equal((await fs.readFile("/d/a")).toString(), "y");
  });

  it("reports ENOENT like node does", async () => {
    const fs = new StrictMemFileSystem();
    await assert.rejects(fs.readFile("/missing"), (error: unknown) => error instanceof FsError && error.code === "ENOENT");
    await assert.rejects(fs.create("/no/such/dir/file"), (error: unknown) => error instanceof FsError && error.code === "ENOENT");
  });
});
