/*
 * lossyfs: a FUSE passthrough that loses what was not synced, for power-loss
 * tests (in the spirit of Jepsen's lazyfs). See POWERLOSS.md next to this file.
 *
 * File data: every write(2) is held in the daemon's memory, per backing inode,
 * as an overlay of byte ranges (plus unsynced size changes). Reads return the
 * backing file overlaid with those ranges. fsync/fdatasync of the file (FUSE
 * `fsync`, both kinds; O_SYNC/O_DSYNC writes, after which the kernel sends an
 * fsync too) writes the overlay to the backing file and fsyncs it.
 *
 * Metadata: create, mkdir, unlink, rmdir and rename are applied to the backing
 * directory at once (so that lookups stay simple), and journaled. A journal
 * entry becomes durable when a directory it touches is fsynced (FUSE
 * `fsyncdir`). Unlinked files and directories, and rename targets that were
 * replaced, are moved into a hidden stash (BACKING/.lossyfs-stash) until their
 * removal is durable, so that it can be undone.
 *
 * Control file MOUNT/.lossyfs-ctl (direct I/O, never cached):
 *   write "poweroff"              drop every overlay; undo every non-durable metadata op
 *   write "poweroff prefix SEED"  torn: per file, a seeded random prefix (in write
 *                                 order, cut at 512-byte sectors) of the unsynced
 *                                 writes reaches the disk; a random prefix of the
 *                                 non-durable metadata ops survives
 *   write "poweroff subset SEED"  reordered: each unsynced 512-byte sector reaches the
 *                                 disk with probability 1/2; metadata as for prefix
 *   write "arm EVENT K MODE [SEED]"  power off (MODE drop|prefix|subset) at the K-th
 *                                 next EVENT: "write" (after it reached the overlay),
 *                                 "fsync" of a file with unsynced data, or "fsyncdir"
 *                                 (before it does anything);
 *                                 that operation fails with EIO
 *   write "sync"                  like sync(2): everything becomes durable
 *   read                          counters, one "name value" per line
 * After a poweroff every operation but reading the control file and stat of
 * the root fails with EIO until the file system is unmounted. The kernel page
 * cache of the mount may still hold lost data: unmount, then read the backing
 * directory (or mount it again).
 *
 * A clean unmount (no poweroff) writes every overlay to the backing files and
 * makes every metadata op durable, like a clean shutdown.
 *
 * Usage: lossyfs [--direct-io] BACKING_DIR MOUNTPOINT [fuse options...]
 * Runs in the foreground, single-threaded; prints "lossyfs: mounted" to stderr
 * once the kernel initialized the mount, and the counters at exit. Unmounts and
 * exits when its parent process dies (SIGTERM via PR_SET_PDEATHSIG).
 */
#define FUSE_USE_VERSION 31
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <fuse.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/types.h>
#include <unistd.h>

#define CTL_NAME ".lossyfs-ctl"
#define STASH_NAME ".lossyfs-stash"
#define SECTOR 512
#define NO_TRUNC INT64_MAX

/* ---------- state ---------- */

struct ext { /* one unsynced byte range */
	off_t off;
	size_t len, cap;
	char *data;
};

struct node { /* one backing inode with an open descriptor */
	dev_t dev;
	ino_t ino;
	int fd;
	int refs;     /* open handles */
	off_t size;   /* logical size (what readers see) */
	off_t bsize;  /* size of the backing file */
	off_t zero_from; /* an unsynced truncate hid the backing bytes from here on */
	struct ext *ext; /* non-overlapping, in the order they were written */
	size_t n, cap;
	struct node *next;
};

struct handle {
	struct node *node;
	int flags;
};

enum op_kind { OP_CREATE, OP_MKDIR, OP_UNLINK, OP_RMDIR, OP_RENAME };

struct op { /* one journaled metadata operation */
	enum op_kind kind;
	char *a, *b;   /* path (rename: from, to) relative to the root, "/x/y" */
	char *stash;   /* name in the stash, or NULL */
	int durable;
};

static struct {
	const char *backing;
	int bfd, sfd; /* backing root, stash dir */
	int direct_io;
	int powered_off;
	struct { int event, mode; uint64_t left, seed; } arm; /* a power off waiting for its event */
	struct node *nodes;
	struct op *ops;
	size_t nops, capops;
	uint64_t stash_seq;
	struct {
		uint64_t writes, write_bytes, fsyncs, fsyncdirs, synced_bytes, discarded_bytes, torn_kept_bytes;
		uint64_t meta_ops, meta_durable, meta_undone, meta_kept_torn, undo_errors, poweroffs;
	} st;
} g;

static struct handle ctl_handle;

static void *xmalloc(size_t n) {
	void *p = malloc(n ? n : 1);
	if (!p) { perror("lossyfs: malloc"); abort(); }
	return p;
}
static void *xrealloc(void *q, size_t n) {
	void *p = realloc(q, n ? n : 1);
	if (!p) { perror("lossyfs: realloc"); abort(); }
	return p;
}

/* "/a/b" -> "a/b" relative to the backing dir; "/" -> "." */
static const char *rel(const char *path) {
	while (*path == '/') path++;
	return *path ? path : ".";
}

static int is_ctl(const char *path) { return path && strcmp(path, "/" CTL_NAME) == 0; }
static int is_stash(const char *path) {
	return path && strncmp(path, "/" STASH_NAME, sizeof(STASH_NAME)) == 0 &&
	       (path[sizeof(STASH_NAME)] == 0 || path[sizeof(STASH_NAME)] == '/');
}

/* Is `dir` the parent directory of `path`? Both absolute within the mount. */
static int parent_is(const char *path, const char *dir) {
	const char *slash = strrchr(path, '/');
	size_t plen = slash ? (size_t)(slash - path) : 0;
	if (plen == 0) return strcmp(dir, "/") == 0;
	return strlen(dir) == plen && strncmp(path, dir, plen) == 0;
}

/* ---------- PRNG for torn power-offs (splitmix64) ---------- */

static uint64_t rng_state;
static uint64_t rnd(void) {
	uint64_t z = (rng_state += 0x9e3779b97f4a7c15ULL);
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return z ^ (z >> 31);
}

/* ---------- nodes and overlays ---------- */

static struct node *node_find(dev_t dev, ino_t ino) {
	for (struct node *n = g.nodes; n; n = n->next)
		if (n->ino == ino && n->dev == dev) return n;
	return NULL;
}

/* Takes ownership of `fd`: reuses an existing node for the same inode (closing fd) or makes one. */
static struct node *node_for_fd(int fd) {
	struct stat s;
	if (fstat(fd, &s) < 0) { close(fd); return NULL; }
	struct node *n = node_find(s.st_dev, s.st_ino);
	if (n) { close(fd); return n; }
	n = xmalloc(sizeof *n);
	memset(n, 0, sizeof *n);
	n->dev = s.st_dev;
	n->ino = s.st_ino;
	n->fd = fd;
	n->size = n->bsize = s.st_size;
	n->zero_from = NO_TRUNC;
	n->next = g.nodes;
	g.nodes = n;
	return n;
}

static int node_dirty(const struct node *n) {
	return n->n > 0 || n->zero_from != NO_TRUNC || n->size != n->bsize;
}

static void node_clear_overlay(struct node *n) {
	for (size_t i = 0; i < n->n; i++) free(n->ext[i].data);
	n->n = 0;
}

static void node_maybe_free(struct node *n) {
	if (n->refs > 0 || node_dirty(n)) return;
	for (struct node **p = &g.nodes; *p; p = &(*p)->next) {
		if (*p == n) { *p = n->next; break; }
	}
	node_clear_overlay(n);
	free(n->ext);
	close(n->fd);
	free(n);
}

static void ext_insert(struct node *n, size_t at, struct ext e) {
	if (n->n == n->cap) {
		n->cap = n->cap ? n->cap * 2 : 8;
		n->ext = xrealloc(n->ext, n->cap * sizeof *n->ext);
	}
	memmove(&n->ext[at + 1], &n->ext[at], (n->n - at) * sizeof *n->ext);
	n->ext[at] = e;
	n->n++;
}

static void ext_remove(struct node *n, size_t at) {
	free(n->ext[at].data);
	memmove(&n->ext[at], &n->ext[at + 1], (n->n - at - 1) * sizeof *n->ext);
	n->n--;
}

/* Cuts [lo, hi) out of every extent (keeping the order of what remains). */
static void overlay_punch(struct node *n, off_t lo, off_t hi) {
	for (size_t i = 0; i < n->n;) {
		struct ext *e = &n->ext[i];
		off_t eo = e->off, ee = e->off + (off_t)e->len;
		if (ee <= lo || eo >= hi) { i++; continue; }
		if (eo >= lo && ee <= hi) { ext_remove(n, i); continue; }
		if (eo < lo && ee > hi) { /* split: [eo, lo) stays here, [hi, ee) follows it */
			struct ext right = { hi, (size_t)(ee - hi), (size_t)(ee - hi), xmalloc((size_t)(ee - hi)) };
			memcpy(right.data, e->data + (hi - eo), right.len);
			e->len = (size_t)(lo - eo);
			ext_insert(n, i + 1, right);
			i += 2;
			continue;
		}
		if (eo < lo) { e->len = (size_t)(lo - eo); i++; continue; }
		/* eo >= lo, ee > hi: drop the head */
		memmove(e->data, e->data + (hi - eo), (size_t)(ee - hi));
		e->len = (size_t)(ee - hi);
		e->off = hi;
		i++;
	}
}

static void overlay_write(struct node *n, const char *buf, size_t len, off_t off) {
	if (len == 0) return;
	overlay_punch(n, off, off + (off_t)len);
	struct ext *last = n->n ? &n->ext[n->n - 1] : NULL;
	if (last && last->off + (off_t)last->len == off) { /* sequential: grow the newest extent */
		if (last->len + len > last->cap) {
			size_t cap = last->cap * 2;
			if (cap < last->len + len) cap = last->len + len;
			last->data = xrealloc(last->data, cap);
			last->cap = cap;
		}
		memcpy(last->data + last->len, buf, len);
		last->len += len;
	} else {
		struct ext e = { off, len, len, xmalloc(len) };
		memcpy(e.data, buf, len);
		ext_insert(n, n->n, e);
	}
	if (off + (off_t)len > n->size) n->size = off + (off_t)len;
}

static void overlay_truncate(struct node *n, off_t size) {
	overlay_punch(n, size, INT64_MAX);
	if (size < n->zero_from) n->zero_from = size;
	n->size = size;
}

static int overlay_read(struct node *n, char *buf, size_t len, off_t off) {
	if (off >= n->size) return 0;
	if ((off_t)len > n->size - off) len = (size_t)(n->size - off);
	off_t visible = n->bsize < n->zero_from ? n->bsize : n->zero_from;
	size_t from_backing = off >= visible ? 0 : (size_t)((visible - off) < (off_t)len ? visible - off : (off_t)len);
	size_t got = 0;
	while (got < from_backing) {
		ssize_t r = pread(n->fd, buf + got, from_backing - got, off + (off_t)got);
		if (r < 0) return -errno;
		if (r == 0) break;
		got += (size_t)r;
	}
	memset(buf + got, 0, len - got);
	for (size_t i = 0; i < n->n; i++) {
		struct ext *e = &n->ext[i];
		off_t lo = e->off > off ? e->off : off;
		off_t hi = e->off + (off_t)e->len < off + (off_t)len ? e->off + (off_t)e->len : off + (off_t)len;
		if (lo < hi) memcpy(buf + (lo - off), e->data + (lo - e->off), (size_t)(hi - lo));
	}
	return (int)len;
}

static int pwrite_all(int fd, const char *buf, size_t len, off_t off) {
	while (len > 0) {
		ssize_t w = pwrite(fd, buf, len, off);
		if (w < 0) { if (errno == EINTR) continue; return -errno; }
		buf += w; len -= (size_t)w; off += w;
	}
	return 0;
}

/* fsync: the overlay reaches the backing file, which is then synced. */
static int node_sync(struct node *n, int datasync) {
	int r;
	if (n->zero_from < n->bsize) {
		if (ftruncate(n->fd, n->zero_from) < 0) return -errno;
		n->bsize = n->zero_from;
	}
	for (size_t i = 0; i < n->n; i++) {
		if ((r = pwrite_all(n->fd, n->ext[i].data, n->ext[i].len, n->ext[i].off)) < 0) return r;
		g.st.synced_bytes += n->ext[i].len;
		if (n->ext[i].off + (off_t)n->ext[i].len > n->bsize) n->bsize = n->ext[i].off + (off_t)n->ext[i].len;
	}
	node_clear_overlay(n);
	if (n->bsize != n->size) {
		if (ftruncate(n->fd, n->size) < 0) return -errno;
		n->bsize = n->size;
	}
	n->zero_from = NO_TRUNC;
	if ((datasync ? fdatasync(n->fd) : fsync(n->fd)) < 0) return -errno;
	return 0;
}

/* ---------- metadata journal ---------- */

static char *stash_name(void) {
	char buf[64];
	snprintf(buf, sizeof buf, "%" PRIu64, ++g.stash_seq);
	return strdup(buf);
}

static void journal(enum op_kind kind, const char *a, const char *b, char *stash) {
	if (g.nops == g.capops) {
		g.capops = g.capops ? g.capops * 2 : 32;
		g.ops = xrealloc(g.ops, g.capops * sizeof *g.ops);
	}
	g.ops[g.nops++] = (struct op){ kind, strdup(a), b ? strdup(b) : NULL, stash, 0 };
	g.st.meta_ops++;
}

static int rm_entry(const char *path, const struct stat *s, int type, struct FTW *f) {
	(void)s; (void)type; (void)f;
	remove(path);
	return 0;
}

/* Deletes a stashed file or directory tree for good. */
static void stash_delete(const char *name) {
	char path[PATH_MAX];
	snprintf(path, sizeof path, "%s/" STASH_NAME "/%s", g.backing, name);
	nftw(path, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

static void op_free(struct op *o) {
	free(o->a); free(o->b); free(o->stash);
}

/* Drops durable entries: what they removed is gone for good. */
static void journal_compact(void) {
	size_t w = 0;
	for (size_t i = 0; i < g.nops; i++) {
		struct op *o = &g.ops[i];
		if (o->durable) {
			if (o->stash) stash_delete(o->stash);
			op_free(o);
			g.st.meta_durable++;
		} else {
			g.ops[w++] = *o;
		}
	}
	g.nops = w;
}

static void undo(struct op *o) {
	int r = 0;
	switch (o->kind) {
	case OP_CREATE:
		r = unlinkat(g.bfd, rel(o->a), 0);
		break;
	case OP_MKDIR: {
		/* The directory never became durable: it vanishes with whatever is in it. */
		char *s = stash_name();
		r = renameat(g.bfd, rel(o->a), g.sfd, s);
		if (r == 0) stash_delete(s);
		free(s);
		break;
	}
	case OP_UNLINK:
	case OP_RMDIR:
		r = renameat(g.sfd, o->stash, g.bfd, rel(o->a));
		break;
	case OP_RENAME:
		r = renameat(g.bfd, rel(o->b), g.bfd, rel(o->a));
		if (r == 0 && o->stash) r = renameat(g.sfd, o->stash, g.bfd, rel(o->b));
		break;
	}
	if (r < 0) {
		g.st.undo_errors++;
		fprintf(stderr, "lossyfs: cannot undo op %d on %s: %s\n", (int)o->kind, o->a, strerror(errno));
	} else {
		g.st.meta_undone++;
	}
}

/* ---------- power off ---------- */

/* Writes the sector-sized pieces chosen by `keep` of every overlay to the backing files. */
static void persist_pieces(int mode /* 1 prefix, 2 subset */) {
	for (struct node *n = g.nodes; n; n = n->next) {
		uint64_t pieces = 0;
		for (size_t i = 0; i < n->n; i++) {
			off_t lo = n->ext[i].off, hi = lo + (off_t)n->ext[i].len;
			pieces += (uint64_t)((hi - 1) / SECTOR - lo / SECTOR + 1);
		}
		if (pieces == 0) continue;
		uint64_t cut = mode == 1 ? rnd() % (pieces + 1) : pieces;
		uint64_t k = 0;
		for (size_t i = 0; i < n->n && k < cut; i++) {
			struct ext *e = &n->ext[i];
			off_t hi = e->off + (off_t)e->len;
			for (off_t lo = e->off; lo < hi && k < cut; k++) {
				off_t next = (lo / SECTOR + 1) * SECTOR;
				if (next > hi) next = hi;
				if (mode == 1 || (rnd() & 1)) {
					if (pwrite_all(n->fd, e->data + (lo - e->off), (size_t)(next - lo), lo) == 0)
						g.st.torn_kept_bytes += (uint64_t)(next - lo);
				}
				lo = next;
			}
		}
	}
}

static void power_off(int mode, uint64_t seed) {
	rng_state = seed;
	uint64_t unsynced = 0, kept_before = g.st.torn_kept_bytes;
	for (struct node *n = g.nodes; n; n = n->next)
		for (size_t i = 0; i < n->n; i++) unsynced += n->ext[i].len;
	if (mode != 0) persist_pieces(mode);
	for (struct node *n = g.nodes; n; n = n->next) {
		node_clear_overlay(n);
		n->zero_from = NO_TRUNC;
		n->size = n->bsize;
	}
	g.st.discarded_bytes += unsynced - (g.st.torn_kept_bytes - kept_before);
	/* Metadata: an ordered journal; a torn power-off keeps a random prefix of the pending ops. */
	size_t pending = 0;
	for (size_t i = 0; i < g.nops; i++) pending += !g.ops[i].durable;
	size_t keep = mode == 0 ? 0 : (size_t)(rnd() % (pending + 1));
	size_t seen = 0;
	for (size_t i = 0; i < g.nops; i++) {
		if (g.ops[i].durable) continue;
		if (seen++ < keep) { g.ops[i].durable = 1; g.st.meta_kept_torn++; }
	}
	for (size_t i = g.nops; i-- > 0;) {
		if (g.ops[i].durable) continue;
		undo(&g.ops[i]);
		op_free(&g.ops[i]); /* its stash entry was restored */
		g.ops[i].a = g.ops[i].b = g.ops[i].stash = NULL;
	}
	size_t w = 0;
	for (size_t i = 0; i < g.nops; i++)
		if (g.ops[i].a) g.ops[w++] = g.ops[i];
	g.nops = w;
	journal_compact();
	g.powered_off = 1;
	g.st.poweroffs++;
	fprintf(stderr, "lossyfs: power off (%s, seed %" PRIu64 ")\n", mode == 0 ? "drop" : mode == 1 ? "prefix" : "subset", seed);
}

enum { EV_NONE, EV_WRITE, EV_FSYNC, EV_FSYNCDIR };

/* Counts an armed event; at the chosen one, the power goes off. Returns whether it did. */
static int armed_hit(int event) {
	if (g.arm.event != event || --g.arm.left > 0) return 0;
	g.arm.event = EV_NONE;
	power_off(g.arm.mode, g.arm.seed);
	return 1;
}

static void sync_everything(void) {
	for (struct node *n = g.nodes; n; n = n->next) node_sync(n, 0);
	for (size_t i = 0; i < g.nops; i++) g.ops[i].durable = 1;
	journal_compact();
	fsync(g.bfd);
}

static int stats_text(char *buf, size_t cap) {
	return snprintf(buf, cap,
		"powered_off %d\narmed %d\nwrites %" PRIu64 "\nwrite_bytes %" PRIu64 "\nfsyncs %" PRIu64 "\nfsyncdirs %" PRIu64
		"\nsynced_bytes %" PRIu64 "\ndiscarded_bytes %" PRIu64 "\ntorn_kept_bytes %" PRIu64 "\nmeta_ops %" PRIu64
		"\nmeta_durable %" PRIu64 "\nmeta_undone %" PRIu64 "\nmeta_kept_torn %" PRIu64 "\nundo_errors %" PRIu64
		"\npoweroffs %" PRIu64 "\n",
		g.powered_off, g.arm.event != EV_NONE, g.st.writes, g.st.write_bytes, g.st.fsyncs, g.st.fsyncdirs, g.st.synced_bytes,
		g.st.discarded_bytes, g.st.torn_kept_bytes, g.st.meta_ops, g.st.meta_durable, g.st.meta_undone,
		g.st.meta_kept_torn, g.st.undo_errors, g.st.poweroffs);
}

static int ctl_command(const char *buf, size_t len) {
	char cmd[128];
	if (len >= sizeof cmd) return -EINVAL;
	memcpy(cmd, buf, len);
	cmd[len] = 0;
	char word[32] = "", mode[32] = "";
	unsigned long long seed = 0;
	int n = sscanf(cmd, "%31s %31s %llu", word, mode, &seed);
	if (n >= 1 && strcmp(word, "poweroff") == 0) {
		if (g.powered_off) return -EIO;
		if (n == 1) power_off(0, 0);
		else if (n == 3 && strcmp(mode, "prefix") == 0) power_off(1, seed);
		else if (n == 3 && strcmp(mode, "subset") == 0) power_off(2, seed);
		else return -EINVAL;
		return 0;
	}
	if (n >= 1 && strcmp(word, "arm") == 0) {
		char event[32] = "", how[32] = "";
		unsigned long long count = 0, aseed = 0;
		int m = sscanf(cmd, "%*s %31s %llu %31s %llu", event, &count, how, &aseed);
		if (g.powered_off) return -EIO;
		if (m < 3 || count == 0) return -EINVAL;
		g.arm.event = strcmp(event, "write") == 0 ? EV_WRITE : strcmp(event, "fsync") == 0 ? EV_FSYNC
			    : strcmp(event, "fsyncdir") == 0 ? EV_FSYNCDIR : EV_NONE;
		g.arm.mode = strcmp(how, "drop") == 0 ? 0 : strcmp(how, "prefix") == 0 ? 1 : strcmp(how, "subset") == 0 ? 2 : -1;
		if (g.arm.event == EV_NONE || g.arm.mode < 0) { g.arm.event = EV_NONE; return -EINVAL; }
		g.arm.left = count;
		g.arm.seed = aseed;
		return 0;
	}
	if (n == 1 && strcmp(word, "sync") == 0) {
		if (g.powered_off) return -EIO;
		sync_everything();
		return 0;
	}
	return -EINVAL;
}

/* ---------- FUSE operations ---------- */

#define GUARD() do { if (g.powered_off) return -EIO; } while (0)
#define HIDDEN(p) do { if (is_stash(p)) return -ENOENT; } while (0)

static void *lf_init(struct fuse_conn_info *conn, struct fuse_config *cfg) {
	conn->want &= ~(unsigned)(FUSE_CAP_WRITEBACK_CACHE | FUSE_CAP_AUTO_INVAL_DATA);
	cfg->attr_timeout = 0;
	cfg->entry_timeout = 0;
	cfg->negative_timeout = 0;
	cfg->hard_remove = 1;
	cfg->nullpath_ok = 1;
	cfg->kernel_cache = 0;
	cfg->auto_cache = 0;
	cfg->direct_io = g.direct_io;
	fprintf(stderr, "lossyfs: mounted\n");
	return NULL;
}

static void lf_destroy(void *data) {
	(void)data;
	if (!g.powered_off) sync_everything();
	char buf[1024];
	stats_text(buf, sizeof buf);
	fprintf(stderr, "lossyfs: unmounted\n%s", buf);
	while (g.nodes) { g.nodes->refs = 0; node_clear_overlay(g.nodes); g.nodes->size = g.nodes->bsize; g.nodes->zero_from = NO_TRUNC; node_maybe_free(g.nodes); }
	unlinkat(g.bfd, STASH_NAME, AT_REMOVEDIR); /* only if empty */
}

static int lf_getattr(const char *path, struct stat *s, struct fuse_file_info *fi) {
	if (is_ctl(path)) {
		memset(s, 0, sizeof *s);
		s->st_mode = S_IFREG | 0666;
		s->st_nlink = 1;
		return 0;
	}
	if (g.powered_off && !(path && strcmp(path, "/") == 0)) return -EIO;
	HIDDEN(path);
	struct handle *h = fi ? (struct handle *)(uintptr_t)fi->fh : NULL;
	if (!h && !path) return -EIO;
	int r = h && h != &ctl_handle ? fstat(h->node->fd, s) : fstatat(g.bfd, rel(path), s, AT_SYMLINK_NOFOLLOW);
	if (r < 0) return -errno;
	struct node *n = node_find(s->st_dev, s->st_ino);
	if (n) s->st_size = n->size;
	return 0;
}

static int lf_access(const char *path, int mask) {
	if (is_ctl(path)) return 0;
	GUARD();
	HIDDEN(path);
	return faccessat(g.bfd, rel(path), mask, 0) < 0 ? -errno : 0;
}

/* With nullpath_ok, directory operations may come without a path: keep it in the handle. */
static int lf_opendir(const char *path, struct fuse_file_info *fi) {
	GUARD();
	HIDDEN(path);
	if (!path) return -EIO;
	struct stat s;
	if (fstatat(g.bfd, rel(path), &s, AT_SYMLINK_NOFOLLOW) < 0) return -errno;
	if (!S_ISDIR(s.st_mode)) return -ENOTDIR;
	fi->fh = (uint64_t)(uintptr_t)strdup(path);
	return 0;
}

static int lf_releasedir(const char *path, struct fuse_file_info *fi) {
	(void)path;
	free((char *)(uintptr_t)fi->fh);
	return 0;
}

static const char *dir_path(const char *path, struct fuse_file_info *fi) {
	return path ? path : fi && fi->fh ? (const char *)(uintptr_t)fi->fh : NULL;
}

static int lf_readdir(const char *path, void *buf, fuse_fill_dir_t fill, off_t off, struct fuse_file_info *fi,
		      enum fuse_readdir_flags flags) {
	(void)off; (void)flags;
	GUARD();
	path = dir_path(path, fi);
	if (!path) return -EIO;
	HIDDEN(path);
	int fd = openat(g.bfd, rel(path), O_RDONLY | O_DIRECTORY);
	if (fd < 0) return -errno;
	DIR *d = fdopendir(fd);
	if (!d) { close(fd); return -errno; }
	int root = strcmp(path, "/") == 0;
	struct dirent *e;
	while ((e = readdir(d)) != NULL) {
		if (root && strcmp(e->d_name, STASH_NAME) == 0) continue;
		struct stat s;
		memset(&s, 0, sizeof s);
		s.st_ino = e->d_ino;
		s.st_mode = (mode_t)DTTOIF(e->d_type);
		if (fill(buf, e->d_name, &s, 0, 0)) break;
	}
	closedir(d);
	if (root) fill(buf, CTL_NAME, NULL, 0, 0);
	return 0;
}

static int lf_mkdir(const char *path, mode_t mode) {
	GUARD();
	HIDDEN(path);
	if (is_ctl(path)) return -EEXIST;
	if (mkdirat(g.bfd, rel(path), mode) < 0) return -errno;
	journal(OP_MKDIR, path, NULL, NULL);
	return 0;
}

static int lf_unlink(const char *path) {
	GUARD();
	HIDDEN(path);
	if (is_ctl(path)) return -EPERM;
	struct stat s;
	if (fstatat(g.bfd, rel(path), &s, AT_SYMLINK_NOFOLLOW) < 0) return -errno;
	if (S_ISDIR(s.st_mode)) return -EISDIR;
	char *stash = stash_name();
	if (renameat(g.bfd, rel(path), g.sfd, stash) < 0) { int e = errno; free(stash); return -e; }
	journal(OP_UNLINK, path, NULL, stash);
	return 0;
}

static int lf_rmdir(const char *path) {
	GUARD();
	HIDDEN(path);
	int fd = openat(g.bfd, rel(path), O_RDONLY | O_DIRECTORY);
	if (fd < 0) return -errno;
	DIR *d = fdopendir(fd);
	if (!d) { close(fd); return -errno; }
	int empty = 1;
	struct dirent *e;
	while ((e = readdir(d)) != NULL)
		if (strcmp(e->d_name, ".") && strcmp(e->d_name, "..")) { empty = 0; break; }
	closedir(d);
	if (!empty) return -ENOTEMPTY;
	char *stash = stash_name();
	if (renameat(g.bfd, rel(path), g.sfd, stash) < 0) { int er = errno; free(stash); return -er; }
	journal(OP_RMDIR, path, NULL, stash);
	return 0;
}

static int lf_rename(const char *from, const char *to, unsigned int flags) {
	GUARD();
	HIDDEN(from);
	HIDDEN(to);
	if (is_ctl(from) || is_ctl(to)) return -EPERM;
	if (flags & ~(unsigned)RENAME_NOREPLACE) return -EINVAL; /* RENAME_EXCHANGE, WHITEOUT: not modelled */
	struct stat sf, stt;
	if (fstatat(g.bfd, rel(from), &sf, AT_SYMLINK_NOFOLLOW) < 0) return -errno;
	char *stash = NULL;
	if (fstatat(g.bfd, rel(to), &stt, AT_SYMLINK_NOFOLLOW) == 0) {
		if (flags & RENAME_NOREPLACE) return -EEXIST;
		if (sf.st_dev == stt.st_dev && sf.st_ino == stt.st_ino) return 0;
		if (S_ISDIR(stt.st_mode) && !S_ISDIR(sf.st_mode)) return -EISDIR;
		if (!S_ISDIR(stt.st_mode) && S_ISDIR(sf.st_mode)) return -ENOTDIR;
		if (S_ISDIR(stt.st_mode)) {
			int r = lf_rmdir(to); /* journals the replaced directory's removal itself */
			if (r < 0) return r;
		} else {
			stash = stash_name();
			if (renameat(g.bfd, rel(to), g.sfd, stash) < 0) { int e = errno; free(stash); return -e; }
		}
	}
	if (renameat(g.bfd, rel(from), g.bfd, rel(to)) < 0) {
		int e = errno;
		if (stash) { renameat(g.sfd, stash, g.bfd, rel(to)); free(stash); }
		return -e;
	}
	journal(OP_RENAME, from, to, stash);
	return 0;
}

static int lf_chmod(const char *path, mode_t mode, struct fuse_file_info *fi) {
	(void)fi;
	GUARD();
	HIDDEN(path);
	if (!path) return -ENOSYS;
	return fchmodat(g.bfd, rel(path), mode, 0) < 0 ? -errno : 0;
}

static int lf_chown(const char *path, uid_t uid, gid_t gid, struct fuse_file_info *fi) {
	(void)fi;
	GUARD();
	HIDDEN(path);
	if (!path) return -ENOSYS;
	return fchownat(g.bfd, rel(path), uid, gid, AT_SYMLINK_NOFOLLOW) < 0 ? -errno : 0;
}

static int lf_utimens(const char *path, const struct timespec tv[2], struct fuse_file_info *fi) {
	GUARD();
	HIDDEN(path);
	struct handle *h = fi ? (struct handle *)(uintptr_t)fi->fh : NULL;
	if (h == &ctl_handle || is_ctl(path)) return 0;
	if (!h && !path) return -EIO;
	int r = h ? futimens(h->node->fd, tv) : utimensat(g.bfd, rel(path), tv, AT_SYMLINK_NOFOLLOW);
	return r < 0 ? -errno : 0;
}

static struct handle *handle_new(struct node *n, int flags) {
	struct handle *h = xmalloc(sizeof *h);
	h->node = n;
	h->flags = flags;
	n->refs++;
	return h;
}

/* Opens the backing file read-write whatever the caller asked (the node's one descriptor serves every handle). */
static int backing_open(const char *path, int extra, mode_t mode) {
	int fd = openat(g.bfd, rel(path), O_RDWR | O_CLOEXEC | extra, mode);
	if (fd < 0 && (errno == EACCES || errno == EISDIR || errno == EROFS)) fd = openat(g.bfd, rel(path), O_RDONLY | O_CLOEXEC | extra, mode);
	return fd;
}

static int lf_open(const char *path, struct fuse_file_info *fi) {
	if (is_ctl(path)) {
		fi->fh = (uint64_t)(uintptr_t)&ctl_handle;
		fi->direct_io = 1;
		return 0;
	}
	GUARD();
	HIDDEN(path);
	int fd = backing_open(path, 0, 0);
	if (fd < 0) return -errno;
	struct node *n = node_for_fd(fd);
	if (!n) return -EIO;
	if (fi->flags & O_TRUNC) overlay_truncate(n, 0);
	fi->fh = (uint64_t)(uintptr_t)handle_new(n, fi->flags);
	if (g.direct_io) fi->direct_io = 1;
	return 0;
}

static int lf_create(const char *path, mode_t mode, struct fuse_file_info *fi) {
	GUARD();
	HIDDEN(path);
	if (is_ctl(path)) return lf_open(path, fi);
	struct stat s;
	int existed = fstatat(g.bfd, rel(path), &s, AT_SYMLINK_NOFOLLOW) == 0;
	if (existed && (fi->flags & O_EXCL)) return -EEXIST;
	int fd = backing_open(path, O_CREAT, mode);
	if (fd < 0) return -errno;
	struct node *n = node_for_fd(fd);
	if (!n) return -EIO;
	if (!existed) journal(OP_CREATE, path, NULL, NULL);
	else if (fi->flags & O_TRUNC) overlay_truncate(n, 0);
	fi->fh = (uint64_t)(uintptr_t)handle_new(n, fi->flags);
	if (g.direct_io) fi->direct_io = 1;
	return 0;
}

static int lf_read(const char *path, char *buf, size_t size, off_t off, struct fuse_file_info *fi) {
	(void)path;
	struct handle *h = (struct handle *)(uintptr_t)fi->fh;
	if (h == &ctl_handle) {
		char text[1024];
		int len = stats_text(text, sizeof text);
		if (off >= len) return 0;
		size_t n = (size_t)(len - off) < size ? (size_t)(len - off) : size;
		memcpy(buf, text + off, n);
		return (int)n;
	}
	GUARD();
	return overlay_read(h->node, buf, size, off);
}

static int lf_write(const char *path, const char *buf, size_t size, off_t off, struct fuse_file_info *fi) {
	(void)path;
	struct handle *h = (struct handle *)(uintptr_t)fi->fh;
	if (h == &ctl_handle) {
		int r = ctl_command(buf, size);
		return r < 0 ? r : (int)size;
	}
	GUARD();
	overlay_write(h->node, buf, size, off);
	g.st.writes++;
	g.st.write_bytes += size;
	if (armed_hit(EV_WRITE)) return -EIO;
	/* O_SYNC/O_DSYNC: the kernel follows the write with an fsync anyway; be explicit. */
	if (h->flags & (O_SYNC | O_DSYNC)) {
		int r = node_sync(h->node, (h->flags & O_SYNC) != O_SYNC);
		if (r < 0) return r;
	}
	return (int)size;
}

static int lf_truncate(const char *path, off_t size, struct fuse_file_info *fi) {
	struct handle *h = fi ? (struct handle *)(uintptr_t)fi->fh : NULL;
	if (h == &ctl_handle || is_ctl(path)) return 0;
	GUARD();
	HIDDEN(path);
	struct node *n;
	if (h) {
		n = h->node;
	} else {
		if (!path) return -EIO;
		int fd = backing_open(path, 0, 0);
		if (fd < 0) return -errno;
		if (!(n = node_for_fd(fd))) return -EIO;
	}
	overlay_truncate(n, size);
	if (!h) node_maybe_free(n);
	return 0;
}

static int lf_fsync(const char *path, int datasync, struct fuse_file_info *fi) {
	(void)path;
	struct handle *h = (struct handle *)(uintptr_t)fi->fh;
	if (h == &ctl_handle) return 0;
	GUARD();
	/* Only an fsync with something to flush counts (not the kernel's fsync after an O_DSYNC write). */
	if (node_dirty(h->node) && armed_hit(EV_FSYNC)) return -EIO;
	g.st.fsyncs++;
	return node_sync(h->node, datasync);
}

static int lf_release(const char *path, struct fuse_file_info *fi) {
	(void)path;
	struct handle *h = (struct handle *)(uintptr_t)fi->fh;
	if (h == &ctl_handle) return 0;
	struct node *n = h->node;
	n->refs--;
	free(h);
	/* Closing never syncs: unsynced data stays in the node (and its descriptor stays open). */
	node_maybe_free(n);
	return 0;
}

static int lf_fsyncdir(const char *path, int datasync, struct fuse_file_info *fi) {
	(void)datasync;
	GUARD();
	path = dir_path(path, fi);
	if (!path) return -EIO;
	if (armed_hit(EV_FSYNCDIR)) return -EIO;
	g.st.fsyncdirs++;
	for (size_t i = 0; i < g.nops; i++) {
		struct op *o = &g.ops[i];
		if (parent_is(o->a, path) || (o->b && parent_is(o->b, path))) o->durable = 1;
	}
	journal_compact();
	int fd = openat(g.bfd, rel(path), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0) return -errno;
	int r = fsync(fd) < 0 ? -errno : 0;
	close(fd);
	return r;
}

static int lf_statfs(const char *path, struct statvfs *s) {
	(void)path;
	GUARD();
	return fstatvfs(g.bfd, s) < 0 ? -errno : 0;
}

static const struct fuse_operations ops = {
	.init = lf_init,
	.destroy = lf_destroy,
	.getattr = lf_getattr,
	.access = lf_access,
	.opendir = lf_opendir,
	.readdir = lf_readdir,
	.releasedir = lf_releasedir,
	.mkdir = lf_mkdir,
	.unlink = lf_unlink,
	.rmdir = lf_rmdir,
	.rename = lf_rename,
	.chmod = lf_chmod,
	.chown = lf_chown,
	.utimens = lf_utimens,
	.open = lf_open,
	.create = lf_create,
	.read = lf_read,
	.write = lf_write,
	.truncate = lf_truncate,
	.fsync = lf_fsync,
	.release = lf_release,
	.fsyncdir = lf_fsyncdir,
	.statfs = lf_statfs,
};

int main(int argc, char *argv[]) {
	/* Dies with whoever started it (fuse_main unmounts on SIGTERM): a killed test leaves no mount behind. */
	prctl(PR_SET_PDEATHSIG, SIGTERM);
	if (getppid() == 1) return 2;
	int i = 1;
	if (i < argc && strcmp(argv[i], "--direct-io") == 0) { g.direct_io = 1; i++; }
	if (argc - i < 2) {
		fprintf(stderr, "usage: %s [--direct-io] BACKING_DIR MOUNTPOINT [fuse options...]\n", argv[0]);
		return 2;
	}
	g.backing = realpath(argv[i], NULL);
	if (!g.backing || (g.bfd = open(g.backing, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) < 0) {
		fprintf(stderr, "lossyfs: backing dir %s: %s\n", argv[i], strerror(errno));
		return 2;
	}
	if (mkdirat(g.bfd, STASH_NAME, 0700) < 0 && errno != EEXIST) { perror("lossyfs: stash"); return 2; }
	if ((g.sfd = openat(g.bfd, STASH_NAME, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) < 0) { perror("lossyfs: stash"); return 2; }
	char **fargv = xmalloc(sizeof(char *) * (size_t)(argc + 8));
	int fargc = 0;
	fargv[fargc++] = argv[0];
	fargv[fargc++] = argv[i + 1];
	fargv[fargc++] = "-f";
	fargv[fargc++] = "-s";
	fargv[fargc++] = "-o";
	fargv[fargc++] = "fsname=lossyfs,subtype=lossyfs,auto_unmount";
	for (int j = i + 2; j < argc; j++) fargv[fargc++] = argv[j];
	fargv[fargc] = NULL;
	return fuse_main(fargc, fargv, &ops, NULL);
}
