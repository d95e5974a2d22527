/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Fault injection on a real btrfs: every ioctl and syscall step of create,
 * remove, set_quota, clear_quota and set_read_only fails in turn, and after
 * each failure the home must hold no partial state.
 *
 * For each scenario a dry run counts the calls of each fault point (wrap.h)
 * the operation makes.  Then, for each point f and each k up to its count,
 * a fresh home is brought to the scenario's start state, call k of f fails
 * (EIO), and the outcome is judged twice: right after the call, and after
 * the handle is closed and the home opened again (open's recovery sweep).
 *
 *   create   fails: nothing of it anywhere (no layer, no reserved name, no
 *            quota file, no subvolume, no qgroup of a deleted subvolume
 *            without its marker); returns 0: the layer is complete.
 *   remove   fails: the layer is whole (limit, quota file, read-only flag,
 *            nested subvolumes) or gone; returns 0: gone.  Tombstones and
 *            markers may stay until the next open, which must sweep them.
 *   set/clear_quota: the kernel's limit and the quota file agree, both old
 *            or both new.
 *   set_read_only (seal): the layer and every subvolume nested in it all
 *            read-only, or each with its old flag; in pass 2, a failed undo
 *            may leave part of it flipped (a warning: the undo is best
 *            effort, and the call failed).
 * A reserved name in quotas/ that announces nothing (an intent whose
 * unlink failed, stripped of its attribute), or a stand-in of a reserved
 * subvolume that is gone, may stay until the next open;
 * in pass 2, so may a layer's record held by its removal's intent.
 * Every other layer stays as it was; after close (which cleans up the
 * handle's own reserved names) and the next open, the contract's invariants
 * hold and status() counts no more than what was left.
 *
 * Pass 2 fails, besides a first call that made the operation fail (and left
 * no partial state), each call made after it: the recovery from the first
 * failure fails too.  Then what the next open sweeps (.tmp-*, .tomb-*, a
 * quota file of no layer, a limit that is not the one on record) may stay
 * until that open, which must leave the home as pass 1 demands.
 * FAULT_SECOND=0 skips pass 2.
 *
 * At the end of each quota mode every layer is removed and the filesystem
 * synced: no qgroup and no marker may remain.  A layer whose nested
 * subvolume lost its read-only flag, or a marker naming a live subvolume, is
 * a warning (WARN), not a failure: the contract does not promise them.
 *
 * FAULT_TRACE=1 prints the call sequence of each dry run.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/xattr.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include <btrfsutil.h>
#include <linux/btrfs.h>
#include <linux/btrfs_tree.h>

#include "btrfslayer.h"
#include "fault_declared.h"
#include "harness.h"
#include "wrap.h"

#define MiB (UINT64_C(1) << 20)
#define HOME_MAX 128
#define DATA_SIZE (256 * 1024)
#define MAX_LAYERS 8
#define ITERATION_TIMEOUT 60	/* seconds; a hang is a failure too */

/* ---- small helpers ----------------------------------------------------------- */

/* A bounded text buffer for findings. */
struct sb {
	char buf[4096];
	size_t len;
};

static void sb_add(struct sb *sb, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void sb_add(struct sb *sb, const char *fmt, ...)
{
	va_list ap;
	if (sb->len >= sizeof(sb->buf) - 1)
		return;
	va_start(ap, fmt);
	int n = vsnprintf(sb->buf + sb->len, sizeof(sb->buf) - sb->len, fmt, ap);
	va_end(ap);
	if (n > 0)
		sb->len = sb->len + (size_t)n < sizeof(sb->buf) ? sb->len + (size_t)n
								 : sizeof(sb->buf) - 1;
}

/* The quota mode of the group running: "qgroup" or "simple". */
static const char *current_mode;
static const char *mode_name(void)
{
	return current_mode;
}

/* The library's log of the current iteration, shown with a finding. */
static struct sb lib_log;

static void log_fn(int level, const char *message, void *userdata)
{
	(void)userdata;
	sb_add(&lib_log, "    log %d: %s\n", level, message);
}

/* reallocarray() that fails the test instead of returning NULL. */
static void *grow(void *p, size_t n, size_t size)
{
	void *q = reallocarray(p, n, size);
	if (!q) {
		free(p);
		fail_msg("out of memory");
	}
	return q;
}

static void run_or_fail(const char *const argv[])
{
	if (harness_run(argv) != 0)
		fail_msg("%s %s %s failed", argv[0], argv[1], argv[2]);
}

/* ---- what is on the filesystem ---------------------------------------------- */

/* One search of the tree search ioctl: the items of `tree` with keys
 * (objectid, type, offset) in the given ranges; calls fn(offset, objectid)
 * for each.  Returns -errno (ENOENT: no such tree). */
static int tree_items(uint64_t tree, uint64_t min_obj, uint64_t max_obj, uint8_t type,
		      void (*fn)(uint64_t objectid, uint64_t offset, void *arg), void *arg)
{
	struct btrfs_ioctl_search_args args;
	int fd = open(harness_btrfs(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	int r = 0;
	if (fd < 0)
		return -errno;
	memset(&args, 0, sizeof(args));
	args.key.tree_id = tree;
	args.key.min_objectid = min_obj;
	args.key.max_objectid = max_obj;
	args.key.min_type = args.key.max_type = type;
	args.key.max_offset = UINT64_MAX;
	args.key.max_transid = UINT64_MAX;
	for (;;) {
		args.key.nr_items = 4096;
		if (ioctl(fd, BTRFS_IOC_TREE_SEARCH, &args) < 0) {
			r = -errno;
			break;
		}
		if (args.key.nr_items == 0)
			break;
		size_t off = 0;
		struct btrfs_ioctl_search_header sh;
		for (unsigned i = 0; i < args.key.nr_items; i++) {
			memcpy(&sh, args.buf + off, sizeof(sh));
			off += sizeof(sh) + sh.len;
			if (sh.type == type)
				fn(sh.objectid, sh.offset, arg);
		}
		/* go on after the last key */
		args.key.min_objectid = sh.objectid;
		args.key.min_type = sh.type;
		args.key.min_offset = sh.offset + 1;
		if (sh.offset == UINT64_MAX || sh.type > type)
			break;
	}
	close(fd);
	return r;
}

struct idset {
	uint64_t *ids;
	size_t n, cap;
};

static void idset_add(struct idset *s, uint64_t id)
{
	if (s->n == s->cap) {
		s->cap = s->cap ? 2 * s->cap : 16;
		s->ids = grow(s->ids, s->cap, sizeof(*s->ids));
	}
	s->ids[s->n++] = id;
}

static bool idset_has(const struct idset *s, uint64_t id)
{
	for (size_t i = 0; i < s->n; i++)
		if (s->ids[i] == id)
			return true;
	return false;
}

static void idset_free(struct idset *s)
{
	free(s->ids);
	*s = (struct idset){ 0 };
}

static void add_level0(uint64_t objectid, uint64_t qgroupid, void *arg)
{
	(void)objectid;
	if ((qgroupid >> 48) == 0)
		idset_add(arg, qgroupid);
}

/* Level-0 qgroups of the filesystem (none when quotas are off). */
static struct idset qgroups(void)
{
	struct idset s = { 0 };
	int r = tree_items(BTRFS_QUOTA_TREE_OBJECTID, 0, 0, BTRFS_QGROUP_INFO_KEY, add_level0, &s);
	if (r < 0 && r != -ENOENT)
		fail_msg("search quota tree: %s", strerror(-r));
	return s;
}

static void count_item(uint64_t objectid, uint64_t offset, void *arg)
{
	(void)objectid;
	(void)offset;
	++*(unsigned *)arg;
}

/* Whether subvolume `id` still has a root item (a deleted one keeps it
 * until the kernel's cleaner has dropped it). */
static bool root_item_exists(uint64_t id)
{
	unsigned n = 0;
	int r = tree_items(BTRFS_ROOT_TREE_OBJECTID, id, id, BTRFS_ROOT_ITEM_KEY, count_item, &n);
	if (r < 0)
		fail_msg("search root tree: %s", strerror(-r));
	return n > 0;
}

/* A live subvolume: reachable from the top of the filesystem. */
struct subvol {
	uint64_t id;
	bool ro;
	char *path;	/* relative to the home, or to the top when no home */
};

struct view {
	struct subvol *v;
	size_t n;
};

/* Live subvolumes whose path starts with "<rel>/" (rel NULL: all). */
static struct view view_of(const char *rel)
{
	struct btrfs_util_subvolume_iterator *it;
	struct view v = { 0 };
	size_t cap = 0, rel_len = rel ? strlen(rel) : 0;
	enum btrfs_util_error e = btrfs_util_create_subvolume_iterator(
		harness_btrfs(), BTRFS_FS_TREE_OBJECTID, 0, &it);
	if (e)
		fail_msg("list subvolumes: %s", btrfs_util_strerror(e));
	for (;;) {
		struct btrfs_util_subvolume_info info;
		char *path;
		e = btrfs_util_subvolume_iterator_next_info(it, &path, &info);
		if (e == BTRFS_UTIL_ERROR_STOP_ITERATION)
			break;
		if (e)
			fail_msg("list subvolumes: %s", btrfs_util_strerror(e));
		if (rel && (strncmp(path, rel, rel_len) || path[rel_len] != '/')) {
			free(path);
			continue;
		}
		if (v.n == cap) {
			cap = cap ? 2 * cap : 16;
			v.v = grow(v.v, cap, sizeof(*v.v));
		}
		v.v[v.n++] = (struct subvol){
			.id = info.id,
			.ro = info.flags & BTRFS_ROOT_SUBVOL_RDONLY,
			.path = strdup(path + (rel ? rel_len + 1 : 0)),
		};
		free(path);
	}
	btrfs_util_destroy_subvolume_iterator(it);
	return v;
}

static void view_free(struct view *v)
{
	for (size_t i = 0; i < v->n; i++)
		free(v->v[i].path);
	free(v->v);
	*v = (struct view){ 0 };
}

static const struct subvol *view_find(const struct view *v, uint64_t id)
{
	for (size_t i = 0; i < v->n; i++)
		if (v->v[i].id == id)
			return &v->v[i];
	return NULL;
}

/* Whether `path` is "subvolumes/<id>" or inside it. */
static bool in_layer(const char *path, const char *id)
{
	char top[300];
	int n = snprintf(top, sizeof(top), "subvolumes/%s", id);
	return !strncmp(path, top, (size_t)n) && (path[n] == '\0' || path[n] == '/');
}

static bool strict_inside(const char *path, const char *id)
{
	return in_layer(path, id) && strchr(path + strlen("subvolumes/") + strlen(id), '/');
}

/* ---- a home and its layers ------------------------------------------------- */

struct layer_state {
	int exists;		/* btrfslayer_exists() */
	int file;		/* quotas/<id>: 1 a size, 0 none, -1 garbage */
	uint64_t file_size;
	int usage;		/* btrfslayer_get_usage()'s return */
	uint64_t limit, recorded;
	bool ro;
};

struct layer {
	char id[32];
	struct layer_state st;
};

struct ctx {
	const struct scenario *s;
	char home[HOME_MAX];
	const char *rel;	/* home relative to the top of the filesystem */
	btrfslayer *h;
	/* the start state, taken just before the operation */
	struct view before;
	struct idset qgroups_before;
	struct layer layers[MAX_LAYERS];
	size_t n_layers;
	/* every subvolume id the iteration saw, to blame leaks on it */
	struct idset seen;
	/* a second fault hit the recovery from the first: what the next open
	 * sweeps may stay until then */
	bool relaxed;
};

static void open_home(struct ctx *c)
{
	char mode_opt[64];
	snprintf(mode_opt, sizeof(mode_opt), "btrfs.quota_mode=%s", mode_name());
	/* quotas on from open: btrfs.quota_mode alone waits for a limit */
	const char *opts[] = { mode_opt, "btrfs.mount_home=false", "btrfs.min_space=1" };
	btrfslayer_error *err = NULL;
	if (btrfslayer_open(c->home, opts, 3, NULL, 0, NULL, 0, &c->h, &err) < 0)
		fail_msg("open %s: %s", c->home, btrfslayer_error_message(err));
}

static void close_home(struct ctx *c)
{
	btrfslayer_error *err = NULL;
	if (btrfslayer_close(c->h, &err) < 0)
		fail_msg("close %s: %s", c->home, btrfslayer_error_message(err));
	c->h = NULL;
}

static void path_in(const struct ctx *c, const char *dir, const char *name, char *buf,
		    size_t len)
{
	snprintf(buf, len, "%s/%s/%s", c->home, dir, name);
}

/* quotas/<name>: 1 and *size when it holds a size, 0 when missing, -1 else. */
static int quota_file(const struct ctx *c, const char *name, uint64_t *size)
{
	char path[PATH_MAX], buf[64];
	path_in(c, "quotas", name, path, sizeof(path));
	int fd = open(path, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
	if (fd < 0)
		return errno == ENOENT ? 0 : -1;
	ssize_t n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return -1;
	buf[n] = '\0';
	char *end;
	errno = 0;
	unsigned long long v = strtoull(buf, &end, 10);
	if (errno || end == buf || (*end && strcmp(end, "\n")) || v == 0)
		return -1;
	*size = v;
	return 1;
}

static struct layer_state layer_state(struct ctx *c, const char *id)
{
	struct layer_state st = { 0 };
	st.exists = btrfslayer_exists(c->h, id, NULL);
	st.file = quota_file(c, id, &st.file_size);
	if (st.exists == 1) {
		btrfslayer_usage u;
		char path[PATH_MAX];
		st.usage = btrfslayer_get_usage(c->h, id, 0, &u, sizeof(u), NULL);
		if (st.usage == 0) {
			st.limit = u.limit;
			st.recorded = u.recorded_limit;
		}
		path_in(c, "subvolumes", id, path, sizeof(path));
		if (btrfs_util_get_subvolume_read_only(path, &st.ro))
			fail_msg("read-only flag of %s", path);
	}
	return st;
}

static bool same_state(const struct layer_state *a, const struct layer_state *b)
{
	return a->exists == b->exists && a->file == b->file && a->file_size == b->file_size &&
	       a->usage == b->usage && a->limit == b->limit && a->recorded == b->recorded &&
	       a->ro == b->ro;
}

static void describe(struct sb *why, const char *id, const struct layer_state *st)
{
	sb_add(why, "%s: exists=%d quota-file=%s%" PRIu64 " usage=%d limit=%" PRIu64
	       " recorded=%" PRIu64 " ro=%d", id, st->exists,
	       st->file == 1 ? "" : st->file == 0 ? "none/" : "garbage/", st->file_size,
	       st->usage, st->limit, st->recorded, st->ro);
}

/* The ids of the layers, as the library lists them. */
static size_t layer_ids(struct ctx *c, char ids[][32], size_t max)
{
	btrfslayer_list *list;
	btrfslayer_error *err = NULL;
	if (btrfslayer_layers(c->h, &list, &err) < 0)
		fail_msg("list layers: %s", btrfslayer_error_message(err));
	size_t n = btrfslayer_list_count(list);
	assert_true(n <= max);
	for (size_t i = 0; i < n; i++)
		snprintf(ids[i], 32, "%s", btrfslayer_list_key(list, i));
	btrfslayer_list_free(list);
	return n;
}

static void remember_ids(struct ctx *c, const struct view *v)
{
	for (size_t i = 0; i < v->n; i++)
		if (!idset_has(&c->seen, v->v[i].id))
			idset_add(&c->seen, v->v[i].id);
}

static void capture_before(struct ctx *c)
{
	char ids[MAX_LAYERS][32];
	c->before = view_of(c->rel);
	remember_ids(c, &c->before);
	c->qgroups_before = qgroups();
	c->n_layers = layer_ids(c, ids, MAX_LAYERS);
	for (size_t i = 0; i < c->n_layers; i++) {
		snprintf(c->layers[i].id, sizeof(c->layers[i].id), "%s", ids[i]);
		c->layers[i].st = layer_state(c, ids[i]);
	}
}

static const struct layer_state *state_before(const struct ctx *c, const char *id)
{
	for (size_t i = 0; i < c->n_layers; i++)
		if (!strcmp(c->layers[i].id, id))
			return &c->layers[i].st;
	return NULL;
}

/* ---- building start states ---------------------------------------------------- */

static void make_layer(struct ctx *c, const char *id, const char *parent, const char *size_opt)
{
	const char *opts[] = { size_opt };
	btrfslayer_error *err = NULL;
	if (btrfslayer_create(c->h, id, parent, 0, NULL, opts, size_opt ? 1 : 0, &err) < 0)
		fail_msg("create %s: %s", id, btrfslayer_error_message(err));
}

static void write_data(const char *dir, size_t size)
{
	char path[PATH_MAX];
	static char block[64 * 1024];
	memset(block, 0x5a, sizeof(block));
	snprintf(path, sizeof(path), "%s/data", dir);
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	assert_true(fd >= 0);
	for (size_t done = 0; done < size; done += sizeof(block))
		assert_int_equal(write(fd, block, sizeof(block)), (ssize_t)sizeof(block));
	close(fd);
}

static void nested_subvolume(const char *path)
{
	enum btrfs_util_error e = btrfs_util_create_subvolume(path, 0, NULL, NULL);
	if (e)
		fail_msg("create subvolume %s: %s", path, btrfs_util_strerror(e));
}

static void seal(const char *path)
{
	enum btrfs_util_error e = btrfs_util_set_subvolume_read_only(path, true);
	if (e)
		fail_msg("make %s read-only: %s", path, btrfs_util_strerror(e));
}

static void setup_none(struct ctx *c)
{
	(void)c;
}

/* A parent with a limit, data to share, and a subvolume nested in it. */
static void setup_parent(struct ctx *c)
{
	char path[PATH_MAX], inner[PATH_MAX + 8];
	make_layer(c, "p", NULL, "size=48M");
	path_in(c, "subvolumes", "p", path, sizeof(path));
	write_data(path, DATA_SIZE);
	snprintf(inner, sizeof(inner), "%s/inner", path);
	nested_subvolume(inner);
	write_data(inner, 64 * 1024);
}

/* A parent with no limit: its plain snapshot is made under its id at
 * once (driver.c, snapshot_at_id()). */
static void setup_unlimited_parent(struct ctx *c)
{
	char path[PATH_MAX];
	make_layer(c, "p", NULL, NULL);
	path_in(c, "subvolumes", "p", path, sizeof(path));
	write_data(path, DATA_SIZE);
}

static void setup_limited(struct ctx *c)
{
	char path[PATH_MAX];
	make_layer(c, "l", NULL, "size=32M");
	path_in(c, "subvolumes", "l", path, sizeof(path));
	write_data(path, DATA_SIZE);
}

/* A read-only layer with a limit, data shared with a snapshot of it, and a
 * read-only subvolume nested in it that holds another. */
static void setup_victim(struct ctx *c)
{
	char path[PATH_MAX], n1[PATH_MAX + 8], n2[PATH_MAX + 16];
	make_layer(c, "victim", NULL, "size=32M");
	path_in(c, "subvolumes", "victim", path, sizeof(path));
	write_data(path, DATA_SIZE);
	snprintf(n1, sizeof(n1), "%s/n1", path);
	nested_subvolume(n1);
	write_data(n1, 64 * 1024);
	snprintf(n2, sizeof(n2), "%s/n2", n1);
	nested_subvolume(n2);
	seal(n1);
	make_layer(c, "kid", "victim", NULL);
	seal(path);
}

static void setup_plain(struct ctx *c)
{
	make_layer(c, "plain", NULL, NULL);
}

/* A writable layer with writable subvolumes nested in it at two depths and
 * a read-only one beside them: what seal flips, and what it leaves. */
static void setup_unsealed(struct ctx *c)
{
	char path[PATH_MAX], n1[PATH_MAX + 8], n2[PATH_MAX + 16], ro[PATH_MAX + 8];
	make_layer(c, "img", NULL, "size=32M");
	path_in(c, "subvolumes", "img", path, sizeof(path));
	write_data(path, 64 * 1024);
	snprintf(n1, sizeof(n1), "%s/n1", path);
	nested_subvolume(n1);
	snprintf(n2, sizeof(n2), "%s/n2", n1);
	nested_subvolume(n2);
	snprintf(ro, sizeof(ro), "%s/ro", path);
	nested_subvolume(ro);
	seal(ro);
}

/* ---- scenarios --------------------------------------------------------------- */

enum kind { K_CREATE, K_REMOVE, K_SET, K_CLEAR, K_SEAL };

struct scenario {
	const char *name;
	enum kind kind;
	void (*setup)(struct ctx *c);
	const char *id;		/* the layer created, removed or limited */
	const char *parent;	/* create */
	uint32_t flags;		/* create */
	const char *size_opt;	/* create */
	uint64_t size;		/* the limit the operation sets (0: none) */
	uint64_t old_size;	/* set, clear: the limit before */
};

static const struct scenario scenarios[] = {
	{ "create-empty", K_CREATE, setup_none, "new", NULL, 0, NULL, 0, 0 },
	{ "create-empty-ro-64M", K_CREATE, setup_none, "new", NULL,
	  BTRFSLAYER_CREATE_READ_ONLY, "size=64M", 64 * MiB, 0 },
	{ "create-snapshot-32M", K_CREATE, setup_parent, "new", "p", 0, "size=32M",
	  32 * MiB, 0 },
	{ "create-snapshot-ro", K_CREATE, setup_parent, "new", "p",
	  BTRFSLAYER_CREATE_READ_ONLY, NULL, 0, 0 },
	{ "create-snapshot-plain", K_CREATE, setup_unlimited_parent, "new", "p", 0, NULL, 0, 0 },
	{ "set-quota", K_SET, setup_limited, "l", NULL, 0, NULL, 64 * MiB, 32 * MiB },
	{ "clear-quota", K_CLEAR, setup_limited, "l", NULL, 0, NULL, 0, 32 * MiB },
	{ "remove-ro-nested", K_REMOVE, setup_victim, "victim", NULL, 0, NULL, 0, 32 * MiB },
	{ "remove-plain", K_REMOVE, setup_plain, "plain", NULL, 0, NULL, 0, 0 },
	{ "seal-nested", K_SEAL, setup_unsealed, "img", NULL, 0, NULL, 32 * MiB, 32 * MiB },
};
#define N_SCENARIOS (sizeof(scenarios) / sizeof(scenarios[0]))

static int run_op(struct ctx *c, btrfslayer_error **err)
{
	const struct scenario *s = c->s;
	const char *opts[] = { s->size_opt };
	switch (s->kind) {
	case K_CREATE:
		return btrfslayer_create(c->h, s->id, s->parent, s->flags, NULL, opts,
					 s->size_opt ? 1 : 0, err);
	case K_REMOVE:
		return btrfslayer_remove(c->h, s->id, err);
	case K_SET:
		return btrfslayer_set_quota(c->h, s->id, s->size, err);
	case K_CLEAR:
		return btrfslayer_clear_quota(c->h, s->id, err);
	case K_SEAL:
		return btrfslayer_set_read_only(c->h, s->id, 1, err);
	}
	return -EINVAL;
}

/* ---- judging a state ----------------------------------------------------------- */

/* How an injected fault ended. */
enum outcome {
	O_CLEAN,	/* failed, and nothing changed */
	O_DONE,		/* failed, but the change is complete (removed, new limit) */
	O_OK,		/* returned 0: complete */
	O_BAD,		/* partial state: a finding */
	O_COUNT
};
static const char *const outcome_names[O_COUNT] = { "err+clean", "err+done", "ok", "BAD" };

struct verdict {
	enum outcome outcome;
	bool leftovers;		/* what the next open must sweep or set right */
	bool undecided;		/* the next open decides the outcome */
	bool warn;		/* outside the contract, worth a look */
	struct sb why;
};

static void bad(struct verdict *v, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void bad(struct verdict *v, const char *fmt, ...)
{
	char line[1024];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	v->outcome = O_BAD;
	sb_add(&v->why, "  - %s\n", line);
}

/* Differences between the start state's subvolumes and now.  `victim`: its
 * tree must be gone from its path.  `added`: the one new layer expected.
 * `reserved_ok`: subvolumes under a reserved name (.tmp-*, .tomb-*) are
 * leftovers for the next open's sweep, not differences.  A changed
 * read-only flag strictly inside `soft` is counted apart, in *soft_changes. */
struct view_rules {
	const char *victim;
	const char *added;
	const char *soft;
	bool reserved_ok;
};

static bool reserved_path(const char *path)
{
	return !strncmp(path, "subvolumes/.tmp-", 16) || !strncmp(path, "subvolumes/.tomb-", 17);
}

static unsigned diff_views(const struct view *before, const struct view *now,
			   const struct view_rules *x, struct sb *why, unsigned *soft_changes)
{
	unsigned hard = 0;
	for (size_t i = 0; i < before->n; i++) {
		const struct subvol *b = &before->v[i], *a = view_find(now, b->id);
		if (x->victim && in_layer(b->path, x->victim)) {
			if (a && !(x->reserved_ok && reserved_path(a->path))) {
				sb_add(why, "subvolume %s (%" PRIu64 ") still there as %s; ",
				       b->path, b->id, a->path);
				hard++;
			}
			continue;
		}
		if (!a) {
			sb_add(why, "subvolume %s (%" PRIu64 ") is gone; ", b->path, b->id);
			hard++;
		} else if (strcmp(a->path, b->path)) {
			sb_add(why, "subvolume %s (%" PRIu64 ") moved to %s; ", b->path, b->id,
			       a->path);
			hard++;
		} else if (a->ro != b->ro) {
			sb_add(why, "subvolume %s (%" PRIu64 ") read-only %d -> %d; ", b->path,
			       b->id, b->ro, a->ro);
			if (x->soft && strict_inside(b->path, x->soft))
				++*soft_changes;
			else
				hard++;
		}
	}
	unsigned added = 0;
	for (size_t i = 0; i < now->n; i++) {
		const struct subvol *a = &now->v[i];
		if (view_find(before, a->id) || (x->reserved_ok && reserved_path(a->path)))
			continue;
		/* the empty template a plain empty create makes first: whole or
		 * absent, which check_reserved() sees to */
		if (harness_is_template(a->path))
			continue;
		if (x->added && in_layer(a->path, x->added) && !strict_inside(a->path, x->added) &&
		    added++ == 0)
			continue;
		sb_add(why, "new subvolume %s (%" PRIu64 "); ", a->path, a->id);
		hard++;
	}
	if (x->added && added == 0) {
		sb_add(why, "no subvolume subvolumes/%s; ", x->added);
		hard++;
	}
	return hard;
}

/* A reserved name in quotas/ that announces nothing (no intent
 * attribute): what a failed unlink of a finished or dropped intent leaves,
 * for close or the next open to delete, without effect. */
static bool inert_quota_file(struct ctx *c, const char *name)
{
	char path[PATH_MAX], value[8];
	snprintf(path, sizeof(path), "%s/quotas/.staging/%s", c->home, name);
	return getxattr(path, "user.btrfslayer.intent", value, sizeof(value)) < 0 &&
	       errno == ENODATA;
}

/* A stand-in in subvolumes/.staging whose subvolume is gone: what a
 * failed unlink of it leaves, for close or the next open to delete. */
static bool inert_stand_in(struct ctx *c, const char *name)
{
	char path[PATH_MAX];
	struct stat st;
	snprintf(path, sizeof(path), "%s/subvolumes/%s", c->home, name);
	return lstat(path, &st) < 0 && errno == ENOENT;
}

/* Names under subvolumes/ and quotas/ that are not layers or quota files:
 * markers in quotas/, and reserved names only where allowed (noted in
 * v->leftovers): tombstones, and temporaries too when `allow_tmp`; inert
 * ones in quotas/ when `allow_inert`. */
static void check_reserved(struct ctx *c, bool allow_tomb, bool allow_tmp, bool allow_inert,
			   struct verdict *v)
{
	/* reserved subvolumes sit in subvolumes/ with a stand-in in its
	 * staging directory; reserved files of quotas/ in its own */
	static const char *const dirs[] = { "subvolumes", "quotas", "subvolumes/.staging",
					    "quotas/.staging" };
	for (int i = 0; i < 4; i++) {
		char path[PATH_MAX];
		snprintf(path, sizeof(path), "%s/%s", c->home, dirs[i]);
		DIR *d = opendir(path);
		struct dirent *e;
		assert_non_null(d);
		while ((e = readdir(d))) {
			const char *n = e->d_name;
			if (n[0] != '.' || !strcmp(n, ".") || !strcmp(n, "..") ||
			    (i < 2 && !strcmp(n, ".staging")))
				continue;
			if (i == 3 && !strncmp(n, ".qgroup-", 8))
				continue;
			if (i == 0 && harness_is_template(n)) {
				/* the library's: it appears whole or not at all */
				char template[PATH_MAX + 256];
				snprintf(template, sizeof(template), "%s/%s", path, n);
				const char *flaw = harness_template_flaw(template);
				if (flaw)
					bad(v, "empty template %s/%s: %s", dirs[i], n, flaw);
				continue;
			}
			if ((allow_tomb && !strncmp(n, ".tomb-", 6)) ||
			    (allow_tmp && !strncmp(n, ".tmp-", 5)) ||
			    (allow_inert && i == 3 && inert_quota_file(c, n)) ||
			    (allow_inert && i == 2 && inert_stand_in(c, n))) {
				v->leftovers = true;
				continue;
			}
			bad(v, "%s/%s left behind", dirs[i], n);
		}
		closedir(d);
	}
}

/* A new level-0 qgroup needs a live subvolume or a marker: the library
 * writes the marker before it deletes a subvolume, so even a deleted one
 * the cleaner has not dropped yet (it keeps its root item) has one.  A
 * marker must not name a live subvolume. */
static void check_qgroups(struct ctx *c, const struct view *now, struct verdict *v)
{
	struct idset q = qgroups();
	struct view live = view_of(NULL);
	for (size_t i = 0; i < q.n; i++) {
		uint64_t id = q.ids[i];
		if (!idset_has(&c->seen, id))
			idset_add(&c->seen, id);
		if (id == BTRFS_FS_TREE_OBJECTID || idset_has(&c->qgroups_before, id) ||
		    view_find(&live, id))
			continue;
		bool marked = harness_marked(c->home, id);
		/* Linux 6.11 and later, with full qgroups: the kernel's own
		 * to destroy (quota.c leaves no marker), which it must */
		if (!marked && !strcmp(mode_name(), "qgroup") && harness_kernel_drops_qgroups()) {
			if (!harness_qgroup_left_to_kernel(harness_btrfs(), id))
				bad(v, "qgroup 0/%" PRIu64 " of a deleted subvolume: the kernel "
				    "has not destroyed it a minute on", id);
			continue;
		}
		if (!marked)
			bad(v, "qgroup 0/%" PRIu64 " of a deleted subvolume%s has no marker", id,
			    root_item_exists(id) ? " (cleaner not done)" : "");
	}
	view_free(&live);
	idset_free(&q);
	/* harmless (a live subvolume's qgroup is never destroyed, ids are
	 * never reused), but a deletion that failed should take it back */
	for (size_t i = 0; i < now->n; i++) {
		if (harness_marked(c->home, now->v[i].id)) {
			v->warn = true;
			sb_add(&v->why, "  ~ a marker names live subvolume %s (0/%" PRIu64 ")\n",
			       now->v[i].path, now->v[i].id);
		}
	}
}

static void check_error(int rc, btrfslayer_error *err, struct verdict *v)
{
	if (!err) {
		bad(v, "returned %d with no error object", rc);
		return;
	}
	if (btrfslayer_error_code(err) != rc)
		bad(v, "returned %d, error object says %d", rc, btrfslayer_error_code(err));
	if (!*btrfslayer_error_message(err))
		bad(v, "empty error message");
}

/* Every layer the operation is not about is as it was. */
static void check_bystanders(struct ctx *c, struct verdict *v)
{
	for (size_t i = 0; i < c->n_layers; i++) {
		const struct layer *l = &c->layers[i];
		if (!strcmp(l->id, c->s->id))
			continue;
		struct layer_state st = layer_state(c, l->id);
		if (!same_state(&st, &l->st)) {
			struct sb d = { .len = 0 };
			describe(&d, l->id, &l->st);
			sb_add(&d, " became ");
			describe(&d, l->id, &st);
			bad(v, "other layer changed: %s", d.buf);
		}
	}
}

static void judge_create(struct ctx *c, int rc, const struct view *now, bool sweepable,
			 struct verdict *v)
{
	const struct scenario *s = c->s;
	struct layer_state st = layer_state(c, s->id);
	struct sb why = { .len = 0 };
	unsigned soft = 0;
	if (rc < 0) {
		v->outcome = O_CLEAN;
		if (st.exists != 0)
			bad(v, "failed create left layer %s (exists=%d)", s->id, st.exists);
		if (st.file != 0 && sweepable)
			v->leftovers = true;
		else if (st.file != 0)
			bad(v, "failed create left quotas/%s", s->id);
		if (diff_views(&c->before, now, &(struct view_rules){ .reserved_ok = sweepable },
			       &why, &soft))
			bad(v, "failed create changed subvolumes: %s", why.buf);
		return;
	}
	v->outcome = O_OK;
	bool ro = s->flags & BTRFSLAYER_CREATE_READ_ONLY;
	if (st.exists != 1 || st.usage != 0 || st.limit != s->size || st.recorded != s->size ||
	    st.file != (s->size ? 1 : 0) || st.file_size != s->size || st.ro != ro) {
		struct sb d = { .len = 0 };
		describe(&d, s->id, &st);
		bad(v, "created layer incomplete (want limit %" PRIu64 ", ro=%d): %s", s->size,
		    ro, d.buf);
	}
	if (diff_views(&c->before, now, &(struct view_rules){ .added = s->id }, &why, &soft))
		bad(v, "create changed subvolumes: %s", why.buf);
}

/* Whether a removal's intent (intent.c) in quotas/ holds layer id's
 * record, for the next open to put back or delete. */
static bool record_in_intent(struct ctx *c, const char *id)
{
	char path[PATH_MAX], want[300], value[320];
	snprintf(path, sizeof(path), "%s/quotas/.staging", c->home);
	DIR *d = opendir(path);
	struct dirent *e;
	bool held = false;
	assert_non_null(d);
	while (!held && (e = readdir(d))) {
		if (strncmp(e->d_name, ".tomb-", 6))
			continue;
		path_in(c, "quotas/.staging", e->d_name, path, sizeof(path));
		ssize_t n = getxattr(path, "user.btrfslayer.intent", value, sizeof(value) - 1);
		if (n <= 0)
			continue;
		value[n] = '\0';
		snprintf(want, sizeof(want), " %s", id);
		size_t len = strlen(want);
		held = !strncmp(value, "remove ", 7) && (size_t)n > len &&
			!strcmp(value + n - len, want);
	}
	closedir(d);
	return held;
}

static void judge_remove(struct ctx *c, int rc, const struct view *now, bool after_open,
			 bool sweepable, struct verdict *v)
{
	const struct scenario *s = c->s;
	const struct layer_state *old = state_before(c, s->id);
	struct layer_state st = layer_state(c, s->id);
	struct sb why_whole = { .len = 0 }, why_gone = { .len = 0 };
	unsigned soft = 0, ignored = 0;
	/* with a second fault, the record may wait in the removal's intent
	 * for the next open to put it back */
	struct layer_state seen = st;
	if (sweepable && old && st.exists == 1 && st.file == 0 && old->file == 1 &&
	    record_in_intent(c, s->id)) {
		seen.file = old->file;
		seen.file_size = old->file_size;
		seen.recorded = old->recorded;
		v->leftovers = true;
	}
	bool whole = st.exists == 1 && old && same_state(&seen, old) &&
		     diff_views(&c->before, now, &(struct view_rules){ .soft = s->id },
				&why_whole, &soft) == 0;
	bool gone = st.exists == 0 && (st.file == 0 || sweepable) &&
		    diff_views(&c->before, now,
			       &(struct view_rules){ .victim = s->id, .reserved_ok = !after_open },
			       &why_gone, &ignored) == 0;
	if (gone && st.file != 0)
		v->leftovers = true;
	if (rc == 0 && gone) {
		v->outcome = O_OK;
	} else if (rc < 0 && (whole || gone)) {
		v->outcome = whole ? O_CLEAN : O_DONE;
		if (whole && soft) {
			v->warn = true;
			sb_add(&v->why, "  ~ layer whole, but %s\n", why_whole.buf);
		}
	} else {
		struct sb d = { .len = 0 };
		describe(&d, s->id, &st);
		if (old) {
			sb_add(&d, "; before: ");
			describe(&d, s->id, old);
		}
		bad(v, "%s: %s", rc == 0 ? "returned 0, layer not gone" : "neither whole nor gone",
		    d.buf);
		if (why_whole.len)
			sb_add(&v->why, "    vs whole: %s\n", why_whole.buf);
		if (why_gone.len)
			sb_add(&v->why, "    vs gone: %s\n", why_gone.buf);
	}
}

static void judge_quota(struct ctx *c, int rc, const struct view *now, bool sweepable,
			struct verdict *v)
{
	const struct scenario *s = c->s;
	const struct layer_state *old = state_before(c, s->id);
	struct layer_state st = layer_state(c, s->id);
	struct sb why = { .len = 0 }, d = { .len = 0 };
	unsigned soft = 0;
	uint64_t file = st.file == 1 ? st.file_size : 0;
	describe(&d, s->id, &st);
	if (st.exists != 1 || st.usage != 0 || st.file < 0 || st.ro != old->ro) {
		bad(v, "layer damaged: %s", d.buf);
		return;
	}
	if (diff_views(&c->before, now, &(struct view_rules){ 0 }, &why, &soft))
		bad(v, "subvolumes changed: %s", why.buf);
	if ((st.limit != file || st.recorded != file) && sweepable) {
		/* the next open sets the limit back to the record */
		v->leftovers = v->undecided = true;
		return;
	}
	if (st.limit != file || st.recorded != file) {
		bad(v, "kernel limit %" PRIu64 " and quota file %" PRIu64 " disagree (old %" PRIu64
		    ", new %" PRIu64 ")", st.limit, file, s->old_size, s->size);
		return;
	}
	if (st.limit == s->size)
		v->outcome = rc == 0 ? O_OK : O_DONE;
	else if (st.limit == s->old_size && rc < 0)
		v->outcome = O_CLEAN;
	else
		bad(v, "returned %d with limit %" PRIu64 " (old %" PRIu64 ", new %" PRIu64 ")", rc,
		    st.limit, s->old_size, s->size);
}

/* A seal is whole or not there: the layer and every subvolume nested in it
 * read-only (done), or each with the flag it had (clean).  Only a second
 * fault, in the undo of a first, may leave part of it flipped: the call
 * failed, and the undo is best effort (logged); a warning, not a finding.
 * Nothing else changes: no subvolume, no limit, no record. */
static void judge_seal(struct ctx *c, int rc, const struct view *now, struct verdict *v)
{
	const struct scenario *s = c->s;
	const struct layer_state *old = state_before(c, s->id);
	struct layer_state st = layer_state(c, s->id);
	struct sb why = { .len = 0 }, d = { .len = 0 };
	unsigned soft = 0;
	describe(&d, s->id, &st);
	if (st.exists != 1 || st.file != old->file || st.file_size != old->file_size ||
	    st.limit != old->limit || st.recorded != old->recorded) {
		bad(v, "layer changed beyond its read-only flags: %s", d.buf);
		return;
	}
	if (diff_views(&c->before, now, &(struct view_rules){ .soft = s->id }, &why, &soft))
		bad(v, "subvolumes changed: %s", why.buf);
	bool all_sealed = st.ro;
	for (size_t i = 0; i < now->n; i++)
		if (in_layer(now->v[i].path, s->id) && !now->v[i].ro)
			all_sealed = false;
	bool as_before = st.ro == old->ro && soft == 0;
	if (all_sealed)
		v->outcome = rc == 0 ? O_OK : O_DONE;
	else if (as_before && rc < 0)
		v->outcome = O_CLEAN;
	else if (rc < 0 && c->relaxed)
		v->warn = true;	/* the undo itself failed: said in the log */
	else
		bad(v, "returned %d with the layer partly sealed: %s; %s", rc, d.buf, why.buf);
}

/* What the next open must sweep: reserved subvolumes, and quota files that
 * are reserved or belong to no layer. */
struct leftovers {
	unsigned tombstones, temporaries, quota_files;
};

static struct leftovers count_leftovers(struct ctx *c)
{
	struct leftovers l = { 0 };
	static const char *const dirs[] = { "subvolumes", "quotas" };
	for (int i = 0; i < 2; i++) {
		char path[PATH_MAX];
		snprintf(path, sizeof(path), "%s/%s", c->home, dirs[i]);
		DIR *d = opendir(path);
		struct dirent *e;
		assert_non_null(d);
		while ((e = readdir(d))) {
			const char *n = e->d_name;
			bool tomb = !strncmp(n, ".tomb-", 6), tmp = !strncmp(n, ".tmp-", 5);
			if (i == 0) {
				l.tombstones += tomb;
				l.temporaries += tmp;
			} else if (tomb || tmp || (n[0] != '.' && btrfslayer_exists(c->h, n, NULL) == 0)) {
				l.quota_files++;
			}
		}
		closedir(d);
	}
	return l;
}

/* A count status() reports, or -1. */
static long status_count(struct ctx *c, const char *key)
{
	btrfslayer_list *list;
	long value = -1;
	if (btrfslayer_status(c->h, &list, NULL) < 0)
		return -1;
	for (size_t i = 0; i < btrfslayer_list_count(list); i++)
		if (!strcmp(btrfslayer_list_key(list, i), key))
			value = strtol(btrfslayer_list_value(list, i), NULL, 10);
	btrfslayer_list_free(list);
	return value;
}

/* What was left went at close (the handle cleans up its own reserved
 * names) or in the open's sweep, which reports no more than that and
 * leaves nothing. */
static void check_sweep_report(struct ctx *c, const struct leftovers *l, struct verdict *v)
{
	const struct {
		const char *key;
		long most;
	} counts[] = {
		{ "sweep_tombstones", l->tombstones },
		{ "sweep_temporaries", l->temporaries },
		{ "sweep_quota_files", l->quota_files },
		{ "sweep_left", 0 },
	};
	for (size_t i = 0; i < sizeof(counts) / sizeof(counts[0]); i++) {
		long got = status_count(c, counts[i].key);
		if (got < 0 || got > counts[i].most)
			bad(v, "status %s=%ld after the sweep, want 0 to %ld", counts[i].key,
			    got, counts[i].most);
	}
}

/* After open: what the contract lets a checker assert of any home. */
static void check_invariants(struct ctx *c, const struct view *now, struct verdict *v)
{
	char ids[MAX_LAYERS][32];
	size_t n = layer_ids(c, ids, MAX_LAYERS);
	for (size_t i = 0; i < n; i++) {
		struct layer_state st = layer_state(c, ids[i]);
		if (st.usage != 0 || st.limit != st.recorded || st.file < 0 ||
		    (st.file == 1) != (st.recorded > 0)) {
			struct sb d = { .len = 0 };
			describe(&d, ids[i], &st);
			bad(v, "layer limit and record disagree: %s", d.buf);
		}
	}
	for (size_t i = 0; i < now->n; i++) {
		bool ok = harness_is_template(now->v[i].path);
		for (size_t j = 0; j < n && !ok; j++)
			ok = in_layer(now->v[i].path, ids[j]);
		if (!ok)
			bad(v, "subvolume %s (%" PRIu64 ") is in no layer", now->v[i].path,
			    now->v[i].id);
	}
	/* subvolumes/ holds layers, quotas/ their quota files (and markers) */
	static const char *const dirs[] = { "subvolumes", "quotas" };
	for (int i = 0; i < 2; i++) {
		char path[PATH_MAX];
		snprintf(path, sizeof(path), "%s/%s", c->home, dirs[i]);
		DIR *d = opendir(path);
		struct dirent *e;
		assert_non_null(d);
		while ((e = readdir(d))) {
			bool ok = e->d_name[0] == '.';	/* reserved: check_reserved's */
			for (size_t j = 0; j < n && !ok; j++)
				ok = !strcmp(e->d_name, ids[j]);
			if (!ok)
				bad(v, "%s/%s is no layer's", dirs[i], e->d_name);
		}
		closedir(d);
	}
}

/* The whole verdict on the home as it is now. */
static struct verdict judge(struct ctx *c, int rc, btrfslayer_error *err, bool after_open)
{
	struct verdict v = { .outcome = O_CLEAN };
	struct view now = view_of(c->rel);
	/* with a second fault, what the next open sweeps may stay until then */
	bool sweepable = c->relaxed && !after_open;
	remember_ids(c, &now);
	switch (c->s->kind) {
	case K_CREATE:
		judge_create(c, rc, &now, sweepable, &v);
		break;
	case K_REMOVE:
		judge_remove(c, rc, &now, after_open, sweepable, &v);
		break;
	case K_SET:
	case K_CLEAR:
		judge_quota(c, rc, &now, sweepable, &v);
		break;
	case K_SEAL:
		judge_seal(c, rc, &now, &v);
		break;
	}
	if (rc < 0 && !after_open)
		check_error(rc, err, &v);
	check_reserved(c, (c->s->kind == K_REMOVE && !after_open) || sweepable, sweepable,
		       !after_open, &v);
	check_qgroups(c, &now, &v);
	check_bystanders(c, &v);
	if (after_open)
		check_invariants(c, &now, &v);
	view_free(&now);
	return v;
}

/* ---- one run: start state, faults, verdicts, cleanup ------------------------------ */

/* What one run saw, to blame a leak found by the final drain on it. */
struct run_record {
	const char *mode;
	const char *scenario;
	char what[96];
	struct idset seen;
};

static struct run_record *records;
static size_t n_records, cap_records;
static char (*homes)[HOME_MAX];
static size_t n_homes, cap_homes;

static void add_home(const char *home)
{
	if (n_homes == cap_homes) {
		cap_homes = cap_homes ? 2 * cap_homes : 64;
		homes = grow(homes, cap_homes, sizeof(*homes));
	}
	snprintf(homes[n_homes++], HOME_MAX, "%s", home);
}

/* "no fault", "renameat2#1" or "renameat2#1, then bl_ioctl_destroy#1". */
static void describe_targets(const struct fault_target *t, size_t n, char *buf, size_t len)
{
	int used = snprintf(buf, len, "%s", n ? "" : "no fault");
	for (size_t i = 0; i < n && used >= 0 && (size_t)used < len; i++)
		used += snprintf(buf + used, len - (size_t)used, "%s%s#%u", i ? ", then " : "",
				 fault_point_names[t[i].point], t[i].k);
}

static void print_trace(void)
{
	const struct fault_call *calls;
	size_t n = fault_trace(&calls), last = n;	/* all of a dry run */
	for (size_t i = 0; i < n; i++)
		if (calls[i].failed)
			last = i;
	printf("    calls:");
	for (size_t i = 0; i < n && i <= last + 4; i++)
		printf(" %s%s#%u%s", calls[i].failed ? ">>" : "",
		       fault_point_names[calls[i].point], calls[i].ordinal,
		       calls[i].failed ? "<<" : "");
	printf("%s\n", n > last + 5 ? " ..." : "");
}

static char alarm_what[256];

/* Where the time goes: start state, operation, checks, cleanup. */
enum phase { T_SETUP, T_OP, T_CHECK, T_CLEANUP, T_COUNT };
static const char *const phase_names[T_COUNT] = { "setup", "operation", "checks", "cleanup" };
static double phase_time[T_COUNT];

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Add the time since *t to phase p, and restart *t. */
static void lap(enum phase p, double *t)
{
	double n = now_s();
	phase_time[p] += n - *t;
	*t = n;
}

static void on_alarm(int sig)
{
	(void)sig;
	if (write(STDERR_FILENO, alarm_what, strlen(alarm_what)) < 0) {
		/* nothing more to do */
	}
	raise(SIGTERM);	/* the harness tears down on it */
}

/* Remove every layer, then close: only the empty template may stay. */
static void cleanup(struct ctx *c)
{
	char ids[MAX_LAYERS][32];
	size_t n = layer_ids(c, ids, MAX_LAYERS);
	for (size_t i = 0; i < n; i++) {
		btrfslayer_error *err = NULL;
		if (btrfslayer_remove(c->h, ids[i], &err) < 0)
			fail_msg("cleanup: remove %s in %s: %s", ids[i], c->home,
				 btrfslayer_error_message(err));
	}
	struct view left = view_of(c->rel);
	remember_ids(c, &left);
	/* but the empty template, which stays with no layer */
	for (size_t i = 0; i < left.n; i++)
		if (!harness_is_template(left.v[i].path))
			fail_msg("cleanup: %s still has subvolume %s", c->home, left.v[i].path);
	view_free(&left);
	close_home(c);
}

#define AFTER_MAX 64

struct run_result {
	int rc;
	unsigned fired;
	enum outcome outcome;
	bool leftovers, warn;
	/* the calls made after the first failed one: where a second fault
	 * hits the recovery from the first */
	struct fault_target after[AFTER_MAX];
	size_t n_after;
};

static void report(const struct ctx *c, const char *what, const struct run_result *res,
		   btrfslayer_error *err, const struct verdict *first,
		   const struct verdict *second)
{
	printf("%s %s %s: %s: returned %d%s%s\n",
	       res->outcome == O_BAD ? "BAD" : res->warn ? "WARN" : "DRY-RUN-FAILED", mode_name(),
	       c->s->name, what, res->rc, err ? ": " : "",
	       err ? btrfslayer_error_message(err) : "");
	if (first->why.len)
		printf("  right after the call:\n%s", first->why.buf);
	if (second->why.len)
		printf("  after closing and opening the home again:\n%s", second->why.buf);
	print_trace();
	printf("%s", lib_log.buf);
	fflush(stdout);
}

/* The calls after the first failed one, from the trace. */
static void calls_after_fault(struct run_result *res)
{
	const struct fault_call *calls;
	size_t n = fault_trace(&calls), i = 0;
	while (i < n && !calls[i].failed)
		i++;
	for (i++; i < n && res->n_after < AFTER_MAX; i++)
		res->after[res->n_after++] = (struct fault_target){ calls[i].point,
								    calls[i].ordinal };
}

/* Run the scenario's operation with the n calls of t failing (none for the
 * dry run); judge it before and after the next open; print what is wrong. */
static struct run_result run_one(const struct scenario *s, const struct fault_target *t,
				 size_t n)
{
	struct ctx c = { .s = s, .relaxed = n > 1 };
	struct run_result res = { .outcome = O_BAD };
	btrfslayer_error *err = NULL;
	char what[96];

	describe_targets(t, n, what, sizeof(what));
	harness_new_home(c.home, sizeof(c.home));
	add_home(c.home);
	c.rel = c.home + strlen(harness_btrfs()) + 1;
	lib_log.len = 0;
	lib_log.buf[0] = '\0';
	snprintf(alarm_what, sizeof(alarm_what), "fault: %s %s: %s: hung for %d s\n",
		 mode_name(), s->name, what, ITERATION_TIMEOUT);
	alarm(ITERATION_TIMEOUT);

	double time = now_s();
	open_home(&c);
	s->setup(&c);
	capture_before(&c);
	lap(T_SETUP, &time);
	fault_arm(t, n);
	res.rc = run_op(&c, &err);
	res.fired = fault_disarm();
	lap(T_OP, &time);
	if (n == 1 && res.fired && res.rc < 0)
		calls_after_fault(&res);
	if (n == 0 && getenv("FAULT_TRACE")) {
		printf("  %s %s: dry run returned %d\n", mode_name(), s->name, res.rc);
		print_trace();
	}

	struct verdict first = judge(&c, res.rc, err, false);
	struct leftovers left = count_leftovers(&c);
	close_home(&c);
	open_home(&c);
	struct verdict second = judge(&c, res.rc, err, true);
	check_sweep_report(&c, &left, &second);
	if (first.outcome != O_BAD && second.outcome != O_BAD && !first.undecided &&
	    second.outcome != first.outcome)
		bad(&second, "the next open turned %s into %s", outcome_names[first.outcome],
		    outcome_names[second.outcome]);
	res.outcome = first.outcome == O_BAD ? O_BAD : second.outcome;
	res.leftovers = first.leftovers;
	res.warn = first.warn || second.warn;
	if (res.outcome == O_BAD || res.warn || (n == 0 && res.rc < 0))
		report(&c, what, &res, err, &first, &second);
	btrfslayer_error_free(err);
	lap(T_CHECK, &time);
	cleanup(&c);
	lap(T_CLEANUP, &time);
	alarm(0);

	if (n_records == cap_records) {
		cap_records = cap_records ? 2 * cap_records : 256;
		records = grow(records, cap_records, sizeof(*records));
	}
	records[n_records] = (struct run_record){ mode_name(), s->name, "", c.seen };
	snprintf(records[n_records++].what, sizeof(records[0].what), "%s", what);
	view_free(&c.before);
	idset_free(&c.qgroups_before);
	return res;
}

/* ---- the table ------------------------------------------------------------------ */

/* One fault point of one scenario: pass 1 fails each of its calls alone;
 * pass 2 fails it as a second fault, in the recovery from a first. */
struct row {
	const char *mode;
	const char *scenario;
	int pass;
	int point;
	unsigned calls, injected, swept, warned, missed;
	unsigned outcomes[O_COUNT];
};

static struct row rows[1024];
static size_t n_rows;
static unsigned injected[3], found[3];	/* by pass; found[0]: drain leaks */

static struct row *row_for(const struct scenario *s, int pass, int point)
{
	for (size_t i = 0; i < n_rows; i++)
		if (rows[i].mode == mode_name() && rows[i].scenario == s->name &&
		    rows[i].pass == pass && rows[i].point == point)
			return &rows[i];
	assert_true(n_rows < sizeof(rows) / sizeof(rows[0]));
	rows[n_rows] = (struct row){ .mode = mode_name(), .scenario = s->name, .pass = pass,
				     .point = point };
	return &rows[n_rows++];
}

/* Count a run in its row; whether it was a finding. */
static bool tally(struct row *row, int pass, const struct run_result *r, unsigned faults)
{
	if (r->fired < faults) {
		row->missed++;	/* the path changed: the call never came */
		return false;
	}
	row->injected++;
	injected[pass]++;
	row->outcomes[r->outcome]++;
	row->swept += r->leftovers && r->outcome != O_BAD;
	row->warned += r->warn;
	found[pass] += r->outcome == O_BAD;
	return r->outcome == O_BAD;
}

/* Second faults: FAULT_SECOND=0 turns them off. */
static bool second_faults(void)
{
	const char *v = getenv("FAULT_SECOND");
	return !v || strcmp(v, "0");
}

static void test_scenario(void **state)
{
	const struct scenario *s = *state;
	unsigned calls[FP_COUNT], bad_here = 0;
	struct fault_target (*pairs)[2] = NULL;
	size_t n_pairs = 0, cap_pairs = 0;

	struct run_result dry = run_one(s, NULL, 0);
	for (int p = 0; p < FP_COUNT; p++)
		calls[p] = fault_calls(p);
	if (dry.outcome != O_OK)
		fail_msg("%s: the operation fails or is incomplete without any fault", s->name);

	for (int p = 0; p < FP_COUNT; p++) {
		if (!calls[p])
			continue;
		struct row *row = row_for(s, 1, p);
		row->calls = calls[p];
		for (unsigned k = 1; k <= calls[p]; k++) {
			struct fault_target t = { p, k };
			struct run_result r = run_one(s, &t, 1);
			bad_here += tally(row, 1, &r, 1);
			/* a first fault that is a finding already needs no second */
			for (size_t i = 0; second_faults() && r.outcome != O_BAD && i < r.n_after;
			     i++) {
				if (n_pairs == cap_pairs) {
					cap_pairs = cap_pairs ? 2 * cap_pairs : 64;
					pairs = grow(pairs, cap_pairs, sizeof(*pairs));
				}
				pairs[n_pairs][0] = t;
				pairs[n_pairs++][1] = r.after[i];
			}
		}
	}
	for (size_t i = 0; i < n_pairs; i++) {
		struct row *row = row_for(s, 2, pairs[i][1].point);
		row->calls++;
		struct run_result r = run_one(s, pairs[i], 2);
		bad_here += tally(row, 2, &r, 2);
	}
	free(pairs);
	if (bad_here)
		fail_msg("%s (%s): %u injected faults left partial state (see BAD above)", s->name,
			 mode_name(), bad_here);
}

/* ---- the drain: no qgroup outlives its layers ----------------------------------- */

static void blame(uint64_t id)
{
	for (size_t i = 0; i < n_records; i++) {
		const struct run_record *r = &records[i];
		if (r->mode == mode_name() && idset_has(&r->seen, id))
			printf("  subvolume %" PRIu64 " was seen by %s %s, %s\n", id, r->mode,
			       r->scenario, r->what);
	}
}

static void test_drain(void **state)
{
	(void)state;
	alarm(0);
	const char *const subvolume_sync[] = { "btrfs", "subvolume", "sync", harness_btrfs(), NULL };
	const char *const fs_sync[] = { "btrfs", "filesystem", "sync", harness_btrfs(), NULL };
	/* the commit wakes the cleaner, which subvolume sync waits for */
	double t = now_s();
	run_or_fail(fs_sync);
	run_or_fail(subvolume_sync);
	printf("drain %s: syncs took %.1f s\n", mode_name(), now_s() - t);
	for (size_t i = 0; i < n_homes; i++) {
		struct ctx c = { 0 };
		snprintf(c.home, sizeof(c.home), "%s", homes[i]);
		open_home(&c);
		close_home(&c);
	}

	unsigned leaks = 0;
	struct view live = view_of(NULL);
	struct idset q = qgroups();
	for (size_t i = 0; i < q.n; i++) {
		if (q.ids[i] == BTRFS_FS_TREE_OBJECTID || view_find(&live, q.ids[i]))
			continue;
		printf("LEAK %s: qgroup 0/%" PRIu64 " outlives its subvolume%s\n", mode_name(),
		       q.ids[i], root_item_exists(q.ids[i]) ? " (root item still there)" : "");
		blame(q.ids[i]);
		leaks++;
	}
	for (size_t i = 0; i < n_homes; i++) {
		uint64_t markers[64];
		int n = harness_markers(homes[i], markers, 64);
		for (int m = 0; m < n; m++)
			printf("LEAK %s: a marker of qgroup 0/%" PRIu64 " remains in %s\n",
			       mode_name(), markers[m], homes[i]);
		leaks += (unsigned)n;
	}
	printf("drain %s: %zu homes, %zu level-0 qgroups left (0/5 included), %u leaks\n",
	       mode_name(), n_homes, q.n, leaks);
	idset_free(&q);
	view_free(&live);
	n_homes = 0;
	found[0] += leaks;
	if (leaks)
		fail_msg("%u qgroups or markers outlive every layer (%s)", leaks, mode_name());
}

/* ---- the wrap list keeps up with the library ------------------------------------ */

/* internal.h's btrfs functions (CMake reads them into FAULT_DECLARED): each
 * must be a fault point, or a new step would go untested. */
static void test_every_btrfs_call_wrapped(void **state)
{
	(void)state;
	char declared[] = FAULT_DECLARED;
	unsigned missing = 0;
	for (char *save = NULL, *name = strtok_r(declared, " ;", &save); name;
	     name = strtok_r(NULL, " ;", &save)) {
		bool wrapped = false;
		for (int p = 0; p < FP_COUNT && !wrapped; p++)
			wrapped = !strcmp(fault_point_names[p], name);
		if (!wrapped) {
			printf("not wrapped: %s (declared in src/internal.h)\n", name);
			missing++;
		}
	}
	if (missing)
		fail_msg("%u btrfs functions of the library have no fault point", missing);
}

/* ---- groups, one per quota mode ----------------------------------------------- */

static bool quotas_on(void)
{
	struct idset q = { 0 };
	int r = tree_items(BTRFS_QUOTA_TREE_OBJECTID, 0, 0, BTRFS_QGROUP_INFO_KEY, add_level0, &q);
	idset_free(&q);
	return r == 0;
}

static int start_mode(const char *m)
{
	current_mode = m;
	n_homes = 0;
	if (quotas_on()) {
		const char *argv[] = { "btrfs", "quota", "disable", harness_btrfs(), NULL };
		if (harness_run(argv) != 0)
			return -1;
	}
	return 0;
}

static int start_qgroup(void **state)
{
	(void)state;
	return start_mode("qgroup");
}

static int start_simple(void **state)
{
	(void)state;
	return start_mode("simple");
}

static void print_rows(int pass)
{
	const char *scenario = NULL, *mode = NULL;
	unsigned sub = 0;
	printf("%-7s %-20s %-27s %5s %8s", "mode", "scenario", pass == 1 ? "function" : "second fault",
	       "calls", "injected");
	for (int o = 0; o < O_COUNT; o++)
		printf(" %9s", outcome_names[o]);
	printf(" %5s %4s %6s\n", "swept", "warn", "missed");
	for (size_t i = 0; i < n_rows; i++) {
		const struct row *r = &rows[i];
		if (r->pass != pass)
			continue;
		if (scenario && (r->scenario != scenario || r->mode != mode)) {
			printf("%-7s %-20s %-27s %5s %8u\n", "", "", "(scenario total)", "", sub);
			sub = 0;
		}
		scenario = r->scenario;
		mode = r->mode;
		sub += r->injected;
		printf("%-7s %-20s %-27s %5u %8u", r->mode, r->scenario,
		       fault_point_names[r->point], r->calls, r->injected);
		for (int o = 0; o < O_COUNT; o++)
			printf(" %9u", r->outcomes[o]);
		printf(" %5u %4u %6u\n", r->swept, r->warned, r->missed);
	}
	if (scenario)
		printf("%-7s %-20s %-27s %5s %8u\n", "", "", "(scenario total)", "", sub);
}

static void print_table(void)
{
	printf("\nPass 1: each call of each function fails alone (calls: made by the "
	       "operation without a fault).\n");
	print_rows(1);
	if (injected[2]) {
		printf("\nPass 2: a second fault in the recovery from a failed call (calls: of "
		       "that function, after the first fault, over all first faults).\n");
		print_rows(2);
	}
	printf("\nfaults injected: %u single + %u second = %u; partial states found: %u "
	       "single + %u second; qgroup leaks after the drain: %u\n", injected[1],
	       injected[2], injected[1] + injected[2], found[1], found[2], found[0]);
	printf("time:");
	for (int p = 0; p < T_COUNT; p++)
		printf(" %s %.1f s%s", phase_names[p], phase_time[p], p + 1 < T_COUNT ? "," : "\n");
}

int main(void)
{
	harness_start();
	signal(SIGALRM, on_alarm);
	btrfslayer_set_log_fn(log_fn, NULL);
	setvbuf(stdout, NULL, _IOLBF, 0);

	struct CMUnitTest tests[N_SCENARIOS + 1];
	for (size_t i = 0; i < N_SCENARIOS; i++)
		tests[i] = (struct CMUnitTest){
			.name = scenarios[i].name,
			.test_func = test_scenario,
			.initial_state = (void *)&scenarios[i],
		};
	tests[N_SCENARIOS] = (struct CMUnitTest){ .name = "drain", .test_func = test_drain };
	const struct CMUnitTest coverage[] = { cmocka_unit_test(test_every_btrfs_call_wrapped) };

	int failed = cmocka_run_group_tests_name("fault.coverage", coverage, NULL, NULL);
	failed += _cmocka_run_group_tests("fault.qgroup", tests, N_SCENARIOS + 1, start_qgroup,
					  NULL);
	if (access("/sys/fs/btrfs/features/simple_quota", F_OK) == 0)
		failed += _cmocka_run_group_tests("fault.simple", tests, N_SCENARIOS + 1,
						  start_simple, NULL);
	else
		printf("simple quotas: not in this kernel, mode skipped\n");
	print_table();
	for (size_t i = 0; i < n_records; i++)
		idset_free(&records[i].seen);
	free(records);
	free(homes);
	return failed ? 1 : 0;
}
