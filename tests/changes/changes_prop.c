/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Property test of btrfslayer_changes(): on a real loopback btrfs, many
 * random cases, each a random tree in a layer, a snapshot of it, a random
 * batch of mutations in the snapshot; the changes read from the send stream
 * (never falling back to the walk) must equal the walked ones exactly:
 * path, kind, mode in each tree and whether the inode was replaced.
 *
 * Cases share one filesystem and one home: a base tree serves several
 * children (BATCH), then its layers go.  Parents are read-only or writable
 * at random, and so are the children once mutated, so that the send runs
 * with and without temporary snapshots.
 *
 * Then children computing changes are SIGKILLed 30 times mid-call: the
 * temporary snapshots they held must be gone after the next open's sweep.
 *
 * BTRFSLAYER_CHANGES_CASES (default 500) and BTRFSLAYER_CHANGES_SEED change
 * the run; a failure prints the seed, the case, its mutations and both
 * lists.  Needs root: skips (77) without it, except under CI=true.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/time.h>
#include <sys/xattr.h>
#include <time.h>
#include <unistd.h>
#include <dirent.h>
#include <signal.h>
#include <sys/wait.h>

#include "harness.h"
#include "internal.h"

#define BATCH 5		/* children per base tree */
#define MAX_PATHS 4096

static uint64_t rng_state;

static uint64_t rnd(void)
{
	/* splitmix64 */
	uint64_t z = (rng_state += 0x9e3779b97f4a7c15ULL);
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return z ^ (z >> 31);
}

static unsigned pick(unsigned n)
{
	return (unsigned)(rnd() % n);
}

/* What was done to the case, for a failure's report. */
static char *journal;
static size_t journal_len;
static FILE *journal_f;

static void note(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void note(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vfprintf(journal_f, fmt, ap);
	va_end(ap);
	fputc('\n', journal_f);
}

static void die(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));
static void die(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	fputs("FAIL: ", stderr);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	exit(1);
}

/* ---- the tree in a layer -------------------------------------------------- */

static const char *const names[] = {
	"a", "b", "c", "d", "e", "a-b", "a.b", "ab", "x y", "zz", "etc", "usr", "bin",
	"lib", "f1", "f2", "o257-5-0", ".hidden", "long-name-of-a-file-here",
};
#define N_NAMES (sizeof(names) / sizeof(names[0]))

/* Every path of the tree at root (relative, no leading slash), found by a
 * walk that does not follow symlinks; dirs[i] says which are directories. */
struct listing {
	char *v[MAX_PATHS];
	bool dir[MAX_PATHS];
	size_t n;
};

static void list_walk(const char *root, const char *rel, struct listing *out)
{
	char path[PATH_MAX];
	snprintf(path, sizeof(path), "%s/%s", root, rel);
	DIR *d = opendir(path);
	if (!d)
		return;
	struct dirent *e;
	while ((e = readdir(d)) && out->n < MAX_PATHS) {
		if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
			continue;
		char child[PATH_MAX], full[PATH_MAX];
		snprintf(child, sizeof(child), "%s%s%s", rel, *rel ? "/" : "", e->d_name);
		snprintf(full, sizeof(full), "%s/%s", root, child);
		struct stat st;
		if (lstat(full, &st) < 0)
			continue;
		out->v[out->n] = strdup(child);
		out->dir[out->n] = S_ISDIR(st.st_mode);
		out->n++;
		if (S_ISDIR(st.st_mode))
			list_walk(root, child, out);
	}
	closedir(d);
}

static void list_free(struct listing *l)
{
	for (size_t i = 0; i < l->n; i++)
		free(l->v[i]);
	l->n = 0;
}

/* A random directory of the tree ("" is the root), or a file when !dir. */
static const char *random_entry(struct listing *l, bool dir)
{
	size_t candidates = 0;
	for (size_t i = 0; i < l->n; i++)
		candidates += l->dir[i] == dir;
	if (dir && (!candidates || pick(4) == 0))
		return "";
	if (!candidates)
		return NULL;
	size_t k = pick((unsigned)candidates);
	for (size_t i = 0; i < l->n; i++)
		if (l->dir[i] == dir && k-- == 0)
			return l->v[i];
	return NULL;
}

static void at(char *buf, size_t size, const char *root, const char *rel)
{
	snprintf(buf, size, "%s%s%s", root, *rel ? "/" : "", rel);
}

/* Only ever a regular file: never a fifo (it would block) or a device. */
static bool regular_or_missing(const char *path)
{
	struct stat st;
	return lstat(path, &st) < 0 ? errno == ENOENT : S_ISREG(st.st_mode);
}

static void write_file(const char *path, size_t size, int flags)
{
	if (!regular_or_missing(path))
		return;
	int fd = open(path, O_WRONLY | O_CREAT | O_NOFOLLOW | O_NONBLOCK | flags, 0644);
	if (fd < 0)
		return;
	char buf[4096];
	for (size_t i = 0; i < sizeof(buf); i++)
		buf[i] = (char)rnd();
	while (size) {
		size_t n = size < sizeof(buf) ? size : sizeof(buf);
		if (write(fd, buf, n) < 0)
			break;
		size -= n;
	}
	close(fd);
}

static void random_times(const char *path)
{
	struct timespec ts[2];
	ts[0].tv_sec = ts[1].tv_sec = 1600000000 + pick(3);
	/* 0 nanoseconds now and then: Docker's tar-friendly equality */
	ts[0].tv_nsec = ts[1].tv_nsec = pick(3) ? (long)pick(1000000000) : 0;
	utimensat(AT_FDCWD, path, ts, AT_SYMLINK_NOFOLLOW);
}

static void set_capability(const char *path)
{
	/* struct vfs_cap_data, revision 2 */
	uint32_t cap[5] = { 0x02000000 | pick(2), 1u << pick(32), 0, 0, 0 };
	lsetxattr(path, "security.capability", cap, sizeof(cap), 0);
}

/* Make something new at `path`: a file, a directory (with a few entries),
 * a symlink, a fifo or a device. */
static void make_entry(const char *path, int depth)
{
	switch (pick(depth > 4 ? 7 : 9)) {
	case 0: case 1: case 2:
		write_file(path, pick(3) ? pick(100) : pick(20000), O_EXCL);
		if (pick(4) == 0)
			lsetxattr(path, "user.x", "v", 1 + pick(1), 0);
		if (pick(8) == 0)
			set_capability(path);
		break;
	case 3:
		symlink(pick(2) ? "target" : "../../a", path);
		break;
	case 4:
		mkfifo(path, 0600 | pick(2) * 044);
		break;
	case 5:
		mknod(path, S_IFCHR | 0600, makedev(1, 3 + 2 * pick(3)));	/* null, zero, full */
		break;
	case 6:
		if (mkdir(path, 0755) == 0 && pick(5) == 0) {
			/* deep nesting */
			char deep[PATH_MAX];
			snprintf(deep, sizeof(deep), "%s", path);
			for (unsigned i = 0, n = 5 + pick(20); i < n; i++) {
				size_t len = strlen(deep);
				snprintf(deep + len, sizeof(deep) - len, "/%s", names[pick(N_NAMES)]);
				if (mkdir(deep, 0755) < 0)
					break;
			}
			write_file(deep, 10, O_EXCL);
		}
		break;
	default:
		if (mkdir(path, 0700 + pick(2) * 055) == 0) {
			for (unsigned i = 0, n = pick(5); i < n; i++) {
				char child[PATH_MAX];
				snprintf(child, sizeof(child), "%s/%s", path, names[pick(N_NAMES)]);
				make_entry(child, depth + 1);
			}
		}
	}
}

static void random_tree(const char *root)
{
	for (unsigned i = 0, n = 5 + pick(40); i < n; i++) {
		struct listing l = { .n = 0 };
		list_walk(root, "", &l);
		const char *dir = random_entry(&l, true);
		char path[PATH_MAX], base[PATH_MAX];
		at(base, sizeof(base), root, dir);
		snprintf(path, sizeof(path), "%s/%s", base, names[pick(N_NAMES)]);
		const char *file = random_entry(&l, false);
		if (file && pick(4) == 0) {
			/* hard links in the parent, for the child to change */
			char target[PATH_MAX];
			at(target, sizeof(target), root, file);
			link(target, path);
		} else {
			make_entry(path, (int)(strlen(dir) / 3));
		}
		list_free(&l);
	}
}

static void remove_tree(const char *path)
{
	struct stat st;
	if (lstat(path, &st) < 0)
		return;
	if (S_ISDIR(st.st_mode)) {
		DIR *d = opendir(path);
		struct dirent *e;
		while (d && (e = readdir(d))) {
			if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
				continue;
			char child[PATH_MAX];
			snprintf(child, sizeof(child), "%s/%s", path, e->d_name);
			remove_tree(child);
		}
		if (d)
			closedir(d);
		rmdir(path);
	} else {
		unlink(path);
	}
}

/* One random mutation of the tree at root. */
static void mutate(const char *root)
{
	struct listing l = { .n = 0 };
	list_walk(root, "", &l);
	const char *file = random_entry(&l, false);
	const char *dir = random_entry(&l, true);
	const char *any = pick(2) && file ? file : dir;
	char p[PATH_MAX], q[PATH_MAX], base[PATH_MAX];
	unsigned op = pick(20);
	at(p, sizeof(p), root, file ? file : "");
	switch (op) {
	case 0: /* create */
	case 1:
		at(base, sizeof(base), root, dir);
		snprintf(q, sizeof(q), "%s/%s", base, names[pick(N_NAMES)]);
		note("create %s", q + strlen(root));
		make_entry(q, 0);
		break;
	case 2: /* overwrite in place, sometimes hiding it (same size, old mtime) */
		if (file) {
			struct stat st;
			bool hide = pick(3) == 0 && lstat(p, &st) == 0;
			note("overwrite%s /%s", hide ? " (hidden)" : "", file);
			write_file(p, hide ? (size_t)st.st_size : pick(200), O_TRUNC);
			if (hide) {
				struct timespec ts[2] = { st.st_atim, st.st_mtim };
				utimensat(AT_FDCWD, p, ts, AT_SYMLINK_NOFOLLOW);
			}
		}
		break;
	case 3: /* truncate */
		if (file) {
			note("truncate /%s", file);
			if (regular_or_missing(p))
				truncate(p, pick(2) ? 0 : pick(50000));
		}
		break;
	case 4: /* append */
		if (file) {
			note("append /%s", file);
			write_file(p, 1 + pick(100), O_APPEND);
		}
		break;
	case 5: /* chmod */
		at(q, sizeof(q), root, any);
		if (*any) {
			note("chmod /%s", any);
			fchmodat(AT_FDCWD, q, 0600 | pick(8) << 3 | pick(2) * 04000, 0);
		}
		break;
	case 6: /* chown */
		at(q, sizeof(q), root, any);
		if (*any) {
			note("chown /%s", any);
			lchown(q, pick(3) * 1000, pick(3) * 1000);
		}
		break;
	case 7: /* utimes */
		at(q, sizeof(q), root, any);
		if (*any) {
			note("utimes /%s", any);
			random_times(q);
		}
		break;
	case 8: /* rename across directories, maybe over something */
	case 9:
		if (*any) {
			at(q, sizeof(q), root, any);
			at(base, sizeof(base), root, random_entry(&l, true));
			snprintf(p, sizeof(p), "%s/%s", base, names[pick(N_NAMES)]);
			note("rename /%s -> %s", any, p + strlen(root));
			rename(q, p);
		}
		break;
	case 10: /* delete a file */
		if (file) {
			note("delete /%s", file);
			unlink(p);
		}
		break;
	case 11: /* delete a subtree */
		if (*dir) {
			at(q, sizeof(q), root, dir);
			note("delete tree /%s", dir);
			remove_tree(q);
		}
		break;
	case 12: /* replace a directory by a file, or a file by a directory */
		at(q, sizeof(q), root, any);
		if (*any) {
			note("replace /%s", any);
			struct stat st;
			bool was_dir = lstat(q, &st) == 0 && S_ISDIR(st.st_mode);
			remove_tree(q);
			if (was_dir)
				write_file(q, pick(10), O_EXCL);
			else
				make_entry(q, 4);
		}
		break;
	case 13: /* hard link */
		if (file) {
			at(base, sizeof(base), root, dir);
			snprintf(q, sizeof(q), "%s/%s", base, names[pick(N_NAMES)]);
			note("link /%s -> %s", file, q + strlen(root));
			link(p, q);
		}
		break;
	case 14: /* xattrs */
		if (file) {
			note("xattr /%s", file);
			switch (pick(4)) {
			case 0: lsetxattr(p, "user.y", "w", 1, 0); break;
			case 1: lremovexattr(p, "user.x"); break;
			case 2: set_capability(p); break;
			default: lremovexattr(p, "security.capability");
			}
		}
		break;
	case 15: /* the same path made again: rm -rf and mkdir, or a new file */
		at(q, sizeof(q), root, any);
		if (*any) {
			note("recreate /%s", any);
			struct stat st;
			bool was_dir = lstat(q, &st) == 0 && S_ISDIR(st.st_mode);
			remove_tree(q);
			if (was_dir)
				mkdir(q, st.st_mode & 07777);
			else
				write_file(q, (size_t)st.st_size, O_EXCL);
		}
		break;
	case 16: /* a device's number */
		if (file) {
			struct stat st;
			if (lstat(p, &st) == 0 && S_ISCHR(st.st_mode)) {
				note("mknod again /%s", file);
				unlink(p);
				mknod(p, S_IFCHR | 0600, makedev(1, 3 + 2 * pick(3)));
			}
		}
		break;
	default: /* a deeper new subtree */
		at(base, sizeof(base), root, dir);
		snprintf(q, sizeof(q), "%s/%s", base, names[pick(N_NAMES)]);
		note("mkdir tree %s", q + strlen(root));
		if (mkdir(q, 0755) == 0)
			for (unsigned i = 0, n = 1 + pick(6); i < n; i++) {
				char child[PATH_MAX];
				snprintf(child, sizeof(child), "%s/%s", q, names[pick(N_NAMES)]);
				make_entry(child, 1);
			}
	}
	list_free(&l);
}

/* ---- the comparison ------------------------------------------------------- */

static const char *kind_name(int kind)
{
	return kind == BTRFSLAYER_CHANGE_ADDED ? "A" : kind == BTRFSLAYER_CHANGE_DELETED ? "D" : "C";
}

static void print_list(const char *what, const struct bl_changes *c)
{
	fprintf(stderr, "%s (%zu):\n", what, c->n);
	for (size_t i = 0; i < c->n; i++)
		fprintf(stderr, "  %s %s mode=%o parent_mode=%o%s\n", kind_name(c->v[i].kind),
			c->v[i].path, c->v[i].mode, c->v[i].parent_mode,
			c->v[i].replaced ? " replaced" : "");
}

static bool same(const struct bl_changes *a, const struct bl_changes *b)
{
	if (a->n != b->n)
		return false;
	for (size_t i = 0; i < a->n; i++)
		if (strcmp(a->v[i].path, b->v[i].path) || a->v[i].kind != b->v[i].kind ||
		    a->v[i].mode != b->v[i].mode || a->v[i].parent_mode != b->v[i].parent_mode ||
		    a->v[i].replaced != b->v[i].replaced)
			return false;
	return true;
}

static void seal(btrfslayer *h, const char *home, const char *id)
{
	char path[PATH_MAX];
	snprintf(path, sizeof(path), "%s/subvolumes/%s", home, id);
	int fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0 || bl_ioctl_set_read_only(fd, true) < 0)
		die("seal %s: %s", path, strerror(errno));
	close(fd);
	(void)h;
}

static void ok(int r, btrfslayer_error *err, const char *what)
{
	if (r < 0)
		die("%s: %s", what, err ? btrfslayer_error_message(err) : strerror(-r));
}

static void on_log(int level, const char *message, void *userdata)
{
	(void)userdata;
	if (level <= BTRFSLAYER_LOG_WARNING)
		fprintf(stderr, "log: %s\n", message);
}

struct counting {
	const struct bl_changes *want;
	size_t n;
	size_t stop_at;
};

static int count_change(int kind, const char *path, void *userdata)
{
	struct counting *c = userdata;
	if (c->n >= c->want->n || kind != c->want->v[c->n].kind ||
	    strcmp(path, c->want->v[c->n].path))
		die("btrfslayer_changes() called back with %d %s, not as listed", kind, path);
	return ++c->n == c->stop_at ? 7 : 0;
}

/* The public calls agree with the list: the same callbacks in the same
 * order, a non-zero return stops them and is returned, and diff_size adds
 * up the non-directories added or modified (each inode once). */
static void public_calls(btrfslayer *h, const char *child, const char *parent,
			 const struct bl_changes *want)
{
	btrfslayer_error *err = NULL;
	struct counting c = { .want = want };
	ok(btrfslayer_changes(h, child, parent, 0, count_change, &c, &err), err, "changes");
	if (c.n != want->n)
		die("btrfslayer_changes() called back %zu times, not %zu", c.n, want->n);
	if (want->n > 1) {
		c = (struct counting){ .want = want, .stop_at = 1 };
		if (btrfslayer_changes(h, child, parent, 0, count_change, &c, NULL) != 7 || c.n != 1)
			die("a callback's non-zero return did not stop btrfslayer_changes()");
	}
	uint64_t size = 0, expected = 0;
	ino_t seen[MAX_PATHS];
	size_t n_seen = 0;
	for (size_t i = 0; i < want->n; i++) {
		struct stat st;
		if (want->v[i].kind == BTRFSLAYER_CHANGE_DELETED || S_ISDIR(want->v[i].mode) ||
		    fstatat(want->layer_fd, want->v[i].path + 1, &st, AT_SYMLINK_NOFOLLOW) < 0)
			continue;
		bool dup = false;
		for (size_t k = 0; k < n_seen && st.st_nlink > 1; k++)
			dup |= seen[k] == st.st_ino;
		if (dup)
			continue;
		if (st.st_nlink > 1 && n_seen < MAX_PATHS)
			seen[n_seen++] = st.st_ino;
		expected += (uint64_t)st.st_size;
	}
	ok(btrfslayer_diff_size(h, child, parent, &size, &err), err, "diff size");
	if (size != expected)
		die("diff size of %s: %" PRIu64 ", expected %" PRIu64, child, size, expected);
}

/* Children that compute changes are killed at random moments (holding a
 * temporary snapshot or not): the next open's sweep must delete every
 * temporary they left, and leave nothing else. */
#define KILLS 30

static void sleep_us(unsigned us)
{
	struct timespec ts = { .tv_sec = us / 1000000, .tv_nsec = (long)(us % 1000000) * 1000 };
	nanosleep(&ts, NULL);
}

static bool holds_temporary(const char *home)
{
	char staging[PATH_MAX];
	snprintf(staging, sizeof(staging), "%s/subvolumes/.staging", home);
	DIR *d = opendir(staging);
	struct dirent *e;
	bool found = false;
	while (d && !found && (e = readdir(d)))
		found = !strncmp(e->d_name, ".tmp-", 5);
	if (d)
		closedir(d);
	return found;
}

static void kill_mid_call(const char *home, btrfslayer *h)
{
	btrfslayer_error *err = NULL;
	char path[PATH_MAX];
	ok(btrfslayer_create(h, "crash-base", NULL, 0, NULL, NULL, 0, &err), err, "create");
	snprintf(path, sizeof(path), "%s/subvolumes/crash-base", home);
	random_tree(path);
	ok(btrfslayer_create(h, "crash-ctr", "crash-base", 0, NULL, NULL, 0, &err), err, "create");
	snprintf(path, sizeof(path), "%s/subvolumes/crash-ctr", home);
	journal_f = open_memstream(&journal, &journal_len);
	for (int i = 0; i < 10; i++)
		mutate(path);
	fclose(journal_f);
	free(journal);
	journal = NULL;
	unsigned left = 0;
	for (int k = 0; k < KILLS; k++) {
		pid_t pid = fork();
		if (pid < 0)
			die("fork: %s", strerror(errno));
		if (pid == 0) {
			btrfslayer *child;
			const char *opts[] = { "btrfs.mount_home=false" };
			if (btrfslayer_open(home, opts, 1, NULL, 0, NULL, 0, &child, NULL) < 0)
				_exit(1);
			for (;;) {
				struct bl_changes c;
				if (bl_changes_get(child, "crash-ctr", "crash-base", 0, &c, NULL) < 0)
					_exit(2);
				bl_changes_release(child, &c);
			}
		}
		/* every other kill waits until the child holds a reserved name */
		for (int polls = 0; k % 2 && polls < 4000 && !holds_temporary(home); polls++)
			sleep_us(500);
		sleep_us(k % 2 ? pick(3000) : 1000 + pick(40000));
		kill(pid, SIGKILL);
		int status;
		waitpid(pid, &status, 0);
		if (!WIFSIGNALED(status))
			die("a child computing changes ended by itself (status %d)", status);
		/* what it left; the next child's open sweeps it */
		left += holds_temporary(home);
	}
	/* half of the kills came while a child held a reserved name */
	if (!left)
		die("no child was killed while it held a temporary snapshot");
	/* the sweep of the next open */
	btrfslayer *again;
	const char *opts[] = { "btrfs.mount_home=false" };
	ok(btrfslayer_open(home, opts, 1, NULL, 0, NULL, 0, &again, &err), err, "open again");
	char sub[PATH_MAX];
	snprintf(sub, sizeof(sub), "%s/subvolumes", home);
	DIR *d = opendir(sub);
	struct dirent *e;
	while (d && (e = readdir(d)))
		if (!strncmp(e->d_name, ".tmp-", 5))
			die("left after the sweep: %s/%s", sub, e->d_name);
	if (d)
		closedir(d);
	ok(btrfslayer_close(again, &err), err, "close");
	ok(btrfslayer_remove(h, "crash-ctr", &err), err, "remove");
	ok(btrfslayer_remove(h, "crash-base", &err), err, "remove");
	printf("changes property test: %d children killed mid-call, %u of them holding a "
	       "temporary; every open's sweep deleted them\n", KILLS, left);
}

/* A stream longer than the walk is worth is cut short (the kernel then
 * writes to a closed pipe: the process must survive it) and the layers are
 * walked: the same list, not from the send. */
static void cut_short(const char *home, btrfslayer *h)
{
	btrfslayer_error *err = NULL;
	char path[PATH_MAX];
	ok(btrfslayer_create(h, "long-base", NULL, 0, NULL, NULL, 0, &err), err, "create");
	for (int i = 0; i < 2000; i++) {
		snprintf(path, sizeof(path), "%s/subvolumes/long-base/f%d", home, i);
		write_file(path, 10, O_EXCL);
	}
	ok(btrfslayer_create(h, "long-ctr", "long-base", 0, NULL, NULL, 0, &err), err, "create");
	for (int i = 0; i < 2000; i++) {
		snprintf(path, sizeof(path), "%s/subvolumes/long-ctr/f%d", home, i);
		chmod(path, 0600);
	}
	struct bl_changes by_default, by_walk;
	ok(bl_changes_get(h, "long-ctr", "long-base", 0, &by_default, &err), err, "changes");
	ok(bl_changes_get(h, "long-ctr", "long-base", BTRFSLAYER_CHANGES_WALK, &by_walk, &err), err,
	   "changes by walking");
	if (by_default.by_send)
		die("a stream of 2000 changed inodes in 2001 was not cut short");
	if (!same(&by_default, &by_walk) || by_walk.n != 2000)
		die("a send cut short, then walked, gave %zu changes, the walk %zu", by_default.n,
		    by_walk.n);
	bl_changes_release(h, &by_default);
	bl_changes_release(h, &by_walk);
	ok(btrfslayer_remove(h, "long-ctr", &err), err, "remove");
	ok(btrfslayer_remove(h, "long-base", &err), err, "remove");
	printf("changes property test: a long stream was cut short and walked instead\n");
}

int main(void)
{
	harness_start();
	const char *env = getenv("BTRFSLAYER_CHANGES_CASES");
	unsigned cases = env ? (unsigned)strtoul(env, NULL, 10) : 500;
	env = getenv("BTRFSLAYER_CHANGES_SEED");
	uint64_t seed = env ? strtoull(env, NULL, 0) : (uint64_t)time(NULL) * 2654435761u ^ (uint64_t)getpid();
	rng_state = seed;
	fprintf(stderr, "changes property test: %u cases, seed %" PRIu64 "\n", cases, seed);
	btrfslayer_set_log_fn(on_log, NULL);

	char home[256];
	harness_new_home(home, sizeof(home));
	btrfslayer *h;
	btrfslayer_error *err = NULL;
	const char *opts[] = { "btrfs.mount_home=false" };
	ok(btrfslayer_open(home, opts, 1, NULL, 0, NULL, 0, &h, &err), err, "open");

	unsigned done = 0, changes_total = 0, sealed_children = 0, ro_parents = 0;
	for (unsigned base_no = 0; done < cases; base_no++) {
		char base[64], parent[64], path[PATH_MAX];
		snprintf(base, sizeof(base), "base%u", base_no);
		ok(btrfslayer_create(h, base, NULL, 0, NULL, NULL, 0, &err), err, "create base");
		snprintf(path, sizeof(path), "%s/subvolumes/%s", home, base);
		random_tree(path);
		/* the parent: the base itself (writable), or a read-only image of it */
		bool ro = pick(2);
		snprintf(parent, sizeof(parent), "%s%s", base, ro ? "-img" : "");
		if (ro) {
			ok(btrfslayer_create(h, parent, base, BTRFSLAYER_CREATE_READ_ONLY, NULL, NULL,
					     0, &err), err, "create image");
			ro_parents++;
		}
		for (unsigned k = 0; k < BATCH && done < cases; k++, done++) {
			char child[64];
			snprintf(child, sizeof(child), "%s-c%u", base, k);
			ok(btrfslayer_create(h, child, parent, 0, NULL, NULL, 0, &err), err,
			   "create child");
			snprintf(path, sizeof(path), "%s/subvolumes/%s", home, child);
			journal_f = open_memstream(&journal, &journal_len);
			for (unsigned i = 0, n = 1 + pick(pick(4) ? 12 : 40); i < n; i++)
				mutate(path);
			bool sealed = pick(3) == 0;
			if (sealed) {
				seal(h, home, child);
				sealed_children++;
			}
			fclose(journal_f);

			struct bl_changes by_send, by_walk;
			ok(bl_changes_get(h, child, parent, BL_CHANGES_SEND_ONLY, &by_send, &err), err,
			   "changes from the send stream");
			ok(bl_changes_get(h, child, parent, BTRFSLAYER_CHANGES_WALK, &by_walk, &err),
			   err, "changes by walking");
			if (!by_send.by_send)
				die("case %u: the send stream was not used", done);
			if (!same(&by_send, &by_walk)) {
				fprintf(stderr, "case %u (seed %" PRIu64 "): %s against %s%s, after:\n%s",
					done, seed, child, parent, sealed ? " (sealed)" : "", journal);
				print_list("send", &by_send);
				print_list("walk", &by_walk);
				die("case %u: the send stream and the walk disagree", done);
			}
			changes_total += (unsigned)by_send.n;
			if (done % 10 == 0)
				public_calls(h, child, parent, &by_walk);
			bl_changes_release(h, &by_send);
			bl_changes_release(h, &by_walk);
			free(journal);
			journal = NULL;
			ok(btrfslayer_remove(h, child, &err), err, "remove child");
		}
		if (ro)
			ok(btrfslayer_remove(h, parent, &err), err, "remove image");
		ok(btrfslayer_remove(h, base, &err), err, "remove base");
	}
	cut_short(home, h);
	kill_mid_call(home, h);
	/* nothing of the temporaries is left */
	char staging[PATH_MAX];
	snprintf(staging, sizeof(staging), "%s/subvolumes/.staging", home);
	DIR *d = opendir(staging);
	struct dirent *e;
	while (d && (e = readdir(d)))
		if (e->d_name[0] != '.' || (strcmp(e->d_name, ".") && strcmp(e->d_name, "..")))
			die("left in %s: %s", staging, e->d_name);
	if (d)
		closedir(d);
	ok(btrfslayer_close(h, &err), err, "close");
	printf("changes property test: %u cases passed (%u changes in all; %u read-only parents, "
	       "%u sealed children), seed %" PRIu64 "\n", done, changes_total, ro_parents,
	       sealed_children, seed);
	return 0;
}
