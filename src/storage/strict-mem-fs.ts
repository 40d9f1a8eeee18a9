/**
 * A strict in-memory `FileSystem` for crash tests. NOT FOR PRODUCTION.
 *
 * Modelled on Pebble's strict MemFS and SQLite's crash VFS: every file keeps its
 * live content and the content its last fsync made durable; every directory
 * keeps its live entries and the entries its last fsync made durable. `crash()`
 * is a power loss: each directory goes back to its durable entries and each
 * file to its durable content, so every unsynced write, creation, rename and
 * unlink is forgotten. With `tearSeed`, unsynced data may instead survive in
 * part (a seeded random prefix), as a torn write does on a real disk.
 *
 * After `crash()` the file system is halted, so that code still running from
 * before the "power loss" cannot touch the disk; `restart()` lets the next
 * "boot" in. Handles opened before a crash stay dead.
 *
 * Two test hooks: `onStep` sees every operation before and after it runs (a
 * test can crash at any step), and `failNext` makes the next matching
 * operation fail with an errno code (EIO on sync, ENOSPC on write, ...).
 */
import { posix } from "node:path";
import { seededRandom } from "../core/seeded-random.ts";
import type { FileHandleLike, FileSystem } from "./types.ts";

export type FsOp = "mkdirp" | "create" | "write" | "sync" | "close" | "readFile" | "rename" | "unlink" | "readdir" | "syncDir" | "exists";

export interface FsStep {
  readonly phase: "before" | "after";
  readonly op: FsOp;
  readonly path: string;
}

/** An errno-style error, shaped like node's (`code` is "ENOENT", "EIO", ...). */
export class FsError extends Error {
  constructor(
    readonly code: string,
    op: string,
    path: string,
  ) {
    super(`${code}: ${op} '${path}'`);
    this.name = "FsError";
  }
}

/** Raised by every operation between `crash()` and `restart()`. */
export class FsCrashedError extends Error {
  constructor(op: string, path: string) {
    super(`file system crashed (power loss); ${op} '${path}' refused until restart()`);
    this.name = "FsCrashedError";
  }
}

interface FileNode {
  readonly kind: "file";
  data: Buffer;
  synced: Buffer;
}

interface DirNode {
  readonly kind: "dir";
  children: Map<string, Node>;
  synced: Map<string, Node>;
}

type Node = FileNode | DirNode;

interface Injection {
  readonly op: FsOp;
  readonly code: string;
  readonly path: string | undefined;
}

export interface CrashOptions {
  /** Seed for tearing: unsynced data survives as a random prefix instead of vanishing. */
  readonly tearSeed?: number;
}

export class StrictMemFileSystem implements FileSystem {
  /** Called before and after every operation; a hook may call `crash()` or throw. */
  onStep: ((step: FsStep) => void) | undefined;

  private readonly root: DirNode = newDir();
  private generation = 0;
  private halted = false;
  private injections: Injection[] = [];

  constructor() {
    // Entries directly under "/" are durable at once: they stand for the mount
    // points a test starts from. Everything below them obeys the strict rules.
    this.root.synced = this.root.children;
  }

  /** Power loss: forget everything not fsynced, then refuse all calls until `restart()`. */
  crash(options: CrashOptions = {}): void {
    const random = options.tearSeed === undefined ? undefined : seededRandom(options.tearSeed);
    const seen = new Set<Node>();
    const revert = (dir: DirNode): void => {
      dir.children = new Map(dir.synced);
      for (const child of dir.children.values()) {
        if (seen.has(child)) continue;
        seen.add(child);
        if (child.kind === "dir") revert(child);
        else child.data = random ? tear(child, random) : Buffer.from(child.synced);
      }
    };
    this.root.synced = new Map(this.root.synced);
    revert(this.root);
    this.root.synced = this.root.children;
    // A torn file's surviving bytes are what is on disk now.
    for (const node of seen) if (node.kind === "file") node.synced = Buffer.from(node.data);
    this.generation += 1;
    this.halted = true;
    this.injections = [];
  }

  /** The next "boot": operations are accepted again. */
  restart(): void {
    this.halted = false;
  }

  /** Makes the next `op` (on `path`, if given) fail with errno `code`, without effect. */
  failNext(op: FsOp, code: string, path?: string): void {
    this.injections.push({ op, code, path: path === undefined ? undefined : normalize(path) });
  }

  async mkdirp(dir: string): Promise<void> {
    const path = normalize(dir);
    this.step("before", "mkdirp", path);
    let node: DirNode = this.root;
    for (const name of parts(path)) {
      const child = node.children.get(name);
      if (child === undefined) {
        const created = newDir();
        node.children.set(name, created);
        node = created;
      } else if (child.kind === "dir") {
        node = child;
      } else {
        throw new FsError("ENOTDIR", "mkdirp", path);
      }
    }
    this.step("after", "mkdirp", path);
  }

  async create(target: string): Promise<FileHandleLike> {
    const path = normalize(target);
    this.step("before", "create", path);
    const { dir, name } = this.parentOf(path, "create");
    let node = dir.children.get(name);
    if (node?.kind === "dir") throw new FsError("EISDIR", "create", path);
    if (node === undefined) {
      node = { kind: "file", data: Buffer.alloc(0), synced: Buffer.alloc(0) };
      dir.children.set(name, node);
    } else {
      // O_TRUNC on the same inode; durable only after the next fsync.
      node.data = Buffer.alloc(0);
    }
    this.step("after", "create", path);
    return new StrictHandle(this, node, path, this.generation);
  }

  async readFile(target: string): Promise<Buffer> {
    const path = normalize(target);
    this.step("before", "readFile", path);
    const node = this.lookup(path, "readFile");
    if (node.kind === "dir") throw new FsError("EISDIR", "readFile", path);
    const copy = Buffer.from(node.data);
    this.step("after", "readFile", path);
    return copy;
  }

  async rename(fromPath: string, toPath: string): Promise<void> {
    const from = normalize(fromPath);
    const to = normalize(toPath);
    this.step("before", "rename", from);
    const source = this.parentOf(from, "rename");
    const node = source.dir.children.get(source.name);
    if (node === undefined) throw new FsError("ENOENT", "rename", from);
    const target = this.parentOf(to, "rename");
    const existing = target.dir.children.get(target.name);
    if (existing?.kind === "dir" && existing !== node) throw new FsError("EISDIR", "rename", to);
    source.dir.children.delete(source.name);
    target.dir.children.set(target.name, node);
    this.step("after", "rename", from);
  }

  async unlink(target: string): Promise<void> {
    const path = normalize(target);
    this.step("before", "unlink", path);
    const { dir, name } = this.parentOf(path, "unlink");
    const node = dir.children.get(name);
    if (node === undefined) throw new FsError("ENOENT", "unlink", path);
    if (node.kind === "dir") throw new FsError("EISDIR", "unlink", path);
    dir.children.delete(name);
    this.step("after", "unlink", path);
  }

  async readdir(target: string): Promise<string[]> {
    const path = normalize(target);
    this.step("before", "readdir", path);
    const node = this.lookup(path, "readdir");
    if (node.kind !== "dir") throw new FsError("ENOTDIR", "readdir", path);
    const names = [...node.children.keys()].sort();
    this.step("after", "readdir", path);
    return names;
  }

  async syncDir(target: string): Promise<void> {
    const path = normalize(target);
    this.step("before", "syncDir", path);
    const node = this.lookup(path, "syncDir");
    if (node.kind !== "dir") throw new FsError("ENOTDIR", "syncDir", path);
    node.synced = new Map(node.children);
    this.step("after", "syncDir", path);
  }

  async fileSize(target: string): Promise<number> {
    const path = normalize(target);
    const node = this.lookup(path, "stat");
    if (node.kind === "dir") throw new FsError("EISDIR", "stat", path);
    return node.data.length;
  }

  async exists(target: string): Promise<boolean> {
    const path = normalize(target);
    this.step("before", "exists", path);
    let found = true;
    try {
      this.lookup(path, "exists");
    } catch (error) {
      if (!(error instanceof FsError)) throw error;
      found = false;
    }
    this.step("after", "exists", path);
    return found;
  }

  /** @internal Runs one handle operation under the same halting, hooks and injections. */
  handleStep(phase: "before" | "after", op: FsOp, path: string, generation: number): void {
    if (generation !== this.generation) throw new FsCrashedError(op, path);
    this.step(phase, op, path);
  }

  private step(phase: "before" | "after", op: FsOp, path: string): void {
    if (this.halted) throw new FsCrashedError(op, path);
    this.onStep?.({ phase, op, path });
    // The hook may have pulled the plug.
    if (this.halted) throw new FsCrashedError(op, path);
    if (phase === "before") {
      const at = this.injections.findIndex((item) => item.op === op && (item.path === undefined || item.path === path));
      if (at >= 0) {
        const [injection] = this.injections.splice(at, 1);
        throw new FsError((injection as Injection).code, op, path);
      }
    }
  }

  private lookup(path: string, op: string): Node {
    let node: Node = this.root;
    for (const name of parts(path)) {
      if (node.kind !== "dir") throw new FsError("ENOTDIR", op, path);
      const child: Node | undefined = node.children.get(name);
      if (child === undefined) throw new FsError("ENOENT", op, path);
      node = child;
    }
    return node;
  }

  private parentOf(path: string, op: string): { dir: DirNode; name: string } {
    const dir = this.lookup(posix.dirname(path), op);
    if (dir.kind !== "dir") throw new FsError("ENOTDIR", op, path);
    const name = posix.basename(path);
    if (name === "") throw new FsError("EINVAL", op, path);
    return { dir, name };
  }
}

class StrictHandle implements FileHandleLike {
  private closed = false;

  constructor(
    private readonly fs: StrictMemFileSystem,
    private readonly node: FileNode,
    private readonly path: string,
    private readonly generation: number,
  ) {}

  async write(data: string | Uint8Array): Promise<void> {
    this.fs.handleStep("before", "write", this.path, this.generation);
    if (this.closed) throw new FsError("EBADF", "write", this.path);
    const bytes = typeof data === "string" ? Buffer.from(data, "utf8") : Buffer.from(data);
    this.node.data = Buffer.concat([this.node.data, bytes]);
    this.fs.handleStep("after", "write", this.path, this.generation);
  }

  async sync(): Promise<void> {
    this.fs.handleStep("before", "sync", this.path, this.generation);
    if (this.closed) throw new FsError("EBADF", "sync", this.path);
    this.node.synced = Buffer.from(this.node.data);
    this.fs.handleStep("after", "sync", this.path, this.generation);
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.fs.handleStep("before", "close", this.path, this.generation);
    this.closed = true;
    this.fs.handleStep("after", "close", this.path, this.generation);
  }
}

function newDir(): DirNode {
  return { kind: "dir", children: new Map(), synced: new Map() };
}

function normalize(path: string): string {
  return posix.resolve("/", path);
}

function parts(path: string): string[] {
  return path.split("/").filter((part) => part !== "");
}

/** What survives of a file's unsynced content after a torn power loss. */
function tear(node: FileNode, random: () => number): Buffer {
  const { data, synced } = node;
  if (data.equals(synced)) return Buffer.from(synced);
  if (data.length >= synced.length && data.subarray(0, synced.length).equals(synced)) {
    // Appended after the last fsync: some prefix of the appended bytes made it.
    const keep = synced.length + Math.floor(random() * (data.length - synced.length + 1));
    return Buffer.from(data.subarray(0, keep));
  }
  // Truncated and rewritten since the last fsync: the old content, or part of the new.
  if (random() < 0.5) return Buffer.from(synced);
  return Buffer.from(data.subarray(0, Math.floor(random() * (data.length + 1))));
}

