#!/usr/bin/env bash
# Shows, with strace, that an LMDB log append is acknowledged only after its
# flush returned: runs test/storage/fixtures/wal-writer.ts (which writes
# "ACK <index>" to stdout once append resolved) under
#   strace -f -tt -e trace=fdatasync,fsync,msync,pwrite64,pwritev,writev,write,openat
# then checks that before every ACK an fdatasync of data.mdb returned, with no
# write to data.mdb after it, and prints an excerpt.
#
# Usage: scripts/strace-wal.sh [BATCH_SIZE] [BATCHES]   (defaults 4 and 5)
# Exit status: 0 if every ACK followed a flush, 1 otherwise.
set -euo pipefail
cd "$(dirname "$0")/.."
batch_size="${1:-4}"
batches="${2:-5}"

if ! command -v strace >/dev/null; then
  apt-get update -qq && apt-get install -y -qq strace >/dev/null
fi

work="$(mktemp -d "${TMPDIR:-/tmp}/swoosh-strace-XXXXXX")"
trap 'rm -rf "$work"' EXIT

strace -f -tt -o "$work/trace.txt" \
  -e trace=fdatasync,fsync,msync,pwrite64,pwritev,writev,write,openat \
  node --import tsx test/storage/fixtures/wal-writer.ts "$work/wal" "$batch_size" "$batches" >"$work/stdout.txt"

# Drop the noise: libuv/lmdb-js eventfd wake-ups (8-byte writes of \1\0...),
# and file opens other than the WAL's own.
grep -v -E 'write\([0-9]+, "\\1\\0\\0\\0\\0\\0\\0\\0", 8|<\.\.\. write resumed>\) += 8$|\+\+\+ exited' "$work/trace.txt" \
  | grep -v -E 'openat\(' >"$work/filtered.txt" || true

echo "== opening the WAL: data.mdb twice read-write, once O_DSYNC (the meta page is written through it);"
echo "   then the log fsyncs its directory (LMDB itself never does)"
grep -E "openat\\(.*(data\\.mdb|\"$work[^\"]*\", O_RDONLY)|[^a]fsync\\(" "$work/trace.txt" | sed -n '1,8p'
echo
echo "== the last two appends (pid, time, syscall); ACK lines are the process's stdout"
last_ack_lines="$(grep -n 'write(1, "ACK' "$work/filtered.txt" | tail -2 | head -1 | cut -d: -f1)"
tail -n +"$(( last_ack_lines > 1 ? last_ack_lines : 1 ))" "$work/filtered.txt" | grep -v -E 'write\(1, "(DONE|READY)' | sed -n '1,40p'
echo

# The check. The data fd is the one fdatasync is called on.
awk '
  function fd_of(s,   rest) { if (!match(s, /\([0-9]+/)) return ""; return substr(s, RSTART + 1, RLENGTH - 1) }
  /fdatasync\([0-9]+\) += 0/ { data_fd = fd_of($0); synced = 1; dirty = 0; syncs++; next }
  /fdatasync\([0-9]+ <unfinished/ { pending_fd = fd_of($0); next }
  /<\.\.\. fdatasync resumed>\) += 0/ { data_fd = pending_fd; synced = 1; dirty = 0; syncs++; next }
  /fdatasync.*= -1/ { print "flush FAILED: " $0; failed = 1; next }
  /(pwrite64|writev|pwritev)\(/ { if (data_fd != "" && fd_of($0) == data_fd) dirty = 1; next }
  /write\(1, "ACK / {
    acks++
    if (!synced || dirty) { print "VIOLATION: ACK without a completed flush before it: " $0; failed = 1 }
    synced = 0
  }
  END {
    printf "checked %d ACKs against %d completed fdatasync calls: %s\n", acks, syncs, (failed || acks == 0) ? "FAIL" : "every ACK was written after its flush returned"
    exit (failed || acks == 0) ? 1 : 0
  }
' "$work/filtered.txt"
