/**
 * Damage to a WAL's LMDB data file (4 KiB pages; meta pages 0 and 1, then the
 * B-tree) that LMDB cannot survive: mapping any of these crashes lmdb-js with
 * SIGSEGV or SIGBUS, so Swoosh must read the file in a child first
 * (src/storage/lmdb-probe.ts). The storage test and the server-level
 * corruption test hold the same list.
 */
export interface LmdbFileDamage {
  readonly name: string;
  /** The damaged copy of `pristine`, the undamaged data.mdb. */
  apply(pristine: Buffer): Buffer;
}

/** A copy of the file with `bytes(fileSize)` written over it from byte `at` on. */
function overwrite(at: number, bytes: (size: number) => Buffer): (pristine: Buffer) => Buffer {
  return (pristine) => {
    const damaged = Buffer.from(pristine);
    bytes(pristine.length).copy(damaged, at);
    return damaged;
  };
}

export const LMDB_FILE_DAMAGES: readonly LmdbFileDamage[] = [
  { name: "meta page 0 zeroed", apply: overwrite(0, () => Buffer.alloc(4096, 0)) },
  { name: "meta page 1 all ones (its txnid wins)", apply: overwrite(4096, () => Buffer.alloc(4096, 0xff)) },
  { name: "every B-tree page overwritten", apply: overwrite(8192, (size) => Buffer.alloc(size - 8192, 0x5a)) },
];

/** LMDB's page header (lmdb-js's LMDB 1.0): page number (8 bytes), txnid (8), pad (2), then the flags. */
const PAGE_SIZE = 4096;
const PAGE_FLAGS_AT = 18;
const P_LEAF = 0x02;

/** The leaf pages of a data file, in file order. */
export function leafPages(file: Buffer): number[] {
  const leaves: number[] = [];
  for (let page = 2; (page + 1) * PAGE_SIZE <= file.length; page++) {
    const at = page * PAGE_SIZE;
    if (Number(file.readBigUInt64LE(at)) === page && (file.readUInt16LE(at + PAGE_FLAGS_AT) & P_LEAF) !== 0) leaves.push(page);
  }
  return leaves;
}

/**
 * Five leaf pages halfway through the file zeroed: the meta pages and the
 * records at both ends are intact, so the log opens, and only a read that
 * reaches them would crash (LMDB asserts and aborts). The probe child finds
 * them while this process reads the records before them. Five, not one: a
 * leaf page the B-tree no longer uses (freed by a later commit, waiting for
 * reuse) looks like any other here, and damage to it alone harms nothing.
 */
export const LMDB_MIDDLE_LEAF_DAMAGE: LmdbFileDamage = {
  name: "five leaf pages halfway through zeroed",
  apply: (pristine) => {
    const leaves = leafPages(pristine);
    if (leaves.length < 16) throw new Error(`only ${leaves.length} leaf pages: too few records for pages between the ends`);
    const middle = Math.floor(leaves.length / 2);
    const damaged = Buffer.from(pristine);
    for (const page of leaves.slice(middle - 2, middle + 3)) damaged.fill(0, page * PAGE_SIZE, (page + 1) * PAGE_SIZE);
    return damaged;
  },
};
