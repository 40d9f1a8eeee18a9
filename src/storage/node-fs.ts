/**
 * The production `FileSystem`: node:fs/promises with real fsync of files
 * (FileHandle.sync → fsync(2)) and of directories (open O_RDONLY + fsync), so a
 * creation, rename or unlink is durable once `syncDir` of its directory returned.
 */
import { constants } from "node:fs";
import { access, mkdir, open, readdir, readFile, rename, stat, unlink } from "node:fs/promises";
import type { FileHandle } from "node:fs/promises";
import type { FileHandleLike, FileSystem } from "./types.ts";

class NodeFileHandle implements FileHandleLike {
  constructor(private readonly handle: FileHandle) {}

  async write(data: string | Uint8Array): Promise<void> {
    const bytes = typeof data === "string" ? Buffer.from(data, "utf8") : data;
    let offset = 0;
    // write(2) may write less than asked (signals, quotas); loop until all is out.
    while (offset < bytes.length) {
      const { bytesWritten } = await this.handle.write(bytes, offset, bytes.length - offset);
      if (bytesWritten <= 0) throw new Error(`write returned ${bytesWritten}`);
      offset += bytesWritten;
    }
  }

  sync(): Promise<void> {
    return this.handle.sync();
  }

  close(): Promise<void> {
    return this.handle.close();
  }
}

export class NodeFileSystem implements FileSystem {
  async mkdirp(dir: string): Promise<void> {
    await mkdir(dir, { recursive: true });
  }

  async create(path: string): Promise<FileHandleLike> {
    return new NodeFileHandle(await open(path, "w"));
  }

  readFile(path: string): Promise<Buffer> {
    return readFile(path);
  }

  async fileSize(path: string): Promise<number> {
    return (await stat(path)).size;
  }

  rename(from: string, to: string): Promise<void> {
    return rename(from, to);
  }

  unlink(path: string): Promise<void> {
    return unlink(path);
  }

  readdir(dir: string): Promise<string[]> {
    return readdir(dir);
  }

  async syncDir(dir: string): Promise<void> {
    await syncDirectory(dir);
  }

  async exists(path: string): Promise<boolean> {
    try {
      await access(path, constants.F_OK);
      return true;
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === "ENOENT") return false;
      throw error;
    }
  }
}

/** fsync(2) of a directory, which makes the entries created, renamed or removed in it durable. */
export async function syncDirectory(dir: string): Promise<void> {
  const handle = await open(dir, constants.O_RDONLY);
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}
