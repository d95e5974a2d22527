/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The hostile-input suite: one table of cases, each a call the library must
 * refuse (or survive) because its input came from a hostile caller or from a
 * tampered home.  For every case:
 *
 *   1. a fresh home is made (opened, unless the case is about opening), a
 *      real layer is created when the case needs one, and the case's plant
 *      (a symlink, a file, a fifo, a socket, a plain directory, a mount...)
 *      is put where it says;
 *   2. the sentinel trees outside every home (one on the btrfs, one on a
 *      tmpfs, and the directory where displaced things are parked) and the
 *      home itself are snapshotted: path, type, mode, owner, size, mtime,
 *      ctime, inode, subvolume flags and a content hash of every entry;
 *   3. the call runs: its return value must be the documented one, its error
 *      code too, and its message must name the thing (the id, the option,
 *      the path);
 *   4. the snapshots are taken again and must be identical (the home's too,
 *      unless the case is one that succeeds and changes it), and the library
 *      must not have logged an error;
 *   5. the plant is removed and home must still be usable: a new handle
 *      creates, finds, gets and removes a probe layer.
 *
 * Output: one line per case ("ok N category: name" or "not ok N ..."), then
 * a summary by category.  An optional argument runs only the cases whose
 * "category: name" contains it.  Exit status 0, 1 on any failure, 77 when
 * the loopback btrfs cannot be made (not with CI=true).
 *
 * To add cases, add rows (see struct row): what to plant (plant, at,
 * plant_arg; `at` is relative to the case's home, "" being home itself; a
 * missing parent directory of `at`, such as quotas/, is made for the case),
 * a real layer to make first (with_layer, with its storage options), the
 * call (op, call), the return value (expect), what the error message must
 * contain (needle, needle2; "@" stands for the full path of `at`), whether
 * a success may change home (changes_home), and an extra check (check, run
 * after a success, and after a failure too with check_always).  A quota
 * file with garbage in it, for example:
 *
 *	add((struct row){ "quota-file", "garbage", .plant = plant_file,
 *			  .at = "quotas/base", .plant_arg = "12abc\n",
 *			  .with_layer = "base", .op = OP_GET,
 *			  .call = { .id = "base" }, .expect = 0 });
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <inttypes.h>
#include <sys/inotify.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/un.h>
#include <sys/xattr.h>
#include <unistd.h>

#include "btrfslayer.h"
#include "harness.h"

#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))
#define MAX_CASES 1024
#define MAX_OWNED 4096
#define MAX_CATEGORIES 32

/* ---- the case table's vocabulary ------------------------------------------- */

enum op {
	OP_OPEN,	/* btrfslayer_open(home, opts, maps) */
	OP_CREATE,	/* btrfslayer_create(h, id, parent, flags, label, opts) */
	OP_CHILD,	/* btrfslayer_create(h, "child", id, ...): id as the parent */
	OP_REMOVE,
	OP_GET,
	OP_EXISTS,
	OP_PUT,
	OP_LAYERS,
	OP_STATUS,
	OP_USAGE,	/* btrfslayer_get_usage(h, id, SYNC, ...) */
};

static const char *const op_names[] = {
	[OP_OPEN] = "open", [OP_CREATE] = "create", [OP_CHILD] = "create-child-of",
	[OP_REMOVE] = "remove", [OP_GET] = "get", [OP_EXISTS] = "exists",
	[OP_PUT] = "put", [OP_LAYERS] = "layers", [OP_STATUS] = "status",
	[OP_USAGE] = "usage",
};

enum home_arg { HOME_CASE, HOME_NULL, HOME_EMPTY, HOME_LONG };

struct call {
	const char *id;			/* the id (OP_CHILD: the parent) */
	const char *parent;		/* OP_CREATE */
	uint32_t flags;
	const char *label;
	const char *const *opts;	/* open options or storage options */
	size_t n_opts;
	const btrfslayer_idmap *uids, *gids;
	size_t n_uids, n_gids;
	enum home_arg home;
	bool null_handle, null_out;
};

struct env;
/* Put something at `path`; 0 or an errno. */
typedef int (*plant_fn)(struct env *e, const char *path, const char *arg);
/* Extra checks after the call; NULL when fine, else why not (static text). */
typedef const char *(*check_fn)(struct env *e);

struct row {
	const char *category;
	const char *name;
	plant_fn plant;
	const char *at;
	const char *plant_arg;
	const char *with_layer;	/* a real layer to create before planting */
	const char *const *with_layer_opts;	/* its storage options */
	size_t n_with_layer_opts;
	enum op op;
	struct call call;
	int expect;		/* the return value */
	const char *needle;	/* in the error message; "@" = path of `at` */
	const char *needle2;
	bool changes_home;	/* a success that may change home */
	check_fn check;
	bool check_always;	/* check after a failed call too */
};

/* What one case works with. */
struct env {
	int index;
	char home[PATH_MAX];
	char plant_path[PATH_MAX];	/* what was planted, to undo */
	char displaced[PATH_MAX];	/* where what stood there went ("" if nothing) */
	char made_parent[PATH_MAX];	/* a directory made for the plant ("" if none) */
	bool planted, mounted;
	btrfslayer *h;
	btrfslayer_list *list;		/* OP_LAYERS / OP_STATUS result */
	char *path;			/* OP_GET result */
	const struct row *row;
};

static char sentinel_btrfs[PATH_MAX], sentinel_tmpfs[PATH_MAX], displaced_dir[PATH_MAX];
static char homes_dir[PATH_MAX];
static int logged_errors;
static char last_log[512];

static struct row rows[MAX_CASES];
static size_t n_rows;
static void *owned[MAX_OWNED];
static size_t n_owned;

static void *own(void *p)
{
	if (!p || n_owned == MAX_OWNED) {
		fprintf(stderr, "hostile: out of memory or MAX_OWNED too small\n");
		exit(1);
	}
	owned[n_owned++] = p;
	return p;
}

static char *ownf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static char *ownf(const char *fmt, ...)
{
	char *s = NULL;
	va_list ap;
	va_start(ap, fmt);
	if (vasprintf(&s, fmt, ap) < 0)
		s = NULL;
	va_end(ap);
	return own(s);
}

/* A string of n copies of c after prefix. */
static char *own_repeat(const char *prefix, char c, size_t n, const char *suffix)
{
	size_t p = strlen(prefix), s = strlen(suffix);
	char *buf = own(malloc(p + n + s + 1));
	memcpy(buf, prefix, p);
	memset(buf + p, c, n);
	memcpy(buf + p + n, suffix, s + 1);
	return buf;
}

/* snprintf() into a path buffer; a path that does not fit ends the run. */
static void pathf(char *buf, size_t len, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
static void pathf(char *buf, size_t len, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(buf, len, fmt, ap);
	va_end(ap);
	if (n < 0 || (size_t)n >= len) {
		fprintf(stderr, "hostile: path too long: %s\n", buf);
		exit(1);
	}
}

static void add(struct row r)
{
	if (n_rows == MAX_CASES) {
		fprintf(stderr, "hostile: MAX_CASES too small\n");
		exit(1);
	}
	rows[n_rows++] = r;
}

/* ---- plants ------------------------------------------------------------------ */

/* "S:x" is x in the btrfs sentinel, "T:x" in the tmpfs one, "@displaced" the
 * thing this plant displaced; anything else is used as it is. */
static const char *resolve_target(struct env *e, const char *arg, char *buf, size_t len)
{
	if (!strncmp(arg, "S:", 2))
		pathf(buf, len, "%s/%s", sentinel_btrfs, arg + 2);
	else if (!strncmp(arg, "T:", 2))
		pathf(buf, len, "%s/%s", sentinel_tmpfs, arg + 2);
	else if (!strcmp(arg, "@displaced"))
		pathf(buf, len, "%s", e->displaced);
	else
		pathf(buf, len, "%s", arg);
	return buf;
}

static int plant_symlink(struct env *e, const char *path, const char *arg)
{
	char target[PATH_MAX];
	return symlink(resolve_target(e, arg, target, sizeof(target)), path) == 0 ? 0 : errno;
}

static int plant_file(struct env *e, const char *path, const char *arg)
{
	(void)e;
	int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
	if (fd < 0)
		return errno;
	size_t len = arg ? strlen(arg) : 0;
	int r = write(fd, arg ? arg : "", len) == (ssize_t)len ? 0 : errno;
	close(fd);
	return r;
}

static int plant_fifo(struct env *e, const char *path, const char *arg)
{
	(void)e;
	(void)arg;
	return mkfifo(path, 0644) == 0 ? 0 : errno;
}

static int plant_socket(struct env *e, const char *path, const char *arg)
{
	(void)e;
	(void)arg;
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	if (strlen(path) >= sizeof(sa.sun_path))
		return ENAMETOOLONG;
	strcpy(sa.sun_path, path);
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return errno;
	int r = bind(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0 ? 0 : errno;
	close(fd);	/* the socket file stays */
	return r;
}

/* A plain directory (not a subvolume) with a file in it. */
static int plant_dir(struct env *e, const char *path, const char *arg)
{
	(void)e;
	(void)arg;
	char file[PATH_MAX + 8];
	if (mkdir(path, 0755) < 0)
		return errno;
	pathf(file, sizeof(file), "%s/file", path);
	return plant_file(e, file, "plain directory\n");
}

static int plant_tmpfs(struct env *e, const char *path, const char *arg)
{
	(void)arg;
	if (mkdir(path, 0755) < 0)
		return errno;
	if (mount("tmpfs", path, "tmpfs", 0, "size=64k") < 0)
		return errno;
	e->mounted = true;
	return 0;
}

static int plant_bind(struct env *e, const char *path, const char *arg)
{
	char source[PATH_MAX];
	if (mkdir(path, 0755) < 0)
		return errno;
	if (mount(resolve_target(e, arg, source, sizeof(source)), path, "none", MS_BIND, NULL) < 0)
		return errno;
	e->mounted = true;
	return 0;
}

/* A character device with the numbers of /dev/null (arg "null": its open
 * succeeds) or /dev/tty (arg "tty": its open fails, ENXIO, without a
 * controlling terminal), watched: device_opened() tells whether anything
 * opened it since (inotify IN_OPEN; an O_PATH open is not an open). */
static int device_watch = -1;

static int plant_chardev(struct env *e, const char *path, const char *arg)
{
	(void)e;
	dev_t dev = !strcmp(arg, "tty") ? makedev(5, 0) : makedev(1, 3);
	if (mknod(path, S_IFCHR | 0600, dev) < 0)
		return errno;
	if (device_watch >= 0)
		close(device_watch);
	device_watch = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
	if (device_watch < 0 || inotify_add_watch(device_watch, path, IN_OPEN) < 0)
		return errno;
	return 0;
}

/* The same at where remove writes the qgroup marker of layer "base" when
 * it cannot be an attribute of subvolumes/ (quotas/.staging/.qgroup-<its
 * subvolume id>, which only a running case knows): e->plant_path becomes
 * that.  As planted, remove never looks there (plant_marker_chardev_full
 * makes it). */
static int plant_marker_chardev(struct env *e, const char *path, const char *arg)
{
	btrfslayer_usage u;
	char dir[PATH_MAX];
	const char *slash = strrchr(path, '/');
	if (!slash || btrfslayer_get_usage(e->h, "base", 0, &u, sizeof(u), NULL) < 0)
		return EINVAL;
	pathf(dir, sizeof(dir), "%.*s", (int)(slash - path), path);
	pathf(e->plant_path, sizeof(e->plant_path), "%s/.qgroup-%" PRIu64, dir,
	      u.subvolume_id);
	return plant_chardev(e, e->plant_path, arg);
}

/* The same, with the list of markers on subvolumes/ filled first (2047
 * bytes of ids, where the library lets it grow to 2048), so that remove
 * writes the marker as a file, where the device is. */
static int plant_marker_chardev_full(struct env *e, const char *path, const char *arg)
{
	char subvolumes[PATH_MAX], list[4200];
	size_t len = 0;
	pathf(subvolumes, sizeof(subvolumes), "%s/subvolumes", e->home);
	/* ids of no subvolume there is (a retry finds them gone), the last
	 * one as long as it takes to end at 2047 */
	for (uint64_t id = 900000000; len + 10 <= 2032; id++)
		len += (size_t)snprintf(list + len, sizeof(list) - len, "%s%" PRIu64, len ? " " : "",
					id);
	list[len++] = ' ';
	while (len < 2047)
		list[len++] = '1';
	if (lsetxattr(subvolumes, "user.btrfslayer.qgroups", list, len, 0) < 0)
		return errno;
	return plant_marker_chardev(e, path, arg);
}

/* Nothing: what stood at the path is displaced, and nothing replaces it. */
static int plant_nothing(struct env *e, const char *path, const char *arg)
{
	(void)e;
	(void)path;
	(void)arg;
	return 0;
}

/* Remove what a plant put at path: never following a symlink. */
static int remove_plant(const char *path)
{
	struct stat st;
	if (lstat(path, &st) < 0)
		return errno == ENOENT ? 0 : errno;
	if (!S_ISDIR(st.st_mode))
		return unlink(path) == 0 ? 0 : errno;
	char file[PATH_MAX + 8];
	pathf(file, sizeof(file), "%s/file", path);
	unlink(file);	/* plant_dir's */
	return rmdir(path) == 0 ? 0 : errno;
}

static int do_plant(struct env *e)
{
	const struct row *row = e->row;
	struct stat st;
	pathf(e->plant_path, sizeof(e->plant_path), "%s%s%s", e->home,
		 *row->at ? "/" : "", row->at);
	e->displaced[0] = '\0';
	e->made_parent[0] = '\0';
	/* a plant in a directory home does not have yet (quotas/): make it */
	char *slash = strrchr(e->plant_path, '/');
	if (*row->at && slash) {
		pathf(e->made_parent, sizeof(e->made_parent), "%.*s",
		      (int)(slash - e->plant_path), e->plant_path);
		if (mkdir(e->made_parent, 0700) < 0)
			e->made_parent[0] = '\0';	/* it was there */
	}
	if (lstat(e->plant_path, &st) == 0) {
		pathf(e->displaced, sizeof(e->displaced), "%s/%d", displaced_dir, e->index);
		if (rename(e->plant_path, e->displaced) < 0)
			return errno;
	}
	e->planted = true;
	return row->plant(e, e->plant_path, row->plant_arg);
}

static int undo_plant(struct env *e)
{
	int r = 0;
	if (!e->planted)
		return 0;
	if (e->mounted && umount2(e->plant_path, MNT_DETACH) < 0)
		r = errno;
	e->mounted = false;
	if (r == 0)
		r = remove_plant(e->plant_path);
	if (r == 0 && e->displaced[0] && rename(e->displaced, e->plant_path) < 0)
		r = errno;
	if (r == 0 && e->made_parent[0] && rmdir(e->made_parent) < 0)
		r = errno;
	e->planted = false;
	return r;
}

/* ---- checks -------------------------------------------------------------------- */

static bool list_has(const btrfslayer_list *list, const char *key)
{
	for (size_t i = 0; i < btrfslayer_list_count(list); i++)
		if (!strcmp(btrfslayer_list_key(list, i), key))
			return true;
	return false;
}

static const char *list_value(const btrfslayer_list *list, const char *key)
{
	for (size_t i = 0; i < btrfslayer_list_count(list); i++)
		if (!strcmp(btrfslayer_list_key(list, i), key))
			return btrfslayer_list_value(list, i);
	return NULL;
}

/* layers(): only real layers, whatever else is planted under subvolumes/. */
static const char *check_only_real_layers(struct env *e)
{
	for (size_t i = 0; i < btrfslayer_list_count(e->list); i++) {
		const char *key = btrfslayer_list_key(e->list, i);
		if (strcmp(key, "base"))
			return "layers() lists something that is not a layer";
	}
	return list_has(e->list, "base") ? NULL : "layers() lost the real layer";
}

static const char *check_status_one_layer(struct env *e)
{
	const char *layers = list_value(e->list, "layers");
	return layers && !strcmp(layers, "1") ? NULL : "status counts a planted thing as a layer";
}

/* open with "btrfs.min_space=1G\0junk": the option ends at the NUL. */
static const char *check_min_space_1g(struct env *e)
{
	btrfslayer_list *status;
	if (btrfslayer_status(e->h, &status, NULL) < 0)
		return "status failed";
	const char *v = list_value(status, "min_space");
	const char *why = v && !strcmp(v, "1073741824") ? NULL : "min_space is not 1G";
	btrfslayer_list_free(status);
	return why;
}

/* ---- the cases --------------------------------------------------------------- */

static const struct {
	const char *id;
	const char *quoted;	/* as the message quotes it */
	const char *reason;
} bad_ids[] = {
	{ "", "\"\"", "empty" },
	{ ".", "\".\"", "leading '.'" },
	{ "..", "\"..\"", "leading '.'" },
	{ ".hidden", "\".hidden\"", "leading '.'" },
	{ ".tmp-0123456789abcdef", "\".tmp-0123456789abcdef\"", "reserved" },
	{ ".tomb-0123456789abcdef", "\".tomb-0123456789abcdef\"", "reserved" },
	{ "a/b", "\"a/b\"", "'/' is not allowed" },
	{ "../outside", "\"../outside\"", "leading '.'" },
	{ "x/../../../etc", "\"x/../../../etc\"", "'/' is not allowed" },
	{ "/abs", "\"/abs\"", "'/' is not allowed" },
	{ "a/", "\"a/\"", "'/' is not allowed" },
	{ "a b", "\"a b\"", "byte 0x20" },
	{ "a\nb", "\"a\\x0ab\"", "byte 0x0a" },
	{ "tab\t", "\"tab\\x09\"", "byte 0x09" },
	{ "bell\x07", "\"bell\\x07\"", "byte 0x07" },
	{ "del\x7f", "\"del\\x7f\"", "byte 0x7f" },
	{ "caf\xc3\xa9", "\"caf\\xc3\\xa9\"", "byte 0xc3" },
	{ "x\xff", "\"x\\xff\"", "byte 0xff" },
	{ "star*", "\"star*\"", "'*' is not allowed" },
	{ "back\\slash", "\"back\\\\slash\"", "byte 0x5c" },
	{ "colon:x", "\"colon:x\"", "':' is not allowed" },
	{ "semi;rm -rf /", "\"semi;rm -rf /\"", "';' is not allowed" },
	{ "$(id)", "\"$(id)\"", "'$' is not allowed" },
	{ "`id`", "\"`id`\"", "'`' is not allowed" },
	{ "fmt%s%n", "\"fmt%s%n\"", "'%' is not allowed" },
	{ "quote'x", "\"quote'x\"", "byte 0x27" },
	{ "dq\"x", "\"dq\\\"x\"", "'\"' is not allowed" },
	{ "~root", "\"~root\"", "'~' is not allowed" },
	{ "glob?", "\"glob?\"", "'?' is not allowed" },
};

static void add_id_cases(void)
{
	static const enum op ops[] = { OP_CREATE, OP_CHILD, OP_REMOVE, OP_GET, OP_EXISTS, OP_PUT };
	const char *long_ids[] = {
		own_repeat("", 'a', BTRFSLAYER_ID_MAX + 1, ""),
		own_repeat("", 'a', 4096, ""),
		own_repeat("", 'z', 1 << 20, ""),
	};
	for (size_t o = 0; o < ARRAY_SIZE(ops); o++) {
		const char *what = ops[o] == OP_CHILD ? "parent id" : "layer id";
		bool parent = ops[o] == OP_CHILD;
		for (size_t i = 0; i < ARRAY_SIZE(bad_ids); i++)
			add((struct row){ "ids", ownf("%s %s", op_names[ops[o]], bad_ids[i].quoted),
					  .with_layer = parent ? NULL : "base", .op = ops[o],
					  .call = { .id = bad_ids[i].id }, .expect = -EINVAL,
					  .needle = ownf("invalid %s %s", what, bad_ids[i].quoted),
					  .needle2 = bad_ids[i].reason });
		for (size_t i = 0; i < ARRAY_SIZE(long_ids); i++) {
			char c = long_ids[i][0];
			add((struct row){ "ids", ownf("%s %zu-byte id", op_names[ops[o]],
						      strlen(long_ids[i])),
					  .op = ops[o], .call = { .id = long_ids[i] }, .expect = -EINVAL,
					  .needle = ownf("invalid %s \"%c%c%c%c", what, c, c, c, c),
					  .needle2 = "longer than 255 bytes" });
		}
		/* a NULL parent means "no parent": only the id itself can be NULL */
		if (!parent)
			add((struct row){ "ids", ownf("%s NULL id", op_names[ops[o]]), .op = ops[o],
					  .call = { .id = NULL }, .expect = -EINVAL,
					  .needle = ownf("invalid %s: NULL", what) });
	}
	/* a bad id as the new layer, next to a fine parent */
	for (size_t i = 0; i < 4; i++)
		add((struct row){ "ids", ownf("create %s from a real parent", bad_ids[6 + i].quoted),
				  .with_layer = "base", .op = OP_CREATE,
				  .call = { .id = bad_ids[6 + i].id, .parent = "base" },
				  .expect = -EINVAL,
				  .needle = ownf("invalid layer id %s", bad_ids[6 + i].quoted) });
}

static void add_argument_cases(void)
{
	static const enum op ops[] = { OP_CREATE, OP_REMOVE, OP_GET, OP_EXISTS, OP_PUT,
				       OP_LAYERS, OP_STATUS };
	for (size_t o = 0; o < ARRAY_SIZE(ops); o++)
		add((struct row){ "arguments", ownf("%s with a NULL handle", op_names[ops[o]]),
				  .op = ops[o], .call = { .id = "x", .null_handle = true },
				  .expect = -EINVAL, .needle = "NULL" });
	add((struct row){ "arguments", "get with no place for the path", .with_layer = "base",
			  .op = OP_GET, .call = { .id = "base", .null_out = true },
			  .expect = -EINVAL, .needle = "no place for the path" });
	add((struct row){ "arguments", "layers with no place for the list", .op = OP_LAYERS,
			  .call = { .null_out = true }, .expect = -EINVAL, .needle = "NULL" });
	add((struct row){ "arguments", "status with no place for the list", .op = OP_STATUS,
			  .call = { .null_out = true }, .expect = -EINVAL, .needle = "NULL" });
	add((struct row){ "arguments", "open with no place for the handle", .op = OP_OPEN,
			  .call = { .null_out = true }, .expect = -EINVAL, .needle = "out is NULL" });
	add((struct row){ "arguments", "open a NULL home", .op = OP_OPEN,
			  .call = { .home = HOME_NULL }, .expect = -EINVAL, .needle = "home is empty" });
	add((struct row){ "arguments", "open an empty home", .op = OP_OPEN,
			  .call = { .home = HOME_EMPTY }, .expect = -EINVAL, .needle = "home is empty" });
	add((struct row){ "arguments", "open a home longer than PATH_MAX", .op = OP_OPEN,
			  .call = { .home = HOME_LONG }, .expect = -ENAMETOOLONG,
			  .needle = "longer than PATH_MAX" });

	static const uint32_t bad_flags[] = { 1u << 1, 1u << 2, 1u << 31, 0xffffffffu, 0xfffffffeu };
	for (size_t i = 0; i < ARRAY_SIZE(bad_flags); i++)
		add((struct row){ "arguments", ownf("create with flags 0x%x", bad_flags[i]),
				  .with_layer = "base", .op = OP_CREATE,
				  .call = { .id = "x", .parent = i % 2 ? "base" : NULL,
					    .flags = bad_flags[i] },
				  .expect = -EINVAL, .needle = "unknown flags",
				  .needle2 = ownf("0x%x", bad_flags[i] & ~BTRFSLAYER_CREATE_MASK) });

	const char *bad_labels[] = {
		"not-a-label", "a:b", "u:r:t:", "u:r:t:s0\n", "u:r:t:s0;reboot", "../x:y:z",
		"u:r:t:s0 s1", ":r:t", "u::t", own_repeat("u:r:t:s0", 'c', 5000, ""),
	};
	for (size_t i = 0; i < ARRAY_SIZE(bad_labels); i++)
		add((struct row){ "arguments", ownf("create with mount label #%zu", i),
				  .op = OP_CREATE, .call = { .id = "x", .label = bad_labels[i] },
				  .expect = -EINVAL, .needle = "invalid mount label" });

	static const btrfslayer_idmap root[] = { { 0, 100000, 65536 } };
	static const btrfslayer_idmap no_root[] = { { 1, 100000, 65536 } };
	static const btrfslayer_idmap overlap_c[] = { { 0, 100000, 10 }, { 5, 300000, 10 } };
	static const btrfslayer_idmap overlap_h[] = { { 0, 100000, 10 }, { 10, 100005, 10 } };
	static const btrfslayer_idmap past_2_32[] = { { 0, 0xfffffff0u, 0x20 } };
	static const btrfslayer_idmap c_past_2_32[] = { { 0, 0, 10 }, { 0xffffffffu, 10, 2 } };
	static const btrfslayer_idmap empty_range[] = { { 0, 100000, 0 } };
	static const btrfslayer_idmap twice_root[] = { { 0, 100000, 1 }, { 0, 200000, 1 } };
	static const struct {
		const char *name;
		const btrfslayer_idmap *map;
		size_t n;
		const char *needle;
	} maps[] = {
		{ "no container root", no_root, 1, "container id 0 is not mapped" },
		{ "container ranges overlap", overlap_c, 2, "overlap" },
		{ "host ranges overlap", overlap_h, 2, "overlap" },
		{ "host range past 2^32", past_2_32, 1, "2^32" },
		{ "container range past 2^32", c_past_2_32, 2, "2^32" },
		{ "empty range", empty_range, 1, "empty" },
		{ "root mapped twice", twice_root, 2, "overlap" },
		{ "NULL with entries", NULL, 3, "no array" },
	};
	for (size_t i = 0; i < ARRAY_SIZE(maps); i++) {
		add((struct row){ "arguments", ownf("open with uid map: %s", maps[i].name),
				  .op = OP_OPEN,
				  .call = { .uids = maps[i].map, .n_uids = maps[i].n, .gids = root,
					    .n_gids = 1 },
				  .expect = -EINVAL, .needle = "uid map", .needle2 = maps[i].needle });
		add((struct row){ "arguments", ownf("open with gid map: %s", maps[i].name),
				  .op = OP_OPEN,
				  .call = { .uids = root, .n_uids = 1, .gids = maps[i].map,
					    .n_gids = maps[i].n },
				  .expect = -EINVAL, .needle = "gid map", .needle2 = maps[i].needle });
	}
}

/* A list of one option, owned. */
static const char *const *one(const char *opt)
{
	const char **list = own(malloc(sizeof(*list)));
	list[0] = opt;
	return list;
}

static const char *const *two(const char *a, const char *b)
{
	const char **list = own(malloc(2 * sizeof(*list)));
	list[0] = a;
	list[1] = b;
	return list;
}

/* Option-list hostility shared by open options and storage options. */
static void add_option_list_cases(const char *category, enum op op, const char *what,
				  const char *known_key, const char *nul_in_key,
				  const char *nul_in_value)
{
	const char *kv = ownf("%s=1G", known_key);
	const struct {
		const char *name;
		const char *const *opts;
		size_t n;
		const char *needle, *needle2;
	} cases[] = {
		{ "duplicate key", two(kv, kv), 2, "duplicate key", known_key },
		{ "duplicate key in another case", two(kv, ownf("%s=2G", known_key)), 2,
		  "duplicate key", NULL },
		{ "duplicate key, upper case", two(kv, ownf("  %c%s = 1G", 'A' + (known_key[0] - 'a'),
							 known_key + 1)), 2, "duplicate key", NULL },
		{ "empty value", one(ownf("%s=", known_key)), 1, "empty value", known_key },
		{ "blank value", one(ownf("%s= \t ", known_key)), 1, "empty value", NULL },
		{ "empty key", one("=1G"), 1, "empty key", NULL },
		{ "blank key", one(" \t=1G"), 1, "empty key", NULL },
		{ "only '='", one("="), 1, "empty key", NULL },
		{ "no '='", one(known_key), 1, "expected key=value", known_key },
		{ "empty string", one(""), 1, "expected key=value", NULL },
		{ "space inside the key", one("bad key=1"), 1, "byte 0x20", "\"bad key=1\"" },
		{ "newline inside the key", one("bad\nkey=1"), 1, "byte 0x0a", "\"bad\\x0akey=1\"" },
		{ "slash in the key", one("../key=1"), 1, "'/' is not allowed", NULL },
		{ "non-ASCII key", one("k\xc3\xa9y=1"), 1, "byte 0xc3", NULL },
		{ "a NUL inside the key ends the string", one(nul_in_key), 1,
		  "expected key=value", NULL },
		{ "a NUL right after '=' ends the string", one(nul_in_value), 1,
		  "empty value", NULL },
		{ "4097-byte string", one(own_repeat(ownf("%s=", known_key), '1',
						     4097 - strlen(known_key) - 1, "")), 1,
		  "longer than 4096 bytes", NULL },
		{ "64 KiB key", one(own_repeat("", 'k', 65536, "=1")), 1, "longer than 4096 bytes",
		  NULL },
		{ "1 MiB value", one(own_repeat(ownf("%s=", known_key), '9', 1 << 20, "")), 1,
		  "longer than 4096 bytes", NULL },
		{ "NULL entry", two(kv, NULL), 2, "at index 1: NULL", NULL },
		{ "NULL list with entries", NULL, 3, "NULL with 3 entries", NULL },
		{ "unknown key", one("color=blue"), 1, "unknown", "\"color\"" },
		{ "unknown key before a known one", two("zzz=1", kv), 2, "unknown", "\"zzz\"" },
	};
	for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
		const char *needle = cases[i].needle;
		/* the message names the list it is about */
		const char *needle2 = cases[i].needle2 ? cases[i].needle2 : what;
		struct row r = { category, cases[i].name, .op = op, .expect = -EINVAL,
				 .needle = needle, .needle2 = needle2 };
		r.call.opts = cases[i].opts;
		r.call.n_opts = cases[i].n;
		r.call.id = "x";
		add(r);
	}
}

static void add_open_option_cases(void)
{
	add_option_list_cases("open-options", OP_OPEN, "option", "btrfs.min_space",
			      "btrfs.min\0_space=1G", "btrfs.min_space=\0" "1G");
	const char *unknown[] = { "size=10G", "btrfs.min_space.x=1G", "dm.basesize=10G",
				  "overlay2.size=1G", "btrfs.min-space=1G", "btrfs_min_space=1G" };
	for (size_t i = 0; i < ARRAY_SIZE(unknown); i++)
		add((struct row){ "open-options", ownf("unknown option %s", unknown[i]),
				  .op = OP_OPEN, .call = { .opts = one(unknown[i]), .n_opts = 1 },
				  .expect = -EINVAL, .needle = "unknown option" });
	/* a C string ends at its first NUL: what follows is not seen */
	add((struct row){ "open-options", "NUL ends the option (\"1G\\0junk\")", .op = OP_OPEN,
			  .call = { .opts = one("btrfs.min_space=1G\0junk"), .n_opts = 1 },
			  .expect = 0, .changes_home = true, .check = check_min_space_1g });
	add((struct row){ "open-options", "NUL ends the option (\"1G\\0=2G\")", .op = OP_OPEN,
			  .call = { .opts = one("btrfs.min_space=1G\0=2G"), .n_opts = 1 },
			  .expect = 0, .changes_home = true, .check = check_min_space_1g });
}

static void add_size_cases(void)
{
	static const struct {
		const char *size;
		int code;
	} sizes[] = {
		{ "abc", -EINVAL }, { "-1", -EINVAL }, { "-1G", -EINVAL }, { "+1G", -EINVAL },
		{ "1.", -EINVAL }, { ".5G", -EINVAL }, { "1..5G", -EINVAL }, { "1.5.5G", -EINVAL },
		{ "1e9", -EINVAL }, { "0x10", -EINVAL }, { "1  G", -EINVAL }, { "1\tG", -EINVAL },
		{ "1GG", -EINVAL }, { "1GiBB", -EINVAL }, { "1Gb2", -EINVAL }, { "1X", -EINVAL },
		{ "1k1", -EINVAL }, { "G", -EINVAL }, { "iB", -EINVAL }, { "NaN", -EINVAL },
		{ "inf", -EINVAL }, { "1,5G", -EINVAL }, { "1_000", -EINVAL },
		{ "\xef\xbc\x91G", -EINVAL }, { "1G\n2", -EINVAL }, { "1E", -EINVAL },
		{ "1Z", -EINVAL }, { "", -EINVAL }, { "1 2", -EINVAL }, { "1.5 .5G", -EINVAL },
		{ "18446744073709551616", -ERANGE }, { "99999999999999999999999", -ERANGE },
		{ "16384P", -ERANGE }, { "17179869184G", -ERANGE }, { "16777216T", -ERANGE },
		{ "18014398509481984K", -ERANGE }, { "18446744073709551615.99999K", -ERANGE },
	};
	for (size_t i = 0; i < ARRAY_SIZE(sizes); i++) {
		const char *opt = ownf("btrfs.min_space=%s", sizes[i].size);
		add((struct row){ "sizes", ownf("btrfs.min_space=%s", sizes[i].size), .op = OP_OPEN,
				  .call = { .opts = one(opt), .n_opts = 1 }, .expect = sizes[i].code,
				  .needle = "invalid option", .needle2 = "btrfs.min_space" });
	}
	/* the same sizes as create's size= (but "", an empty option), with a
	 * parent or without */
	for (size_t i = 0; i < ARRAY_SIZE(sizes); i++)
		if (*sizes[i].size)
			add((struct row){ "sizes", ownf("size=%s", sizes[i].size), .with_layer = "base",
				  .op = OP_CREATE,
				  .call = { .id = "x", .parent = i % 2 ? "base" : NULL,
					    .opts = one(ownf("size=%s", sizes[i].size)), .n_opts = 1 },
				  .expect = sizes[i].code, .needle = "invalid size" });
	static const char *const zeros[] = { "0", "0k", "0.0G", "0.5", " 0 " };
	for (size_t i = 0; i < ARRAY_SIZE(zeros); i++)
		add((struct row){ "sizes", ownf("size=%s", zeros[i]), .op = OP_CREATE,
				  .call = { .id = "x", .opts = one(ownf("size=%s", zeros[i])),
					    .n_opts = 1 },
				  .expect = -EINVAL, .needle = "above 0" });
	/* a thousand digits is out of range, not a crash */
	add((struct row){ "sizes", "btrfs.min_space=<1000 digits>", .op = OP_OPEN,
			  .call = { .opts = one(own_repeat("btrfs.min_space=", '9', 1000, "")),
				    .n_opts = 1 },
			  .expect = -ERANGE, .needle = "invalid option btrfs.min_space" });
	add((struct row){ "sizes", "btrfs.min_space=1.<1000 digits>x", .op = OP_OPEN,
			  .call = { .opts = one(own_repeat("btrfs.min_space=1.", '9', 1000, "x")),
				    .n_opts = 1 },
			  .expect = -EINVAL, .needle = "invalid option btrfs.min_space" });
}

static void add_storage_option_cases(void)
{
	add_option_list_cases("storage-options", OP_CREATE, "storage option", "size",
			      "si\0ze=1G", "size=\0" "1G");
	const char *unknown[] = { "SIZE2=1", "size.x=1", "btrfs.min_space=1G", "dm.basesize=1G",
				  "overlay.size=1", "sizee=1G" };
	for (size_t i = 0; i < ARRAY_SIZE(unknown); i++)
		add((struct row){ "storage-options", ownf("unknown storage option %s", unknown[i]),
				  .with_layer = "base", .op = OP_CREATE,
				  .call = { .id = "x", .parent = i % 2 ? "base" : NULL,
					    .opts = one(unknown[i]), .n_opts = 1 },
				  .expect = -EINVAL, .needle = "unknown storage option" });
}

static void add_home_plant_cases(void)
{
	const struct {
		const char *name;
		plant_fn plant;
		const char *arg;
		int code;
		const char *needle2;
	} plants[] = {
		{ "a symlink to a directory outside", plant_symlink, "S:dir", -ELOOP, "symbolic link" },
		{ "a symlink to a subvolume outside", plant_symlink, "S:subvol", -ELOOP,
		  "symbolic link" },
		{ "a symlink to another filesystem", plant_symlink, "T:dir", -ELOOP, "symbolic link" },
		{ "a dangling symlink", plant_symlink, "/nonexistent/home", -ELOOP, "symbolic link" },
		{ "a relative symlink", plant_symlink, "../sentinel", -ELOOP, "symbolic link" },
		{ "a file", plant_file, "not a directory\n", -ENOTDIR, "open home" },
		{ "a fifo", plant_fifo, NULL, -ENOTDIR, "open home" },
		{ "a socket", plant_socket, NULL, -ENOTDIR, "open home" },
		{ "a tmpfs mount", plant_tmpfs, NULL, -BTRFSLAYER_ENOTBTRFS, "open home" },
	};
	for (size_t i = 0; i < ARRAY_SIZE(plants); i++)
		add((struct row){ "planted-home", ownf("home is %s", plants[i].name),
				  .plant = plants[i].plant, .at = "", .plant_arg = plants[i].arg,
				  .op = OP_OPEN, .expect = plants[i].code, .needle = "@",
				  .needle2 = plants[i].needle2 });
	/* after open: the string path get() hands out must still lead to the layer */
	const struct {
		const char *name;
		const char *at;
		plant_fn plant;
		const char *arg;
	} moved[] = {
		{ "home replaced by a symlink to a directory outside", "", plant_symlink, "S:dir" },
		{ "home replaced by a symlink to a subvolume outside", "", plant_symlink,
		  "S:subvol" },
		{ "home moved away", "", plant_nothing, NULL },
		{ "subvolumes/ replaced by a symlink outside", "subvolumes", plant_symlink, "S:dir" },
		{ "subvolumes/ replaced by a plain directory", "subvolumes", plant_dir, NULL },
		{ "subvolumes/ replaced by a tmpfs mount", "subvolumes", plant_tmpfs, NULL },
	};
	for (size_t i = 0; i < ARRAY_SIZE(moved); i++)
		add((struct row){ "planted-home", ownf("after open, %s: get", moved[i].name),
				  .plant = moved[i].plant, .at = moved[i].at,
				  .plant_arg = moved[i].arg, .with_layer = "base", .op = OP_GET,
				  .call = { .id = "base" }, .expect = -ESTALE,
				  .needle = "no longer leads to the layer", .needle2 = "/subvolumes/base" });
}

/* What a directory of the layout (subvolumes/, quotas/) may be replaced by. */
static void add_layout_plant_cases(const char *category, const char *dir)
{
	const struct {
		const char *name;
		plant_fn plant;
		const char *arg;
		int code;
		const char *needle2;
	} plants[] = {
		{ "a symlink to a directory outside", plant_symlink, "S:dir", -ENOTDIR,
		  "symbolic link" },
		{ "a symlink to a subvolume outside", plant_symlink, "S:subvol", -ENOTDIR,
		  "symbolic link" },
		{ "a symlink to /", plant_symlink, "/", -ENOTDIR, "symbolic link" },
		{ "a symlink to another filesystem", plant_symlink, "T:dir", -ENOTDIR,
		  "symbolic link" },
		{ "a relative symlink out of home", plant_symlink, "../../sentinel/dir", -ENOTDIR,
		  "symbolic link" },
		{ "a symlink to home itself", plant_symlink, ".", -ENOTDIR, "symbolic link" },
		{ "a dangling symlink", plant_symlink, "nowhere", -ENOTDIR, "symbolic link" },
		{ "a file", plant_file, "x", -ENOTDIR, "not a directory" },
		{ "an empty file", plant_file, "", -ENOTDIR, "not a directory" },
		{ "a fifo", plant_fifo, NULL, -ENOTDIR, "not a directory" },
		{ "a socket", plant_socket, NULL, -ENOTDIR, "not a directory" },
		{ "a tmpfs mount", plant_tmpfs, NULL, -EXDEV, "mount point" },
		{ "a bind mount of a directory outside", plant_bind, "S:dir", -EXDEV, "mount point" },
		{ "a bind mount of a subvolume outside", plant_bind, "S:subvol", -EXDEV,
		  "mount point" },
		{ "a bind mount of another filesystem", plant_bind, "T:dir", -EXDEV, "mount point" },
	};
	for (size_t i = 0; i < ARRAY_SIZE(plants); i++)
		add((struct row){ category, ownf("%s/ is %s", dir, plants[i].name),
				  .plant = plants[i].plant, .at = dir,
				  .plant_arg = plants[i].arg, .op = OP_OPEN, .expect = plants[i].code,
				  .needle = "@", .needle2 = plants[i].needle2 });
}

/* usage() of a layer limited to 8M: its limit is what the kernel has. */
static const char *check_limit_8m(struct env *e)
{
	btrfslayer_usage u;
	if (btrfslayer_get_usage(e->h, "base", 0, &u, sizeof(u), NULL) < 0)
		return "usage failed";
	if (u.limit != 8 << 20)
		return "the layer's limit changed";
	return u.recorded_limit == 0 ? NULL : "garbage was read as a recorded limit";
}

/* Nothing opened the device plant_chardev() planted.  (The library may
 * have unlinked it, as a marker of its own: the watch then says IN_IGNORED.) */
static const char *check_device_unopened(struct env *e)
{
	(void)e;
	char buf[4096] __attribute__((aligned(__alignof__(struct inotify_event))));
	ssize_t n;
	while ((n = read(device_watch, buf, sizeof(buf))) > 0) {
		for (ssize_t at = 0; at < n;) {
			const struct inotify_event *ev = (const struct inotify_event *)(buf + at);
			if (ev->mask & IN_OPEN)
				return "the planted device was opened";
			at += (ssize_t)(sizeof(*ev) + ev->len);
		}
	}
	return n < 0 && errno == EAGAIN ? NULL : "cannot read the device's inotify watch";
}

/* ... and a read of the quota file said why it ignored it: not the
 * driver's errno (the last log line, as get and usage read the file). */
static const char *check_device_limit_8m(struct env *e)
{
	const char *why = check_device_unopened(e);
	if (!why && e->row->op != OP_EXISTS && !strstr(last_log, "is not a regular file"))
		why = "the quota file was not refused as a device";
	return why ? why : check_limit_8m(e);
}

/* A remove that could not write its marker leaves the layer whole. */
static const char *check_device_layer_kept(struct env *e)
{
	btrfslayer_usage u;
	const char *why = check_device_unopened(e);
	if (why)
		return why;
	if (btrfslayer_exists(e->h, "base", NULL) != 1)
		return "the layer is gone, though its qgroup could not be recorded";
	if (btrfslayer_get_usage(e->h, "base", 0, &u, sizeof(u), NULL) < 0)
		return "usage failed";
	return u.limit == 8 << 20 && u.recorded_limit == 8 << 20 ? NULL
		: "the layer's limit or its record changed";
}

/* A device node where the library keeps a regular file (quotas/<id>, a
 * qgroup marker, .lock) is never opened: an open can act, and its driver's
 * errno would be taken for the file's.  The quota file is ignored; the
 * marker and the lock file fail their call with -EINVAL. */
static void add_device_cases(void)
{
	static const struct {
		const char *name;
		const char *arg;
	} devices[] = {
		{ "a character device (/dev/null's numbers)", "null" },
		{ "a character device (/dev/tty's numbers)", "tty" },
	};
	static const enum op ops[] = { OP_GET, OP_USAGE, OP_EXISTS };
	static const char *const sized[] = { "size=8M" };
	for (size_t i = 0; i < ARRAY_SIZE(devices); i++) {
		for (size_t j = 0; j < ARRAY_SIZE(ops); j++)
			add((struct row){ "devices", ownf("%s: quotas/<id> is %s", op_names[ops[j]],
							  devices[i].name),
					  .plant = plant_chardev, .at = "quotas/base",
					  .plant_arg = devices[i].arg, .with_layer = "base",
					  .with_layer_opts = sized, .n_with_layer_opts = 1,
					  .op = ops[j], .call = { .id = "base" },
					  .expect = ops[j] == OP_EXISTS, .check = check_device_limit_8m });
		add((struct row){ "devices", ownf("remove: %s where the qgroup marker would be a "
						  "file", devices[i].name),
				  .plant = plant_marker_chardev, .at = "quotas/.staging/.qgroup-of-base",
				  .plant_arg = devices[i].arg, .with_layer = "base",
				  .with_layer_opts = sized, .n_with_layer_opts = 1, .op = OP_REMOVE,
				  .call = { .id = "base" }, .expect = 0, .changes_home = true,
				  .check = check_device_unopened, .check_always = true });
		add((struct row){ "devices", ownf("remove: the qgroup marker is %s", devices[i].name),
				  .plant = plant_marker_chardev_full, .at = "quotas/.staging/.qgroup-of-base",
				  .plant_arg = devices[i].arg, .with_layer = "base",
				  .with_layer_opts = sized, .n_with_layer_opts = 1, .op = OP_REMOVE,
				  .call = { .id = "base" }, .expect = -EINVAL, .needle = "@",
				  .needle2 = "not a regular file", .changes_home = true,
				  .check = check_device_layer_kept, .check_always = true });
		add((struct row){ "devices", ownf("open: .lock is %s", devices[i].name),
				  .plant = plant_chardev, .at = ".lock", .plant_arg = devices[i].arg,
				  .op = OP_OPEN, .expect = -EINVAL, .needle = "@",
				  .needle2 = "not a regular file", .check = check_device_unopened,
				  .check_always = true,
				  /* home's mtime: open made subvolumes/ and quotas/,
				   * and took them back */
				  .changes_home = true });
	}
}

/* HOME/quotas/<id> comes from disk: whatever is there, get() (which applies
 * the recorded limit again), usage() and exists() neither fail nor take it
 * as a limit nor follow it out of home; the layer keeps the limit it has. */
static void add_quota_file_cases(void)
{
	static const struct {
		const char *name;
		plant_fn plant;
		const char *arg;
	} plants[] = {
		{ "letters", plant_file, "abc" },
		{ "digits and letters", plant_file, "12abc\n" },
		{ "empty", plant_file, "" },
		{ "a newline", plant_file, "\n" },
		{ "zero", plant_file, "0" },
		{ "zero with a newline", plant_file, "0\n" },
		{ "negative", plant_file, "-1" },
		{ "a plus sign", plant_file, "+1048576" },
		{ "leading space", plant_file, " 1048576" },
		{ "trailing space", plant_file, "1048576 " },
		{ "two newlines", plant_file, "1048576\n\n" },
		{ "CRLF", plant_file, "1048576\r\n" },
		{ "a unit", plant_file, "1G" },
		{ "a fraction", plant_file, "1.5" },
		{ "hex", plant_file, "0x100000" },
		{ "an exponent", plant_file, "1e9" },
		{ "2^64", plant_file, "18446744073709551616" },
		{ "30 digits", plant_file, "999999999999999999999999999999" },
		{ "a NUL inside", plant_file, "10\x01" "48576" },
		{ "two numbers", plant_file, "1048576\n2097152\n" },
		{ "binary", plant_file, "\xff\xfe\x00" },
		{ "a symlink to a file outside", plant_symlink, "S:dir/file" },
		{ "a symlink to /dev/zero", plant_symlink, "/dev/zero" },
		{ "a dangling symlink", plant_symlink, "nowhere" },
		{ "a fifo", plant_fifo, NULL },
		{ "a socket", plant_socket, NULL },
		{ "a directory", plant_dir, NULL },
		{ "a tmpfs mount", plant_tmpfs, NULL },
		{ "a bind mount of a directory outside", plant_bind, "S:dir" },
	};
	static const enum op ops[] = { OP_GET, OP_USAGE, OP_EXISTS };
	static const char *const sized[] = { "size=8M" };
	for (size_t i = 0; i < ARRAY_SIZE(plants); i++)
		for (size_t j = 0; j < ARRAY_SIZE(ops); j++)
			add((struct row){ "quota-file",
					  ownf("%s: quotas/<id> is %s", op_names[ops[j]],
					       plants[i].name),
					  .plant = plants[i].plant, .at = "quotas/base",
					  .plant_arg = plants[i].arg, .with_layer = "base",
					  .with_layer_opts = sized, .n_with_layer_opts = 1,
					  .op = ops[j], .call = { .id = "base" }, .expect = ops[j] == OP_EXISTS,
					  .check = check_limit_8m });
}

/* What stands at the row's id is not a layer (`why`, in the message): get,
 * remove and create-from-parent fail with -ENOENT naming the path, and
 * exists() says 0. */
static void add_not_a_layer_rows(struct row r, const char *what, const char *why)
{
	static const struct {
		enum op op;
		const char *verb;
	} calls[] = {
		{ OP_GET, "get" }, { OP_REMOVE, "remove" }, { OP_CHILD, "create from parent" },
	};
	for (size_t i = 0; i < ARRAY_SIZE(calls); i++) {
		r.op = calls[i].op, r.expect = -ENOENT, r.needle = "@", r.needle2 = why;
		r.name = ownf("%s: %s", calls[i].verb, what);
		add(r);
	}
	r.op = OP_EXISTS, r.expect = 0, r.needle = r.needle2 = NULL;
	r.name = ownf("exists: %s", what);
	add(r);
}

static void add_layer_plant_cases(void)
{
	const struct {
		const char *name;
		plant_fn plant;
		const char *arg;
		const char *why;	/* what the message says it is */
	} plants[] = {
		{ "a symlink to a subvolume outside", plant_symlink, "S:subvol", "symbolic link" },
		{ "a symlink to a read-only subvolume outside", plant_symlink, "S:ro-subvol",
		  "symbolic link" },
		{ "a symlink to a directory outside", plant_symlink, "S:dir", "symbolic link" },
		{ "a symlink to /", plant_symlink, "/", "symbolic link" },
		{ "a relative symlink out of home", plant_symlink, "../../../sentinel/subvol",
		  "symbolic link" },
		{ "a symlink to a real layer", plant_symlink, "base", "symbolic link" },
		{ "a dangling symlink", plant_symlink, "nowhere", "symbolic link" },
		{ "a symlink to another filesystem", plant_symlink, "T:dir", "symbolic link" },
		{ "a file", plant_file, "not a layer\n", "a file" },
		{ "a fifo", plant_fifo, NULL, "a file" },
		{ "a socket", plant_socket, NULL, "a file" },
		{ "a plain directory", plant_dir, NULL, "not a btrfs subvolume" },
		{ "a tmpfs mount", plant_tmpfs, NULL, "mount point" },
		{ "a bind mount of a subvolume outside", plant_bind, "S:subvol", "mount point" },
		{ "a bind mount of a read-only subvolume outside", plant_bind, "S:ro-subvol",
		  "mount point" },
		{ "a bind mount of a directory outside", plant_bind, "S:dir", "mount point" },
	};
	for (size_t i = 0; i < ARRAY_SIZE(plants); i++) {
		struct row r = { "planted-layer", NULL, .plant = plants[i].plant,
				 .at = "subvolumes/x", .plant_arg = plants[i].arg,
				 .with_layer = "base", .call = { .id = "x" } };
		add_not_a_layer_rows(r, ownf("subvolumes/x is %s", plants[i].name), plants[i].why);
		r.op = OP_CREATE, r.expect = -EEXIST, r.needle = "@", r.needle2 = "create layer";
		r.name = ownf("create over: subvolumes/x is %s", plants[i].name);
		add(r);
		r.op = OP_LAYERS, r.expect = 0, r.needle = r.needle2 = NULL, r.check = check_only_real_layers;
		r.name = ownf("layers: subvolumes/x is %s", plants[i].name);
		add(r);
		r.op = OP_STATUS, r.check = check_status_one_layer;
		r.name = ownf("status: subvolumes/x is %s", plants[i].name);
		add(r);
	}
}

/* A real layer, moved out of home and replaced by something leading to it. */
static void add_swapped_layer_cases(void)
{
	const struct {
		const char *name;
		plant_fn plant;
		const char *arg;
		const char *why;
	} swaps[] = {
		{ "a symlink to where it went", plant_symlink, "@displaced", "symbolic link" },
		{ "a bind mount of where it went", plant_bind, "@displaced", "mount point" },
		{ "a plain directory", plant_dir, NULL, "not a btrfs subvolume" },
		{ "a symlink to a subvolume outside", plant_symlink, "S:subvol", "symbolic link" },
	};
	for (size_t i = 0; i < ARRAY_SIZE(swaps); i++) {
		struct row r = { "swapped-layer", NULL, .plant = swaps[i].plant,
				 .at = "subvolumes/victim", .plant_arg = swaps[i].arg,
				 .with_layer = "victim", .call = { .id = "victim" } };
		add_not_a_layer_rows(r, ownf("layer replaced by %s", swaps[i].name), swaps[i].why);
	}
	/* hostile content inside a layer is the container's business: removing
	 * or snapshotting the layer must not follow it out */
	const struct {
		const char *name;
		const char *at;
		plant_fn plant;
		const char *arg;
	} inside[] = {
		{ "a symlink to a subvolume outside", "subvolumes/base/evil", plant_symlink, "S:subvol" },
		{ "a symlink to /", "subvolumes/base/root", plant_symlink, "/" },
		{ "a symlink to subvolumes/", "subvolumes/base/up", plant_symlink, ".." },
		{ "a fifo", "subvolumes/base/fifo", plant_fifo, NULL },
	};
	for (size_t i = 0; i < ARRAY_SIZE(inside); i++) {
		add((struct row){ "swapped-layer", ownf("remove a layer holding %s", inside[i].name),
				  .plant = inside[i].plant, .at = inside[i].at,
				  .plant_arg = inside[i].arg, .with_layer = "base", .op = OP_REMOVE,
				  .call = { .id = "base" }, .expect = 0, .changes_home = true });
		add((struct row){ "swapped-layer", ownf("snapshot a layer holding %s", inside[i].name),
				  .plant = inside[i].plant, .at = inside[i].at,
				  .plant_arg = inside[i].arg, .with_layer = "base", .op = OP_CHILD,
				  .call = { .id = "base" }, .expect = 0, .changes_home = true });
	}
	/* reserved names planted by someone else stay invisible */
	add((struct row){ "swapped-layer", "layers: a planted .tmp- symlink to a subvolume outside",
			  .plant = plant_symlink, .at = "subvolumes/.tmp-0123456789abcdef",
			  .plant_arg = "S:subvol", .with_layer = "base", .op = OP_LAYERS,
			  .check = check_only_real_layers });
	add((struct row){ "swapped-layer", "layers: a planted .tomb- bind mount of a subvolume",
			  .plant = plant_bind, .at = "subvolumes/.tomb-0123456789abcdef",
			  .plant_arg = "S:subvol", .with_layer = "base", .op = OP_LAYERS,
			  .check = check_only_real_layers });
}

/* ---- running a case -------------------------------------------------------------- */

static void on_log(int level, const char *message, void *userdata)
{
	(void)userdata;
	if (level <= BTRFSLAYER_LOG_ERR)
		logged_errors++;
	snprintf(last_log, sizeof(last_log), "%s", message);
}

/* Every home here is opened without the bind mount of itself: a plain
 * directory is where the library has to defend on its own (a bind mount of
 * home would also hide mounts planted below it, and pin it in place). */
static const char *const no_mount[] = { "btrfs.mount_home=false" };

/* The case's open options then no_mount, in `buf` (after them, so that the
 * index a message gives is the case's); the case's own list as it is when
 * it is NULL. */
static const char *const *open_options(const struct call *c, const char **buf,
				       size_t max, size_t *n)
{
	if (!c->opts || c->n_opts + 1 > max) {
		*n = c->n_opts;
		return c->opts;
	}
	memcpy(buf, c->opts, c->n_opts * sizeof(*buf));
	buf[c->n_opts] = no_mount[0];
	*n = c->n_opts + 1;
	return buf;
}

static int call(struct env *e, btrfslayer_error **err)
{
	const struct row *row = e->row;
	const struct call *c = &row->call;
	btrfslayer *h = c->null_handle ? NULL : e->h;
	switch (row->op) {
	case OP_OPEN: {
		static char long_home[PATH_MAX + 16];
		const char *home = e->home;
		if (c->home == HOME_NULL)
			home = NULL;
		else if (c->home == HOME_EMPTY)
			home = "";
		else if (c->home == HOME_LONG) {
			memset(long_home, 'h', sizeof(long_home) - 1);
			long_home[0] = '/';
			long_home[sizeof(long_home) - 1] = '\0';
			home = long_home;
		}
		const char *buf[64];
		size_t n;
		const char *const *opts = open_options(c, buf, 64, &n);
		if (!c->opts && !c->n_opts)	/* no options: just ours */
			opts = no_mount, n = 1;
		return btrfslayer_open(home, opts, n, c->uids, c->n_uids, c->gids,
				       c->n_gids, c->null_out ? NULL : &e->h, err);
	}
	case OP_CREATE:
		return btrfslayer_create(h, c->id, c->parent, c->flags, c->label, c->opts,
					 c->n_opts, err);
	case OP_CHILD:
		return btrfslayer_create(h, "child", c->id, c->flags, c->label, c->opts,
					 c->n_opts, err);
	case OP_REMOVE:
		return btrfslayer_remove(h, c->id, err);
	case OP_GET:
		return btrfslayer_get(h, c->id, NULL, c->null_out ? NULL : &e->path, err);
	case OP_EXISTS:
		return btrfslayer_exists(h, c->id, err);
	case OP_PUT:
		return btrfslayer_put(h, c->id, err);
	case OP_LAYERS:
		return btrfslayer_layers(h, c->null_out ? NULL : &e->list, err);
	case OP_STATUS:
		return btrfslayer_status(h, c->null_out ? NULL : &e->list, err);
	case OP_USAGE: {
		btrfslayer_usage u;
		return btrfslayer_get_usage(h, c->id, BTRFSLAYER_USAGE_SYNC, &u, sizeof(u), err);
	}
	}
	return -ENOSYS;
}

/* Everything outside home a case must not change, and home itself. */
static char *snapshot_outside(void)
{
	char *a = harness_tree_snapshot(sentinel_btrfs);
	char *b = harness_tree_snapshot(sentinel_tmpfs);
	char *c = harness_tree_snapshot(displaced_dir);
	char *all = NULL;
	if (a && b && c && asprintf(&all, "%s--\n%s--\n%s", a, b, c) < 0)
		all = NULL;
	free(a);
	free(b);
	free(c);
	return all;
}

static char *snapshot_home(const char *home)
{
	struct stat st;
	if (lstat(home, &st) < 0 && errno == ENOENT)
		return strdup("(absent)\n");
	return harness_tree_snapshot(home);
}

/* Replace each "@" in needle by path. */
static void expand(const char *needle, const char *path, char *buf, size_t len)
{
	size_t o = 0;
	for (const char *p = needle; *p && o + 1 < len; p++) {
		if (*p == '@') {
			o += (size_t)snprintf(buf + o, len - o, "%s", path);
			if (o >= len)
				o = len - 1;
		} else {
			buf[o++] = *p;
		}
	}
	buf[o] = '\0';
}

/* Home works: a new handle creates, finds, gets and removes a probe layer. */
static const char *home_usable(const char *home)
{
	btrfslayer *h;
	char *path = NULL;
	struct stat st;
	const char *why = NULL;
	if (btrfslayer_open(home, no_mount, 1, NULL, 0, NULL, 0, &h, NULL) < 0)
		return "home does not open any more";
	if (btrfslayer_create(h, "probe", NULL, 0, NULL, NULL, 0, NULL) < 0)
		why = "cannot create a probe layer";
	else if (btrfslayer_exists(h, "probe", NULL) != 1)
		why = "the probe layer does not exist";
	else if (btrfslayer_get(h, "probe", NULL, &path, NULL) < 0 || stat(path, &st) < 0 ||
		 st.st_ino != 256)
		why = "the probe layer's path is not a subvolume";
	else if (btrfslayer_remove(h, "probe", NULL) < 0)
		why = "cannot remove the probe layer";
	else if (btrfslayer_exists(h, "probe", NULL) != 0)
		why = "the probe layer survived its removal";
	free(path);
	btrfslayer_close(h, NULL);
	return why;
}

/* Run one case; NULL when it passed, else why not. */
static const char *run(const struct row *row, int index, char *detail, size_t len)
{
	static char why_buf[256];
	struct env e = { .index = index, .row = row };
	btrfslayer_error *err = NULL;
	const char *why = NULL;
	char needle[PATH_MAX + 128];
	char *out_before = NULL, *home_before = NULL, *out_after = NULL, *home_after = NULL;

	detail[0] = '\0';
	pathf(e.home, sizeof(e.home), "%s/%d", homes_dir, index);
	if (row->op != OP_OPEN) {
		if (btrfslayer_open(e.home, no_mount, 1, NULL, 0, NULL, 0, &e.h, &err) < 0)
			why = "setup: cannot open a fresh home";
		else if (row->with_layer &&
			 btrfslayer_create(e.h, row->with_layer, NULL, 0, NULL, row->with_layer_opts,
					   row->n_with_layer_opts, &err) < 0)
			why = "setup: cannot create the case's layer";
	} else if (row->plant && *row->at && mkdir(e.home, 0710) < 0) {
		why = "setup: cannot make the home directory";
	}
	if (why)
		goto out;
	if (row->plant) {
		int r = do_plant(&e);
		if (r) {
			snprintf(why_buf, sizeof(why_buf), "setup: plant %s: %s", row->at, strerror(r));
			why = why_buf;
			goto out;
		}
	}
	out_before = snapshot_outside();
	home_before = snapshot_home(e.home);
	logged_errors = 0;

	int r = call(&e, &err);

	/* the return value, the error object and its message */
	if (r != row->expect) {
		snprintf(why_buf, sizeof(why_buf), "returned %d (%s), expected %d", r,
			 err ? btrfslayer_error_message(err) : "no message", row->expect);
		why = why_buf;
	} else if (r < 0 && (!err || btrfslayer_error_code(err) != r)) {
		why = "no error object, or one with another code";
	} else if (r >= 0 && err) {
		why = "an error object on success";
	} else if (r < 0) {
		const char *message = btrfslayer_error_message(err);
		const char *needles[] = { row->needle, row->needle2 };
		if (!row->needle)
			why = "the case names no needle for its message";
		for (size_t i = 0; !why && i < 2; i++) {
			if (!needles[i])
				continue;
			expand(needles[i], e.plant_path[0] ? e.plant_path : e.home, needle,
			       sizeof(needle));
			if (!strstr(message, needle)) {
				snprintf(why_buf, sizeof(why_buf), "message lacks \"%.80s\"", needle);
				why = why_buf;
			}
		}
		snprintf(detail, len, "%d: %s", r, message);
	} else {
		snprintf(detail, len, "%d", r);
	}
	if (!why && row->op == OP_OPEN && r < 0 && e.h)
		why = "a failed open left a handle";
	if (!why && row->op == OP_GET && r < 0 && e.path)
		why = "a failed get left a path";
	if (!why && row->check && (r >= 0 || row->check_always))
		why = row->check(&e);
	if (!why && logged_errors)
		why = "the library logged an error";

	/* nothing outside home changed, nor home unless that is the point */
	out_after = snapshot_outside();
	home_after = snapshot_home(e.home);
	if (!why && (!out_before || !out_after))
		why = "cannot snapshot the sentinel trees";
	else if (!why && strcmp(out_before, out_after))
		why = "something outside home changed";
	else if (!why && !row->changes_home && (!home_before || !home_after ||
						 strcmp(home_before, home_after)))
		why = "a failed call changed home";
out:
	btrfslayer_error_free(err);
	btrfslayer_list_free(e.list);
	free(e.path);
	btrfslayer_close(e.h, NULL);
	int u = undo_plant(&e);
	if (!why && u) {
		snprintf(why_buf, sizeof(why_buf), "cannot remove the plant: %s", strerror(u));
		why = why_buf;
	}
	if (!why)
		why = home_usable(e.home);
	free(out_before);
	free(out_after);
	free(home_before);
	free(home_after);
	return why;
}

/* One case, one line: control bytes become '?'. */
static void printable(char *s)
{
	for (; *s; s++)
		if ((unsigned char)*s < 0x20 || *s == 0x7f)
			*s = '?';
}

/* ---- main ------------------------------------------------------------------------ */

int main(int argc, char **argv)
{
	const char *filter = argc > 1 ? argv[1] : NULL;
	harness_start();
	btrfslayer_set_log_fn(on_log, NULL);

	pathf(sentinel_btrfs, sizeof(sentinel_btrfs), "%s/sentinel", harness_btrfs());
	pathf(sentinel_tmpfs, sizeof(sentinel_tmpfs), "%s/sentinel", harness_tmpfs());
	pathf(displaced_dir, sizeof(displaced_dir), "%s/displaced", harness_btrfs());
	pathf(homes_dir, sizeof(homes_dir), "%s/homes", harness_btrfs());
	int r = harness_sentinel_make(sentinel_btrfs);
	if (r == 0)
		r = harness_sentinel_make(sentinel_tmpfs);
	if (r == 0 && (mkdir(displaced_dir, 0755) < 0 || mkdir(homes_dir, 0755) < 0))
		r = errno;
	if (r) {
		fprintf(stderr, "hostile: cannot make the sentinel trees: %s\n", strerror(r));
		return 1;
	}

	add_id_cases();
	add_argument_cases();
	add_open_option_cases();
	add_size_cases();
	add_storage_option_cases();
	add_home_plant_cases();
	add_layout_plant_cases("planted-subvolumes", "subvolumes");
	add_layout_plant_cases("planted-quotas", "quotas");
	add_quota_file_cases();
	add_layer_plant_cases();
	add_swapped_layer_cases();
	add_device_cases();

	struct {
		const char *name;
		int run, passed;
	} categories[MAX_CATEGORIES] = { { NULL, 0, 0 } };
	size_t n_categories = 0;
	int ran = 0, failed = 0;
	char detail[256];
	for (size_t i = 0; i < n_rows; i++) {
		char title[512];
		snprintf(title, sizeof(title), "%s: %s", rows[i].category, rows[i].name);
		printable(title);
		if (filter && !strstr(title, filter))
			continue;
		size_t c = 0;
		while (c < n_categories && strcmp(categories[c].name, rows[i].category))
			c++;
		if (c == n_categories && n_categories < MAX_CATEGORIES)
			categories[n_categories++].name = rows[i].category;
		const char *why = run(&rows[i], (int)i, detail, sizeof(detail));
		ran++;
		categories[c].run++;
		if (why) {
			failed++;
			printf("not ok %zu %s: %s\n", i + 1, title, why);
			if (last_log[0])
				printf("#   last log: %s\n", last_log);
		} else {
			categories[c].passed++;
			printable(detail);
			printf("ok %zu %s -> %s\n", i + 1, title, detail);
		}
		last_log[0] = '\0';
		fflush(stdout);
	}
	printf("# hostile cases: %zu defined, %d run, %d passed, %d failed\n", n_rows, ran,
	       ran - failed, failed);
	for (size_t c = 0; c < n_categories; c++)
		printf("#   %-20s %4d run, %4d passed\n", categories[c].name, categories[c].run,
		       categories[c].passed);
	for (size_t i = 0; i < n_owned; i++)
		free(owned[i]);
	return failed ? 1 : 0;
}
