/**
 * writeFileAtomic under power loss at every step, on the strict in-memory file
 * system: the target is always the complete old or the complete new content,
 * and once the directory fsync returned, the new content survives. The same
 * harness shows that the seed's order (directory fsync before the rename) and a
 * write without a file fsync lose data, so the harness can catch those bugs.
 */
import assert from "node:assert/strict";
import { mkdtemp, readdir, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join, posix } from "node:path";
import { describe, it } from "node:test";
import { tempPathFor, writeFileAtomic } from "../../src/storage/atomic-file.ts";
import { NodeFileSystem } from "../../src/storage/node-fs.ts";
import { FsError, StrictMemFileSystem } from "../../src/storage/strict-mem-fs.ts";
import type { FsStep } from "../../src/storage/strict-mem-fs.ts";
import type { FileSystem } from "../../src/storage/types.ts";

type Writer = (fs: FileSystem, path: string, pieces: readonly string[]) => Promise<void>;

const DIR = "/data";
const TARGET = "/data/genesis.json";
const OLD = '{"version":"old","padding":"' + "o".repeat(40) + '"}';
const NEW_PIECES = ['{"version":', '"new",', '"padding":"', "n".repeat(50), '"}'];
const NEW = NEW_PIECES.join("");

/** Small buffers, so the new content takes several write steps to crash between. */
const correctWriter: Writer = (fs, path, pieces) => writeFileAtomic(fs, path, pieces, { bufferBytesMax: 16 });

/** The seed's order: the directory is fsynced before the rename, not after. */
const seedOrderWriter: Writer = async (fs, path, pieces) => {
  const temp = tempPathFor(path);
  const handle = await fs.create(temp);
  for (const piece of pieces) await handle.write(piece);
  await handle.sync();
  await handle.close();
  await fs.syncDir(posix.dirname(path));
  await fs.rename(temp, path);
};

/** Renames without fsyncing the file first. */
const noFileSyncWriter: Writer = async (fs, path, pieces) => {
  const temp = tempPathFor(path);
  const handle = await fs.create(temp);
  for (const piece of pieces) await handle.write(piece);
  await handle.close();
  await fs.rename(temp, path);
  await fs.syncDir(posix.dirname(path));
};

interface Outcome {
  readonly crashStep: number;
  readonly at: string;
  readonly tearSeed: number | undefined;
  /** Content of the target after the crash and restart; undefined if it does not exist. */
  readonly content: string | undefined;
  /** The writer resolved before the crash. */
  readonly resolved: boolean;
  /** The directory fsync had returned before the crash. */
  readonly dirSynced: boolean;
}

async function freshFs(withOld: boolean): Promise<StrictMemFileSystem> {
  const fs = new StrictMemFileSystem();
  await fs.mkdirp(DIR);
  if (withOld) await writeFileAtomic(fs, TARGET, [OLD]);
  return fs;
}

/** Runs `writer` once per step, pulling the plug at that step (and once after it resolved). */
async function crashAtEveryStep(writer: Writer, options: { withOld: boolean; tearSeeds: Array<number | undefined> }): Promise<Outcome[]> {
  const dry = await freshFs(options.withOld);
  let stepCount = 0;
  dry.onStep = () => void (stepCount += 1);
  await writer(dry, TARGET, NEW_PIECES);
  assert.ok(stepCount > 6 && stepCount < 100, `unexpected step count ${stepCount}`);

  const outcomes: Outcome[] = [];
  for (let crashStep = 0; crashStep <= stepCount; crashStep++) {
    for (const tearSeed of options.tearSeeds) {
      const fs = await freshFs(options.withOld);
      let seen = 0;
      let at = "after the writer resolved";
      let dirSynced = false;
      let crashed = false;
      const crash = (): void => {
        crashed = true;
        fs.crash(tearSeed === undefined ? {} : { tearSeed });
      };
      fs.onStep = (step: FsStep) => {
        if (seen === crashStep) {
          at = `${step.phase} ${step.op} ${step.path}`;
          crash();
          return;
        }
        seen += 1;
        if (step.phase === "after" && step.op === "syncDir") dirSynced = true;
      };
      let resolved = false;
      try {
        await writer(fs, TARGET, NEW_PIECES);
        resolved = true;
      } catch (error) {
        if (!crashed) throw error;
      }
      fs.onStep = undefined;
      if (!crashed) crash();
      fs.restart();
      const content = (await fs.exists(TARGET)) ? (await fs.readFile(TARGET)).toString("utf8") : undefined;
      outcomes.push({ crashStep, at, tearSeed, content, resolved, dirSynced });
    }
  }
  return outcomes;
}

const TEAR_SEEDS = [undefined, 1, 2, 3, 4, 5];

describe("writeFileAtomic", () => {
  it("leaves the complete old or complete new content at every crash point, new once the dir fsync returned", async () => {
    const outcomes = await crashAtEveryStep(correctWriter, { withOld: true, tearSeeds: TEAR_SEEDS });
    for (const outcome of outcomes) {
      const where = `crash at step ${outcome.crashStep} (${outcome.at}), tear seed ${outcome.tearSeed}`;
      assert.ok(outcome.content === OLD || outcome.content === NEW, `${where}: torn content ${JSON.stringify(outcome.content)}`);
      if (outcome.dirSynced || outcome.resolved) assert.equal(outcome.content, NEW, `${where}: acknowledged write lost`);
    }
    // Both sides of the durability point were exercised.
    assert.ok(outcomes.some((outcome) => outcome.content === OLD));
    assert.ok(outcomes.some((outcome) => outcome.content === NEW && !outcome.resolved));
  });

  it("a first write leaves either no file or the complete new one", async () => {
    const outcomes = await crashAtEveryStep(correctWriter, { withOld: false, tearSeeds: TEAR_SEEDS });
    for (const outcome of outcomes) {
      assert.ok(outcome.content === undefined || outcome.content === NEW, `crash at ${outcome.at}: ${JSON.stringify(outcome.content)}`);
      if (outcome.resolved) assert.equal(outcome.content, NEW);
    }
  });

  it("catches the seed's bug: fsync(dir) before rename loses an acknowledged rename", async () => {
    const outcomes = await crashAtEveryStep(seedOrderWriter, { withOld: true, tearSeeds: [undefined] });
    const lost = outcomes.filter((outcome) => outcome.resolved && outcome.content !== NEW);
    assert.ok(lost.length > 0, "the strict file system failed to expose the lost rename");
    assert.equal(lost[0]?.content, OLD);
  });

  it("catches a missing file fsync: the renamed file comes back empty or torn", async () => {
    const outcomes = await crashAtEveryStep(noFileSyncWriter, { withOld: true, tearSeeds: TEAR_SEEDS });
    const torn = outcomes.filter((outcome) => outcome.content !== OLD && outcome.content !== NEW);
    assert.ok(torn.length > 0, "the strict file system failed to expose the torn file");
  });

  for (const [op, code] of [
    ["write", "ENOSPC"],
    ["sync", "EIO"],
    ["rename", "EIO"],
    ["create", "EMFILE"],
  ] as const) {
    it(`on ${code} from ${op}: rethrows, keeps the old content, removes the temp file`, async () => {
      const fs = await freshFs(true);
      fs.failNext(op, code);
      await assert.rejects(correctWriter(fs, TARGET, NEW_PIECES), (error: unknown) => error instanceof FsError && error.code === code);
      assert.equal((await fs.readFile(TARGET)).toString(), OLD);
      assert.deepEqual(await fs.readdir(DIR), ["genesis.json"]);
    });
  }

  it("with syncEveryBytes, fsyncs the temp file as it goes (a large file's dirty pages never pile up), and the result is the same", async () => {
    const fs = new StrictMemFileSystem();
    await fs.mkdirp(DIR);
    const steps: string[] = [];
    fs.onStep = (step) => {
      if (step.phase === "after" && (step.op === "write" || step.op === "sync")) steps.push(step.op);
    };
    const pieces = Array.from({ length: 10 }, (_, i) => `${i}`.repeat(16));
    await writeFileAtomic(fs, TARGET, pieces, { bufferBytesMax: 16, syncEveryBytes: 48 });
    assert.equal((await fs.readFile(TARGET)).toString(), pieces.join(""));
    // 10 writes of 16 bytes; a sync after every third, and the final one.
    assert.deepEqual(steps, ["write", "write", "write", "sync", "write", "write", "write", "sync", "write", "write", "write", "sync", "write", "sync"]);
  });

  it("writes through the real file system with few write calls", async () => {
    const dir = await mkdtemp(join(tmpdir(), "swoosh-atomic-"));
    try {
      const target = join(dir, "big.json");
      const pieces = Array.from({ length: 3000 }, (_, i) => `"piece ${i} ${"x".repeat(1000)}",`);
      let writes = 0;
      const fs = new NodeFileSystem();
      const counting: FileSystem = {
        ...bindAll(fs),
        create: async (path) => {
          const handle = await fs.create(path);
          return { write: (data) => ((writes += 1), handle.write(data)), sync: () => handle.sync(), close: () => handle.close() };
        },
      };
      await writeFileAtomic(counting, target, pieces);
      assert.equal(await readFile(target, "utf8"), pieces.join(""));
      // ~3 MB in 1 MiB buffers: a handful of writes, not one per piece.
      assert.ok(writes <= 4, `${writes} writes`);
      assert.deepEqual(await readdir(dir), ["big.json"]);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});

function bindAll(fs: NodeFileSystem): FileSystem {
  return {
    mkdirp: (dir) => fs.mkdirp(dir),
    create: (path) => fs.create(path),
    readFile: (path) => fs.readFile(path),
    fileSize: (path) => fs.fileSize(path),
    rename: (from, to) => fs.rename(from, to),
    unlink: (path) => fs.unlink(path),
    readdir: (dir) => fs.readdir(dir),
    syncDir: (dir) => fs.syncDir(dir),
    exists: (path) => fs.exists(path),
  };
}
