/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * btrfslayer-bench: each library call against the bare kernel operation it
 * wraps, measured interleaved in one run on a loopback btrfs of its own.
 * Not a test (no assertion on time anywhere); run by hand, as root:
 *
 *     btrfslayer-bench [--quick] [--dir DIR]
 *
 * DIR (default /var/tmp) holds a sparse image file and its mount point for
 * the run; both are taken back at the end, also on failure.  For every quota
 * mode (off, full qgroups, simple quotas) a fresh filesystem is made, and
 * every operation is timed N times in rounds: one library call, one bare
 * ioctl, and for a mutating call one bare ioctl made durable the cheapest
 * way the kernel offers (the ioctl, then syncfs: subvolume creation and
 * deletion and a qgroup limit are made durable by a transaction commit
 * only; the snapshot ioctl commits by itself, and its syncfs then finds
 * nothing to do).  Medians, min-max, a markdown table, and a last line
 * worst_ratio=<x>: the worst ratio, over the single-op rows, of the library
 * to the baseline its target is stated against (the durable one for
 * mutating calls).  The scale run then times open, close, create, exists,
 * remove and list at 100 and at 10,000 layers, and the peak RSS of a
 * process that opens, creates, looks up, removes and closes there.
 *
 * --quick: fewer rounds (about two minutes); the full run is under ten.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <signal.h>
#include <spawn.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <linux/btrfs.h>
#include <linux/btrfs_tree.h>

#include "btrfslayer.h"
#include "device_work.h"

extern char **environ;

enum mode { OFF, QGROUP, SIMPLE, N_MODES };
static const char *const mode_names[N_MODES] = { "off", "qgroup", "simple" };

/* rounds of each kind of measurement */
struct rounds {
	int fast;	/* µs-scale reads: exists, get, usage */
	int list;
	int mutate;	/* create, remove, set, clear */
	int big;	/* the 10k- and 100k-file layers */
	int cold;
	int open;
};
static const struct rounds full_rounds = { 20000, 40, 200, 30, 20, 40 };
static const struct rounds quick_rounds = { 5000, 10, 80, 20, 6, 10 };
static struct rounds R;
/* --quotas: the one mode to run; N_MODES: all of them */
static int only_mode = N_MODES;

#define SCALE_SMALL 100
#define SCALE_LARGE 10000
#define IMAGE_FILES 10000
#define BIG_FILES 100000

static char work[256], image[300], mnt[300], home[320];
static char loopdev[128];
static bool mounted;

/* ---- plumbing ---------------------------------------------------------------- */

static void teardown(void)
{
	if (mounted && umount2(mnt, 0) < 0)
		umount2(mnt, MNT_DETACH);
	mounted = false;
	if (*loopdev) {
		const char *const argv[] = { "losetup", "-d", loopdev, NULL };
		pid_t pid;
		if (posix_spawnp(&pid, argv[0], NULL, NULL, (char *const *)argv, environ) == 0)
			waitpid(pid, NULL, 0);
		*loopdev = '\0';
	}
	if (*image)
		unlink(image);
}

static void cleanup_all(void)
{
	if (!*work)
		return;	/* the rss child: nothing of its own */
	device_work_stop();
	teardown();
	if (*mnt)
		rmdir(mnt);
	if (*work)
		rmdir(work);
}

static void on_signal(int sig)
{
	cleanup_all();
	signal(sig, SIG_DFL);
	raise(sig);
}

#define die(...) do { fprintf(stderr, "btrfslayer-bench: " __VA_ARGS__); \
		       fputc('\n', stderr); cleanup_all(); exit(1); } while (0)

static void check(int r, btrfslayer_error *err, const char *what)
{
	if (r < 0)
		die("%s: %s", what, err ? btrfslayer_error_message(err) : strerror(-r));
	btrfslayer_error_free(err);
}

static void check_sys(int r, const char *what)
{
	if (r < 0)
		die("%s: %s", what, strerror(errno));
}

/* Run argv; its stdout into out (when given, NUL-terminated). */
static void run(const char *const argv[], char *out, size_t len)
{
	int pipefd[2];
	posix_spawn_file_actions_t fa;
	pid_t pid;
	int status;
	check_sys(pipe(pipefd), "pipe");
	posix_spawn_file_actions_init(&fa);
	posix_spawn_file_actions_adddup2(&fa, pipefd[1], STDOUT_FILENO);
	posix_spawn_file_actions_addclose(&fa, pipefd[0]);
	if (posix_spawnp(&pid, argv[0], &fa, NULL, (char *const *)argv, environ) != 0)
		die("run %s: cannot start it (is btrfs-progs/util-linux installed?)", argv[0]);
	posix_spawn_file_actions_destroy(&fa);
	close(pipefd[1]);
	size_t n = 0;
	ssize_t got;
	char sink[256];
	while ((got = read(pipefd[0], out && n + 1 < len ? out + n : sink,
			   out && n + 1 < len ? len - n - 1 : sizeof(sink))) > 0)
		if (out && n + 1 < len)
			n += (size_t)got;
	close(pipefd[0]);
	if (out)
		out[n] = '\0';
	while (waitpid(pid, &status, 0) < 0)
		if (errno != EINTR)
			die("wait for %s: %s", argv[0], strerror(errno));
	if (!WIFEXITED(status) || WEXITSTATUS(status))
		die("%s failed", argv[0]);
}

static double now_us(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e6 + ts.tv_nsec / 1e3;
}

static void drop_caches(void)
{
	sync();
	int fd = open("/proc/sys/vm/drop_caches", O_WRONLY | O_CLOEXEC);
	check_sys(fd, "open /proc/sys/vm/drop_caches");
	if (write(fd, "3", 1) != 1)
		die("drop caches: %s", strerror(errno));
	close(fd);
}

/* A fresh btrfs at mnt, with the mode's quotas on (by the library's open,
 * as a runtime would), and home in it. */
static void make_fs(enum mode mode)
{
	char out[128];
	snprintf(image, sizeof(image), "%s/image", work);
	int fd = open(image, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	check_sys(fd, "create image");
	check_sys(ftruncate(fd, 16LL << 30), "size image");
	close(fd);
	const char *const mkfs[] = { "mkfs.btrfs", "-q", "-f", image, NULL };
	run(mkfs, NULL, 0);
	const char *const losetup[] = { "losetup", "-f", "--show", image, NULL };
	run(losetup, out, sizeof(out));
	out[strcspn(out, "\n")] = '\0';
	snprintf(loopdev, sizeof(loopdev), "%s", out);
	if (mount(loopdev, mnt, "btrfs", 0, NULL) < 0)
		die("mount %s: %s", loopdev, strerror(errno));
	mounted = true;
	snprintf(home, sizeof(home), "%s/home", mnt);
	char raw[PATH_MAX];
	snprintf(raw, sizeof(raw), "%s/raw", mnt);
	check_sys(mkdir(raw, 0700), "mkdir raw");
	(void)mode;
}

/* ---- series and rows ---------------------------------------------------------- */

struct series {
	double *v;
	int n;
};

static void add(struct series *s, double us)
{
	s->v = realloc(s->v, (size_t)(s->n + 1) * sizeof(*s->v));
	if (!s->v)
		die("out of memory");
	s->v[s->n++] = us;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return (x > y) - (x < y);
}

static double median(struct series *s)
{
	if (!s->n)
		return 0;
	qsort(s->v, (size_t)s->n, sizeof(*s->v), cmp_double);
	return s->n % 2 ? s->v[s->n / 2] : (s->v[s->n / 2 - 1] + s->v[s->n / 2]) / 2;
}

enum against { AGAINST_RAW, AGAINST_DURABLE };

struct row {
	const char *op;
	enum mode mode;
	struct series lib, raw, durable;
	/* what the library call and the durable baseline made the kernel
	 * write, per call (mutating rows only) */
	struct work_samples lib_work, durable_work;
	enum against against;
	double target;	/* ratio; 0: none (shown, not in worst_ratio) */
	const char *note;
};

#define MAX_ROWS 128
static struct row rows[MAX_ROWS];
static int n_rows;

static struct row *new_row(const char *op, enum mode mode, enum against against, double target)
{
	if (n_rows == MAX_ROWS)
		die("too many rows");
	struct row *r = &rows[n_rows++];
	memset(r, 0, sizeof(*r));
	r->op = op;
	r->mode = mode;
	r->against = against;
	r->target = target;
	return r;
}

static void fmt_time(char *buf, size_t len, double us)
{
	if (us >= 1000)
		snprintf(buf, len, "%.2f ms", us / 1000);
	else
		snprintf(buf, len, "%.1f µs", us);
}

static void fmt_series(char *buf, size_t len, struct series *s)
{
	char m[32], lo[32], hi[32];
	if (!s->n) {
		snprintf(buf, len, "—");
		return;
	}
	double med = median(s);
	fmt_time(m, sizeof(m), med);
	fmt_time(lo, sizeof(lo), s->v[0]);
	fmt_time(hi, sizeof(hi), s->v[s->n - 1]);
	snprintf(buf, len, "%s (%s–%s)", m, lo, hi);
}

/* ---- bare kernel operations ---------------------------------------------------- */

static int raw_dir(void)
{
	char raw[PATH_MAX];
	snprintf(raw, sizeof(raw), "%s/raw", mnt);
	int fd = open(raw, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	check_sys(fd, "open raw directory");
	return fd;
}

static int raw_create(int dirfd, const char *name)
{
	struct btrfs_ioctl_vol_args args;
	memset(&args, 0, sizeof(args));
	snprintf(args.name, sizeof(args.name), "%s", name);
	return ioctl(dirfd, BTRFS_IOC_SUBVOL_CREATE, &args);
}

static int raw_snapshot(int source, int dirfd, const char *name)
{
	struct btrfs_ioctl_vol_args_v2 args;
	memset(&args, 0, sizeof(args));
	args.fd = source;
	snprintf(args.name, sizeof(args.name), "%s", name);
	return ioctl(dirfd, BTRFS_IOC_SNAP_CREATE_V2, &args);
}

static int raw_destroy(int dirfd, const char *name)
{
	struct btrfs_ioctl_vol_args args;
	memset(&args, 0, sizeof(args));
	snprintf(args.name, sizeof(args.name), "%s", name);
	return ioctl(dirfd, BTRFS_IOC_SNAP_DESTROY, &args);
}

static int raw_limit(int fd, uint64_t size)
{
	struct btrfs_ioctl_qgroup_limit_args args;
	memset(&args, 0, sizeof(args));
	args.lim.flags = BTRFS_QGROUP_LIMIT_MAX_RFER;
	args.lim.max_rfer = size ? size : UINT64_MAX;	/* the kernel's "none" */
	return ioctl(fd, BTRFS_IOC_QGROUP_LIMIT, &args);
}

/* One item of the quota tree, as a caller reads it by hand. */
static int raw_quota_item(int fd, uint8_t type, uint64_t offset)
{
	struct btrfs_ioctl_search_args search;
	memset(&search, 0, sizeof(search));
	struct btrfs_ioctl_search_key *key = &search.key;
	key->tree_id = BTRFS_QUOTA_TREE_OBJECTID;
	key->min_type = key->max_type = type;
	key->min_offset = key->max_offset = offset;
	key->max_transid = UINT64_MAX;
	key->nr_items = 1;
	return ioctl(fd, BTRFS_IOC_TREE_SEARCH, &search);
}

static int raw_subvolume_id(int fd, uint64_t *id)
{
	struct btrfs_ioctl_ino_lookup_args lookup;
	memset(&lookup, 0, sizeof(lookup));
	lookup.objectid = BTRFS_FIRST_FREE_OBJECTID;
	if (ioctl(fd, BTRFS_IOC_INO_LOOKUP, &lookup) < 0)
		return -1;
	*id = lookup.treeid;
	return 0;
}

/* What usage reports, read from the kernel by hand: the subvolume id, then
 * the quota status, the qgroup's info and its limit (one search each). */
static int raw_usage(int fd)
{
	uint64_t id;
	if (raw_subvolume_id(fd, &id) < 0 ||
	    raw_quota_item(fd, BTRFS_QGROUP_STATUS_KEY, 0) < 0 ||
	    raw_quota_item(fd, BTRFS_QGROUP_INFO_KEY, id) < 0 ||
	    raw_quota_item(fd, BTRFS_QGROUP_LIMIT_KEY, id) < 0)
		return -1;
	return 0;
}

/* Whether the recorded limit is in place, by hand: the subvolume id and
 * the qgroup's limit item. */
static int raw_limit_check(int fd)
{
	uint64_t id;
	if (raw_subvolume_id(fd, &id) < 0 || raw_quota_item(fd, BTRFS_QGROUP_LIMIT_KEY, id) < 0)
		return -1;
	return 0;
}

/* The record of a limit, read by hand: open, read, close. */
static int raw_record(int quotas, const char *id)
{
	char buf[32];
	int fd = openat(quotas, id, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		return -1;
	ssize_t n = read(fd, buf, sizeof(buf));
	close(fd);
	return n > 0 ? 0 : -1;
}

static int open_under(int dirfd, const char *name)
{
	return openat(dirfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
}

/* ---- the library --------------------------------------------------------------- */

static btrfslayer *open_home(enum mode mode)
{
	const char *opts[1];
	size_t n = 0;
	if (mode == QGROUP)
		opts[n++] = "btrfs.quota_mode=qgroup";
	else if (mode == SIMPLE)
		opts[n++] = "btrfs.quota_mode=simple";
	btrfslayer *h = NULL;
	btrfslayer_error *err = NULL;
	check(btrfslayer_open(home, opts, n, NULL, 0, NULL, 0, &h, &err), err, "open home");
	return h;
}

/* Make home (with the mode's quotas on), and close it again. */
static void open_home_closed(enum mode mode)
{
	btrfslayer_error *err = NULL;
	check(btrfslayer_close(open_home(mode), &err), err, "close");
}

static void lib_create(btrfslayer *h, const char *id, const char *parent, uint32_t flags,
		       const char *size)
{
	btrfslayer_error *err = NULL;
	char opt[64];
	const char *opts[1] = { opt };
	if (size)
		snprintf(opt, sizeof(opt), "size=%s", size);
	check(btrfslayer_create(h, id, parent, flags, NULL, opts, size ? 1 : 0, &err), err,
	      "create layer");
}

static void lib_remove(btrfslayer *h, const char *id)
{
	btrfslayer_error *err = NULL;
	check(btrfslayer_remove(h, id, &err), err, "remove layer");
}

/* files empty regular files in directories of 1000 under dirfd */
static void fill(int dirfd, int files)
{
	char name[32];
	int sub = -1;
	for (int i = 0; i < files; i++) {
		if (i % 1000 == 0) {
			if (sub >= 0)
				close(sub);
			snprintf(name, sizeof(name), "d%03d", i / 1000);
			check_sys(mkdirat(dirfd, name, 0755), "mkdir");
			sub = open_under(dirfd, name);
			check_sys(sub, "open dir");
		}
		snprintf(name, sizeof(name), "f%04d", i % 1000);
		int fd = openat(sub, name, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
		check_sys(fd, "create file");
		close(fd);
	}
	if (sub >= 0)
		close(sub);
}

/* An image layer of `files` files, made by the library then filled. */
static void make_image(btrfslayer *h, int subvols, const char *id, int files)
{
	lib_create(h, id, NULL, 0, NULL);
	int fd = open_under(subvols, id);
	check_sys(fd, "open image layer");
	fill(fd, files);
	close(fd);
	check_sys(syncfs(subvols), "syncfs");
}

/* ---- the single-op rows ---------------------------------------------------------- */

#define TIME(series, stmt) do { double t0_ = now_us(); stmt; add(series, now_us() - t0_); } while (0)
/* TIME, and what the call made the kernel write into the row's samples:
 * WORK(row, lib, ...) or WORK(row, durable, ...) */
#define WORK(row, column, stmt) do { device_work_begin(); TIME(&(row)->column, stmt); \
				     device_work_end(&(row)->column##_work); } while (0)
/* a then b on even rounds, b then a on odd ones: neither always finds the
 * caches the other warmed, nor always pays for the other's leftovers */
#define PAIR(round, a, b) do { if ((round) % 2) { b; a; } else { a; b; } } while (0)

static int counter;
/* the WORK_* counts device_work_start() turned on; why not all */
static int work_counts;
static char work_missing[128];

static void next_id(char *buf, size_t len, const char *prefix)
{
	snprintf(buf, len, "%s%06d", prefix, ++counter);
}

/* create empty and remove empty, paired: what one makes the other removes */
static void bench_create_remove_empty(btrfslayer *h, enum mode mode, int rawfd)
{
	struct row *c = new_row("create empty layer", mode, AGAINST_DURABLE, 1.15);
	struct row *d = new_row("remove empty layer", mode, AGAINST_DURABLE, 1.15);
	/* with simple quotas a removal records the qgroup the kernel may
	 * keep (a marker file, unlinked once the qgroup is gone): the same
	 * calls against the least that costs with bare calls */
	struct row *m = mode == SIMPLE ? new_row("remove empty layer, vs raw delete + marker "
						 "file made, the last one unlinked + syncfs",
						 mode, AGAINST_DURABLE, 0)
				       : NULL;
	char id[32], a[32], b[32], marker[48] = "";
	for (int i = 0; i < R.mutate; i++) {
		next_id(id, sizeof(id), "e");
		next_id(a, sizeof(a), "ra");
		next_id(b, sizeof(b), "rb");
		/* the bare ioctl's change is committed untimed, so that the
		 * next call timed does not pay for it */
		PAIR(i, WORK(c, lib, lib_create(h, id, NULL, 0, NULL)),
		     TIME(&c->raw, check_sys(raw_create(rawfd, a), "create subvolume"));
		     check_sys(syncfs(rawfd), "syncfs");
		     WORK(c, durable, check_sys(raw_create(rawfd, b), "create subvolume");
			  check_sys(syncfs(rawfd), "syncfs")));
		PAIR(i, WORK(d, lib, lib_remove(h, id)),
		     TIME(&d->raw, check_sys(raw_destroy(rawfd, a), "delete subvolume"));
		     check_sys(syncfs(rawfd), "syncfs");
		     WORK(d, durable, check_sys(raw_destroy(rawfd, b), "delete subvolume");
			  check_sys(syncfs(rawfd), "syncfs")));
		if (!m)
			continue;
		char victim[32], last[48];
		next_id(victim, sizeof(victim), "rm");
		check_sys(raw_create(rawfd, victim), "create subvolume");
		check_sys(syncfs(rawfd), "syncfs");
		snprintf(last, sizeof(last), "%s", marker);
		snprintf(marker, sizeof(marker), ".marker-%s", victim);
		WORK(m, durable, int f = openat(rawfd, marker, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC,
						 0600);
		     check_sys(f, "create marker"); close(f);
		     check_sys(raw_destroy(rawfd, victim), "delete subvolume");
		     check_sys(*last ? unlinkat(rawfd, last, 0) : 0, "unlink marker");
		     check_sys(syncfs(rawfd), "syncfs"));
	}
	if (m) {
		for (int i = 0; i < d->lib.n; i++)
			add(&m->lib, d->lib.v[i]);
		device_work_append(&m->lib_work, &d->lib_work);
	}
}

/* snapshot of the 10k-file image, and remove of such a snapshot with one
 * nested subvolume */
static void bench_snapshot(btrfslayer *h, enum mode mode, int rawfd, int subvols,
			   const char *image_id)
{
	struct row *s = new_row("snapshot of a 10k-file layer", mode, AGAINST_DURABLE, 1.15);
	struct row *d = new_row("remove 10k-file snapshot with 1 nested", mode, AGAINST_DURABLE,
				1.5);
	s->note = "the snapshot ioctl commits by itself";
	/* the same library calls against the least a published snapshot
	 * costs: made under another name, renamed, committed again */
	struct row *p = new_row("snapshot of a 10k-file layer, vs raw made, renamed, committed",
				mode, AGAINST_DURABLE, 0);
	int source = open_under(subvols, image_id);
	check_sys(source, "open image");
	char id[32], a[32], b[32];
	for (int i = 0; i < R.big; i++) {
		next_id(id, sizeof(id), "s");
		next_id(a, sizeof(a), "ra");
		next_id(b, sizeof(b), "rb");
		WORK(s, lib, lib_create(h, id, image_id, 0, NULL));
		TIME(&s->raw, check_sys(raw_snapshot(source, rawfd, a), "snapshot"));
		WORK(s, durable, check_sys(raw_snapshot(source, rawfd, b), "snapshot");
		     check_sys(syncfs(rawfd), "syncfs"));
		char c[32], c2[48];
		next_id(c, sizeof(c), "rc");
		snprintf(c2, sizeof(c2), "%s-published", c);
		WORK(p, durable, check_sys(raw_snapshot(source, rawfd, c), "snapshot");
		     check_sys(renameat(rawfd, c, rawfd, c2), "rename");
		     check_sys(syncfs(rawfd), "syncfs"));
		check_sys(raw_destroy(rawfd, c2), "delete snapshot");
		/* one nested subvolume in each, as a container's runtime makes */
		int fds[3] = { open_under(subvols, id), open_under(rawfd, a), open_under(rawfd, b) };
		for (int k = 0; k < 3; k++) {
			check_sys(fds[k], "open snapshot");
			check_sys(raw_create(fds[k], "nested"), "create nested subvolume");
		}
		check_sys(syncfs(rawfd), "syncfs");
		WORK(d, lib, lib_remove(h, id));
		TIME(&d->raw, check_sys(raw_destroy(fds[1], "nested"), "delete nested");
		     check_sys(raw_destroy(rawfd, a), "delete snapshot"));
		check_sys(syncfs(rawfd), "syncfs");	/* untimed, as everywhere */
		WORK(d, durable, check_sys(raw_destroy(fds[2], "nested"), "delete nested");
		     check_sys(raw_destroy(rawfd, b), "delete snapshot");
		     check_sys(syncfs(rawfd), "syncfs"));
		for (int k = 0; k < 3; k++)
			close(fds[k]);
	}
	for (int i = 0; i < s->lib.n; i++)
		add(&p->lib, s->lib.v[i]);
	device_work_append(&p->lib_work, &s->lib_work);
	close(source);
}

/* remove of a 100k-file layer (a snapshot of the big image), warm and cold */
static void bench_remove_big(btrfslayer *h, enum mode mode, int rawfd, int subvols,
			     const char *big_id, bool cold)
{
	struct row *d = new_row(cold ? "remove 100k-file layer, cold cache"
				     : "remove 100k-file layer, warm cache", mode,
				AGAINST_DURABLE, cold ? 1.5 : 1.15);
	int source = open_under(subvols, big_id);
	check_sys(source, "open big image");
	char id[32], a[32], b[32];
	for (int i = 0; i < (cold ? R.cold : R.big); i++) {
		next_id(id, sizeof(id), "b");
		next_id(a, sizeof(a), "ra");
		next_id(b, sizeof(b), "rb");
		lib_create(h, id, big_id, 0, NULL);
		check_sys(raw_snapshot(source, rawfd, a), "snapshot");
		check_sys(raw_snapshot(source, rawfd, b), "snapshot");
		/* each goes first, second and third in turn: the cleaner
		 * dropping the last round's layers slows whoever runs beside it */
		for (int k = 0; k < 3; k++) {
			if (cold)
				drop_caches();
			switch ((i + k) % 3) {
			case 0:
				WORK(d, lib, lib_remove(h, id));
				break;
			case 1:
				TIME(&d->raw, check_sys(raw_destroy(rawfd, a), "delete snapshot"));
				/* committed untimed: the next one timed must not pay */
				check_sys(syncfs(rawfd), "syncfs");
				break;
			default:
				WORK(d, durable, check_sys(raw_destroy(rawfd, b), "delete snapshot");
				     check_sys(syncfs(rawfd), "syncfs"));
			}
		}
	}
	close(source);
}

/* exists, get (and with a recorded limit), usage: on one layer */
static void bench_reads(btrfslayer *h, enum mode mode, int subvols, int quotas)
{
	struct row *e = new_row("exists", mode, AGAINST_RAW, 1.15);
	struct row *g = new_row("get", mode, AGAINST_RAW, 1.5);
	struct row *gl = mode != OFF ? new_row("get, limit recorded", mode, AGAINST_RAW, 1.5) : NULL;
	struct row *u = mode != OFF ? new_row("usage", mode, AGAINST_RAW, 1.3) : NULL;
	e->note = "raw: one fstatat";
	g->note = "raw: openat, fstat, close";
	const char *id = "reads", *lid = "reads-limited";
	lib_create(h, id, NULL, 0, NULL);
	if (gl) {
		lib_create(h, lid, NULL, 0, "1G");
		gl->note = "raw: get, read the record, INO_LOOKUP, the limit's search";
		u->note = "raw: open, INO_LOOKUP, status, info and limit searches, the record read, "
			  "close";
	}
	btrfslayer_error *err = NULL;
	struct stat st;
	char *path;
	for (int i = 0; i < R.fast; i++) {
		PAIR(i, TIME(&e->lib, check(btrfslayer_exists(h, id, &err) == 1 ? 0 : -ENOENT, err,
					    "exists")),
		     TIME(&e->raw, check_sys(fstatat(subvols, id, &st, AT_SYMLINK_NOFOLLOW), "stat")));
		PAIR(i, TIME(&g->lib, check(btrfslayer_get(h, id, NULL, &path, &err), err, "get");
			     free(path)),
		     TIME(&g->raw, int fd = open_under(subvols, id); check_sys(fd, "open");
			  check_sys(fstat(fd, &st), "fstat"); close(fd)));
		if (!gl)
			continue;
		PAIR(i, TIME(&gl->lib, check(btrfslayer_get(h, lid, NULL, &path, &err), err, "get");
			     free(path)),
		     TIME(&gl->raw, int fd = open_under(subvols, lid); check_sys(fd, "open");
			  check_sys(fstat(fd, &st), "fstat"); check_sys(raw_record(quotas, lid), "record");
			  check_sys(raw_limit_check(fd), "search"); close(fd)));
		btrfslayer_usage usage;
		PAIR(i, TIME(&u->lib, check(btrfslayer_get_usage(h, lid, 0, &usage, sizeof(usage), &err),
					    err, "usage")),
		     TIME(&u->raw, int fd = open_under(subvols, lid); check_sys(fd, "open");
			  check_sys(raw_usage(fd), "search"); check_sys(raw_record(quotas, lid), "record");
			  close(fd)));
	}
	lib_remove(h, id);
	if (gl)
		lib_remove(h, lid);
}

/* set limit and clear limit, alternating on one layer each way */
static void bench_limits(btrfslayer *h, enum mode mode, int rawfd, int subvols)
{
	struct row *s = new_row("set size limit", mode, AGAINST_DURABLE, 1.15);
	struct row *c = new_row("clear size limit", mode, AGAINST_DURABLE, 1.15);
	/* the same calls against the least a limit with a Docker-style
	 * record costs: the ioctl, the record written and renamed into
	 * place, one commit */
	struct row *p = new_row("set size limit, vs raw limit + record file renamed + syncfs",
				mode, AGAINST_DURABLE, 0);
	/* and the least any change of a record in home can cost, the
	 * library's or not: no new file, no name, no intent, the same
	 * number of bytes rewritten in place (its "library" column is that
	 * bare sequence, set against the durable limit alone) */
	struct row *inplace = new_row("raw limit + a record rewritten in place + syncfs (no library "
				"call), vs raw limit + syncfs", mode, AGAINST_DURABLE, 0);
	inplace->note = "the floor of a limit and its record together: the commit writes home's tree "
		  "too";
	const char *id = "limits";
	lib_create(h, id, NULL, 0, NULL);
	check_sys(raw_create(rawfd, "limits-a"), "create subvolume");
	check_sys(raw_create(rawfd, "limits-b"), "create subvolume");
	int a = open_under(rawfd, "limits-a"), b = open_under(rawfd, "limits-b");
	check_sys(a, "open");
	check_sys(b, "open");
	(void)subvols;
	int fixed = openat(rawfd, "record-fixed", O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	check_sys(fixed, "create record");
	check_sys(syncfs(fixed), "syncfs");
	btrfslayer_error *err = NULL;
	for (int i = 0; i < R.mutate; i++) {
		uint64_t size = (1ULL << 30) + (uint64_t)i * 4096;
		char width20[24];
		snprintf(width20, sizeof(width20), "%020" PRIu64, size);
		WORK(inplace, lib, check_sys(raw_limit(b, size), "limit");
		     check_sys(pwrite(fixed, width20, 20, 0) == 20 ? 0 : -1, "rewrite record");
		     check_sys(syncfs(b), "syncfs"));
		WORK(s, lib, check(btrfslayer_set_quota(h, id, size, &err), err, "set limit"));
		TIME(&s->raw, check_sys(raw_limit(a, size), "limit"));
		check_sys(syncfs(a), "syncfs");
		WORK(s, durable, check_sys(raw_limit(b, size), "limit");
		     check_sys(syncfs(b), "syncfs"));
		char text[32];
		int len = snprintf(text, sizeof(text), "%" PRIu64, size);
		WORK(p, durable, check_sys(raw_limit(b, size), "limit");
		     int f = openat(rawfd, "record.tmp", O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
		     check_sys(f, "create record");
		     check_sys(write(f, text, (size_t)len) == len ? 0 : -1, "write record");
		     close(f); check_sys(renameat(rawfd, "record.tmp", rawfd, "record"), "rename");
		     check_sys(syncfs(b), "syncfs"));
		WORK(c, lib, check(btrfslayer_clear_quota(h, id, &err), err, "clear limit"));
		TIME(&c->raw, check_sys(raw_limit(a, 0), "limit"));
		check_sys(syncfs(a), "syncfs");
		WORK(c, durable, check_sys(raw_limit(b, 0), "limit"); check_sys(syncfs(b), "syncfs"));
	}
	for (int i = 0; i < s->lib.n; i++)
		add(&p->lib, s->lib.v[i]);
	for (int i = 0; i < s->durable.n; i++)
		add(&inplace->durable, s->durable.v[i]);
	device_work_append(&p->lib_work, &s->lib_work);
	device_work_append(&inplace->durable_work, &s->durable_work);
	close(fixed);
	close(a);
	close(b);
	lib_remove(h, id);
}

/* ---- scale ------------------------------------------------------------------------ */

struct scale {
	enum mode mode;
	int layers;
	struct series open, close, create, exists, remove, list, raw_list;
	long rss_kib;
};

#define MAX_SCALES (2 * N_MODES)
static struct scale scales[MAX_SCALES];
static int n_scales;

static int count_layers(int subvols)
{
	int fd = openat(subvols, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	DIR *dir = fdopendir(fd);
	if (!dir)
		die("list subvolumes: %s", strerror(errno));
	int n = 0;
	struct dirent *d;
	while ((d = readdir(dir)))
		n += d->d_name[0] != '.';
	closedir(dir);
	return n;
}

/* Bring home to `layers` layers with bare ioctls (what a home Docker's
 * driver made looks like: subvolumes/<id>), committed. */
static void populate(int subvols, int layers)
{
	char name[32];
	for (int n = count_layers(subvols), i = n; n < layers; i++) {
		snprintf(name, sizeof(name), "p%06d", i);
		if (raw_create(subvols, name) == 0)
			n++;
		else if (errno != EEXIST)
			die("create subvolume: %s", strerror(errno));
	}
	check_sys(syncfs(subvols), "syncfs");
	/* the kernel's own after-work of thousands of creations (seen to slow
	 * every syscall for seconds with quotas on) is not the library's */
	sleep(5);
}

/* A directory read with one statx per entry: what list costs by hand. */
static int raw_list(int subvols)
{
	int fd = openat(subvols, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	DIR *dir = fdopendir(fd);
	if (!dir)
		return -1;
	struct dirent *d;
	struct statx stx;
	int n = 0;
	while ((d = readdir(dir)))
		if (d->d_name[0] != '.' &&
		    statx(fd, d->d_name, AT_SYMLINK_NOFOLLOW, STATX_INO | STATX_MNT_ID, &stx) == 0)
			n++;
	closedir(dir);
	return n;
}

/* What a runtime does at this scale, in a process of its own (main(),
 * --rss-child), so that its peak RSS is the library's and not the bench's. */
static void rss_child(enum mode mode)
{
	btrfslayer *h = open_home(mode);
	btrfslayer_error *err = NULL;
	for (int i = 0; i < 10; i++) {
		char id[32];
		snprintf(id, sizeof(id), "rss%02d", i);
		lib_create(h, id, NULL, 0, NULL);
		if (btrfslayer_exists(h, id, &err) != 1)
			die("rss: %s does not exist", id);
		lib_remove(h, id);
	}
	check(btrfslayer_close(h, &err), err, "close");
	/* its own peak (VmHWM): a spawned child's rusage would also count
	 * the memory of the parent it was cloned from */
	char line[256];
	FILE *f = fopen("/proc/self/status", "re");
	while (f && fgets(line, sizeof(line), f))
		if (!strncmp(line, "VmHWM:", 6))
			fputs(line + 6, stdout);
	if (f)
		fclose(f);
}

/* Peak RSS in KiB of rss_child(), run as a process of its own. */
static long child_rss(enum mode mode)
{
	char mode_arg[16], out[64];
	snprintf(mode_arg, sizeof(mode_arg), "%d", (int)mode);
	const char *const argv[] = { "/proc/self/exe", "--rss-child", mode_arg, home, NULL };
	run(argv, out, sizeof(out));
	return strtol(out, NULL, 10);
}

static void bench_scale(enum mode mode, int subvols, int layers)
{
	if (n_scales == MAX_SCALES)
		die("too many scale runs");
	struct scale *s = &scales[n_scales++];
	memset(s, 0, sizeof(*s));
	s->mode = mode;
	s->layers = layers;
	populate(subvols, layers);
	btrfslayer_error *err = NULL;
	char probe[32];
	snprintf(probe, sizeof(probe), "p%06d", layers / 2);
	for (int i = 0; i < R.open; i++) {
		btrfslayer *h;
		TIME(&s->open, h = open_home(mode));
		for (int k = 0; k < 20; k++)
			TIME(&s->exists, check(btrfslayer_exists(h, probe, &err) == 1 ? 0 : -ENOENT,
					       err, "exists"));
		TIME(&s->close, check(btrfslayer_close(h, &err), err, "close"));
	}
	/* the lists apart, with a handle of their own: a walk of 10,000
	 * entries leaves the CPU's caches cold, and a close timed after it
	 * would measure that (a bare readdir and statx of each does the
	 * same to the next close), not what close does */
	for (int i = 0; i < R.list; i++) {
		btrfslayer *h = open_home(mode);
		/* a few of each per open, in alternating order: neither one
		 * always finds the caches the other warmed */
		for (int k = 0; k < 4; k++) {
			btrfslayer_list *list;
			int n = 0;
			if (k % 2)
				TIME(&s->raw_list, n = raw_list(subvols));
			TIME(&s->list, check(btrfslayer_layers(h, &list, &err), err, "list"));
			if (btrfslayer_list_count(list) != (size_t)layers)
				die("list: %zu layers, expected %d", btrfslayer_list_count(list), layers);
			btrfslayer_list_free(list);
			if (!(k % 2))
				TIME(&s->raw_list, n = raw_list(subvols));
			if (n != layers)
				die("raw list: %d entries, expected %d", n, layers);
		}
		check(btrfslayer_close(h, &err), err, "close");
	}
	/* creates and removes last: a removal leaves work in flight (the
	 * kernel's cleaner, a qgroup to destroy after it) that the opens
	 * above must not meet at one scale and not at the other */
	btrfslayer *h = open_home(mode);
	for (int i = 0; i < 2 * R.open; i++) {
		char id[32];
		next_id(id, sizeof(id), "x");
		TIME(&s->create, lib_create(h, id, NULL, 0, NULL));
		TIME(&s->remove, lib_remove(h, id));
	}
	check(btrfslayer_close(h, &err), err, "close");
	s->rss_kib = child_rss(mode);
	/* With quotas on, each removal leaves a qgroup for the library to
	 * destroy once the kernel's cleaner has dropped the subvolume (a
	 * marker in quotas/.staging until then), which every open tries
	 * again: wait for the cleaner, and let one open and close finish
	 * them, so that the next scale starts with nothing in flight. */
	const char *const wait[] = { "btrfs", "subvolume", "sync", mnt, NULL };
	run(wait, NULL, 0);
	open_home_closed(mode);
}

/* ---- one quota mode ------------------------------------------------------------------ */

static void bench_mode(enum mode mode)
{
	make_fs(mode);
	fprintf(stderr, "btrfslayer-bench: quotas %s: setting up\n", mode_names[mode]);
	btrfslayer *h = open_home(mode);
	char path[PATH_MAX];
	snprintf(path, sizeof(path), "%s/subvolumes", home);
	int subvols = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	check_sys(subvols, "open subvolumes");
	snprintf(path, sizeof(path), "%s/quotas", home);
	int quotas = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	check_sys(quotas, "open quotas");
	int rawfd = raw_dir();
	make_image(h, subvols, "image10k", IMAGE_FILES);
	make_image(h, subvols, "image100k", BIG_FILES);
	uint64_t home_tree;
	int home_fd = open(home, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	check_sys(home_fd, "open home");
	check_sys(raw_subvolume_id(home_fd, &home_tree), "look up home's tree");
	close(home_fd);
	const char *why = NULL;
	work_counts = device_work_start(rawfd, loopdev, home_tree, &why);
	if (why)
		snprintf(work_missing, sizeof(work_missing), "%s", why);

	fprintf(stderr, "btrfslayer-bench: quotas %s: single operations\n", mode_names[mode]);
	bench_reads(h, mode, subvols, quotas);
	bench_create_remove_empty(h, mode, rawfd);
	if (mode != OFF)
		bench_limits(h, mode, rawfd, subvols);
	bench_snapshot(h, mode, rawfd, subvols, "image10k");
	bench_remove_big(h, mode, rawfd, subvols, "image100k", false);
	bench_remove_big(h, mode, rawfd, subvols, "image100k", true);
	btrfslayer_error *err = NULL;
	check(btrfslayer_close(h, &err), err, "close");
	device_work_stop();
	close(rawfd);
	close(quotas);
	close(subvols);
	teardown();

	/* a fresh filesystem: the kernel's cleaner, still dropping the
	 * snapshots removed above (with full qgroups, walking back references
	 * in every commit), would time itself into the scale run */
	fprintf(stderr, "btrfslayer-bench: quotas %s: scale\n", mode_names[mode]);
	make_fs(mode);
	open_home_closed(mode);
	snprintf(path, sizeof(path), "%s/subvolumes", home);
	subvols = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	check_sys(subvols, "open subvolumes");
	bench_scale(mode, subvols, SCALE_SMALL);
	bench_scale(mode, subvols, SCALE_LARGE);
	close(subvols);
	teardown();
}

/* ---- report ------------------------------------------------------------------------- */

static double ratio(struct series *a, struct series *b)
{
	double m = median(b);
	return m > 0 ? median(a) / m : 0;
}

/* Counts for each mutating row: the library's column beside its
 * baseline's, so that a ratio above 1 in the table above can be told
 * apart: more work asked of the kernel, or the same work costing more. */
static void report_work(void)
{
	if (!(work_counts & WORK_DEVICE_COUNTS)) {
		printf("\nWhat the calls made the kernel write: not counted (%s).\n", work_missing);
		return;
	}
	bool tree_counts = work_counts & WORK_TREE_COUNTS;
	printf("\nWhat one call made the kernel write, medians per call, as `library · "
	       "durable` (a floor row's two columns, as above): KiB written to the loop device, "
	       "cache flushes sent to it, transaction commits, and tree blocks copied on write "
	       "in home's tree (its directories and records), the quota tree, layers' own "
	       "trees, and the rest (root, extent, free space, checksum trees). The kernel's "
	       "cleaner drops removed subvolumes after the call; what it writes lands in "
	       "whichever call runs then.%s%s\n\n",
	       tree_counts ? "" : " Commits and tree blocks not counted: ",
	       tree_counts ? "" : work_missing);
	printf("| op | quotas | KiB written | flushes | commits | home's tree | quota tree | "
	       "layers' trees | other trees |\n");
	printf("|---|---|---|---|---|---|---|---|---|\n");
	for (int i = 0; i < n_rows; i++) {
		struct row *r = &rows[i];
		if (!r->lib_work.n || !r->durable_work.n)
			continue;
		struct work_sample lib, dur;
		device_work_median(&r->lib_work, &lib);
		device_work_median(&r->durable_work, &dur);
		printf("| %s | %s | %.4g · %.4g | %.4g · %.4g", r->op, mode_names[r->mode],
		       lib.kib_written, dur.kib_written, lib.flushes, dur.flushes);
		if (!tree_counts) {
			printf(" | — | — | — | — | — |\n");
			continue;
		}
		printf(" | %.4g · %.4g", lib.commits, dur.commits);
		for (int t = 0; t < N_WORK_TREES; t++)
			printf(" | %.4g · %.4g", lib.blocks[t], dur.blocks[t]);
		printf(" |\n");
	}
}

static void report(bool quick)
{
	char lib[128], raw[128], dur[128];
	double worst = 0;
	const char *worst_op = "";
	enum mode worst_mode = OFF;
	struct utsname_like { char s[256]; } kernel;
	FILE *f = fopen("/proc/sys/kernel/osrelease", "re");
	if (!f || !fgets(kernel.s, sizeof(kernel.s), f))
		snprintf(kernel.s, sizeof(kernel.s), "?");
	if (f)
		fclose(f);
	kernel.s[strcspn(kernel.s, "\n")] = '\0';

	printf("## btrfslayer-bench%s: Linux %s, loopback btrfs, %ld CPUs\n\n", quick ? " --quick" : "",
	       kernel.s, sysconf(_SC_NPROCESSORS_ONLN));
	printf("Medians (min–max) over the rounds; raw = the bare ioctl or syscalls, durable = "
	       "the bare ioctl then syncfs.\n\n");
	printf("| op | quotas | library | raw | durable raw | lib/raw | lib/durable | target | |\n");
	printf("|---|---|---|---|---|---|---|---|---|\n");
	for (int i = 0; i < n_rows; i++) {
		struct row *r = &rows[i];
		fmt_series(lib, sizeof(lib), &r->lib);
		fmt_series(raw, sizeof(raw), &r->raw);
		fmt_series(dur, sizeof(dur), &r->durable);
		double to_raw = ratio(&r->lib, &r->raw);
		double to_dur = r->durable.n ? ratio(&r->lib, &r->durable) : 0;
		double judged = r->against == AGAINST_DURABLE ? to_dur : to_raw;
		bool hit = judged <= r->target;
		if (!r->target) {
			printf("| %s | %s | %s | — | %s | — | %.2f× | no target: %s | |\n", r->op,
			       mode_names[r->mode], lib, dur, to_dur,
			       r->note ? r->note : "the least the library's extra step costs");
			continue;
		}
		char dur_ratio[16] = "—";
		if (r->durable.n)
			snprintf(dur_ratio, sizeof(dur_ratio), "%.2f×", to_dur);
		printf("| %s%s%s%s | %s | %s | %s | %s | %.2f× | %s | ≤ %.2f× %s | %s |\n", r->op,
		       r->note ? " <small>(" : "", r->note ? r->note : "", r->note ? ")</small>" : "",
		       mode_names[r->mode], lib, raw, dur, to_raw, dur_ratio, r->target,
		       r->against == AGAINST_DURABLE ? "durable" : "raw", hit ? "hit" : "**miss**");
		if (judged > worst) {
			worst = judged;
			worst_op = r->op;
			worst_mode = r->mode;
		}
	}
	report_work();
	printf("\nScale: medians (min–max); list's raw baseline is a directory read with one "
	       "statx per entry; peak RSS (VmHWM) of a process that opens, creates, looks up, "
	       "removes and closes.\n\n");
	printf("| op | quotas | at %d layers | at %d layers | %d / %d | target | |\n", SCALE_SMALL,
	       SCALE_LARGE, SCALE_LARGE, SCALE_SMALL);
	printf("|---|---|---|---|---|---|---|\n");
	for (int m = 0; m < N_MODES; m++) {
		struct scale *a = NULL, *b = NULL;
		for (int i = 0; i < n_scales; i++)
			if (scales[i].mode == (enum mode)m)
				*(scales[i].layers == SCALE_SMALL ? &a : &b) = &scales[i];
		if (!a || !b)
			continue;
		struct {
			const char *op;
			struct series *x, *y;
			double target;
		} ops[] = {
			{ "open", &a->open, &b->open, 2 },
			{ "close", &a->close, &b->close, 2 },
			{ "create empty", &a->create, &b->create, 0 },
			{ "exists", &a->exists, &b->exists, 0 },
			{ "remove empty", &a->remove, &b->remove, 0 },
			{ "list", &a->list, &b->list, 0 },
			{ "list, raw (readdir + statx)", &a->raw_list, &b->raw_list, 0 },
		};
		for (size_t k = 0; k < sizeof(ops) / sizeof(ops[0]); k++) {
			fmt_series(lib, sizeof(lib), ops[k].x);
			fmt_series(raw, sizeof(raw), ops[k].y);
			double g = ratio(ops[k].y, ops[k].x);
			char target[32] = "", verdict[16] = "";
			if (ops[k].target) {
				snprintf(target, sizeof(target), "≤ %.0f×", ops[k].target);
				snprintf(verdict, sizeof(verdict), "%s",
					 g <= ops[k].target ? "hit" : "**miss**");
			}
			printf("| %s | %s | %s | %s | %.2f× | %s | %s |\n", ops[k].op, mode_names[m],
			       lib, raw, g, target, verdict);
		}
		for (int k = 0; k < 2; k++) {
			struct scale *s = k ? b : a;
			double lr = ratio(&s->list, &s->raw_list);
			printf("| list / raw list at %d | %s | %.2f× | | | ≤ 1.5× | %s |\n", s->layers,
			       mode_names[m], lr, lr <= 1.5 ? "hit" : "**miss**");
		}
		printf("| peak RSS | %s | %ld KiB | %ld KiB | %.2f× | constant | %s |\n",
		       mode_names[m], a->rss_kib, b->rss_kib, (double)b->rss_kib / (double)a->rss_kib,
		       b->rss_kib <= a->rss_kib + 512 ? "hit" : "**miss**");
	}
	printf("\nworst: %s, quotas %s\n", worst_op, mode_names[worst_mode]);
	printf("worst_ratio=%.2f\n", worst);
}

int main(int argc, char **argv)
{
	bool quick = false;
	const char *dir = "/var/tmp";
	if (argc == 4 && !strcmp(argv[1], "--rss-child")) {
		snprintf(home, sizeof(home), "%s", argv[3]);
		rss_child((enum mode)atoi(argv[2]));
		return 0;
	}
	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--quick")) {
			quick = true;
		} else if (!strcmp(argv[i], "--dir") && i + 1 < argc) {
			dir = argv[++i];
		} else if (!strcmp(argv[i], "--quotas") && i + 1 < argc) {
			const char *want = argv[++i];
			only_mode = -1;
			for (int m = 0; m < N_MODES; m++)
				if (!strcmp(want, mode_names[m]))
					only_mode = m;
			if (only_mode < 0) {
				fprintf(stderr, "btrfslayer-bench: --quotas %s: not off, qgroup or "
					"simple\n", want);
				return 2;
			}
		} else {
			fprintf(stderr, "usage: %s [--quick] [--dir DIR] [--quotas off|qgroup|simple]\n",
				argv[0]);
			return 2;
		}
	}
	if (geteuid() != 0) {
		fprintf(stderr, "btrfslayer-bench: needs root (loop devices, mounts)\n");
		return 1;
	}
	R = quick ? quick_rounds : full_rounds;
	snprintf(work, sizeof(work), "%s/btrfslayer-bench.XXXXXX", dir);
	if (!mkdtemp(work)) {
		*work = '\0';
		die("make a directory in %s: %s", dir, strerror(errno));
	}
	snprintf(mnt, sizeof(mnt), "%s/mnt", work);
	check_sys(mkdir(mnt, 0700), "mkdir mount point");
	signal(SIGINT, on_signal);
	signal(SIGTERM, on_signal);
	double t0 = now_us();
	for (int m = 0; m < N_MODES; m++)
		if (only_mode == N_MODES || only_mode == m)
			bench_mode((enum mode)m);
	report(quick);
	cleanup_all();
	fprintf(stderr, "btrfslayer-bench: done in %.0f s\n", (now_us() - t0) / 1e6);
	return 0;
}
