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
