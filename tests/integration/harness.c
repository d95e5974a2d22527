/* SPDX-License-Identifier: LGPL-2.1-or-later */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "harness.h"

#define IMAGE_SIZE (512LL << 20)	/* above mkfs.btrfs's minimum */

extern char **environ;

static char dir[64];		/* /var/tmp/btrfslayer-test.XXXXXX */
static char image[96], btrfs_mnt[96], tmpfs_mnt[96];
static bool btrfs_mounted, tmpfs_mounted;
static int homes;

const char *harness_btrfs(void) { return btrfs_mnt; }
const char *harness_tmpfs(void) { return tmpfs_mnt; }

void harness_new_home(char *buf, size_t len)
{
	snprintf(buf, len, "%s/home%d", btrfs_mnt, ++homes);
}

int harness_run(const char *const argv[])
{
	pid_t pid;
	int status;
	posix_spawn_file_actions_t fa;
	posix_spawn_file_actions_init(&fa);
	/* keep the test's output readable: tools talk on stderr only */
	posix_spawn_file_actions_addopen(&fa, STDOUT_FILENO, "/dev/null", O_WRONLY, 0);
	int r = posix_spawnp(&pid, argv[0], &fa, NULL, (char *const *)argv, environ);
	posix_spawn_file_actions_destroy(&fa);
	if (r != 0)
		return -1;
	while (waitpid(pid, &status, 0) < 0)
		if (errno != EINTR)
			return -1;
	return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

static void unmount(const char *path, bool *mounted)
{
	if (!*mounted)
		return;
	/* a busy mount (a test died holding an fd) still goes: lazily */
	if (umount2(path, 0) < 0 && umount2(path, MNT_DETACH) < 0)
		fprintf(stderr, "harness: umount %s: %s\n", path, strerror(errno));
	*mounted = false;
}

static void teardown(void)
{
	unmount(btrfs_mnt, &btrfs_mounted);
	unmount(tmpfs_mnt, &tmpfs_mounted);
	if (!dir[0])
		return;
	/* mount -o loop set autoclear; detach explicitly in case it did not */
	const char *const detach[] = { "sh", "-c",
		"losetup -j \"$0\" -O NAME -n | xargs -r -n1 losetup -d", image, NULL };
	harness_run(detach);
	unlink(image);
	char pid_file[96];
	snprintf(pid_file, sizeof(pid_file), "%s/pid", dir);
	unlink(pid_file);
	rmdir(btrfs_mnt);
	rmdir(tmpfs_mnt);
	rmdir(dir);
	dir[0] = '\0';
}

static void on_signal(int sig)
{
	teardown();
	signal(sig, SIG_DFL);
	raise(sig);
}

static void unavailable(const char *why)
{
	const char *ci = getenv("CI");
	teardown();
	if (ci && !strcmp(ci, "true")) {
		fprintf(stderr, "FAIL: integration test cannot run: %s (CI=true: no skipping)\n", why);
		exit(1);
	}
	fprintf(stderr, "SKIP: integration test cannot run: %s\n", why);
	exit(77);
}

void harness_start(void)
{
	if (geteuid() != 0)
		unavailable("needs root (mount, loop devices)");
	strcpy(dir, "/var/tmp/btrfslayer-test.XXXXXX");
	if (!mkdtemp(dir)) {
		dir[0] = '\0';
		unavailable("cannot make a directory under /var/tmp");
	}
	atexit(teardown);
	/* for tests/sweep-mounts.sh, should this process die too hard to
	 * tear down (a sanitizer abort, SIGKILL) */
	char pid_file[96];
	snprintf(pid_file, sizeof(pid_file), "%s/pid", dir);
	FILE *pf = fopen(pid_file, "w");
	if (pf) {
		fprintf(pf, "%d\n", (int)getpid());
		fclose(pf);
	}
	signal(SIGINT, on_signal);
	signal(SIGTERM, on_signal);
	snprintf(image, sizeof(image), "%s/fs.img", dir);
	snprintf(btrfs_mnt, sizeof(btrfs_mnt), "%s/btrfs", dir);
	snprintf(tmpfs_mnt, sizeof(tmpfs_mnt), "%s/tmpfs", dir);
	if (mkdir(btrfs_mnt, 0755) < 0 || mkdir(tmpfs_mnt, 0755) < 0)
		unavailable("cannot make the test directories");

	FILE *f = fopen(image, "w");
	if (!f || ftruncate(fileno(f), IMAGE_SIZE) < 0)
		unavailable("cannot make a sparse image under /var/tmp");
	fclose(f);
	const char *const mkfs[] = { "mkfs.btrfs", "-q", "-f", image, NULL };
	if (harness_run(mkfs) != 0)
		unavailable("mkfs.btrfs failed or is missing (install btrfs-progs)");
	const char *const mount_loop[] = { "mount", "-t", "btrfs", "-o", "loop", image,
					   btrfs_mnt, NULL };
	if (harness_run(mount_loop) != 0)
		unavailable("cannot mount a loopback btrfs (no btrfs or loop support?)");
	btrfs_mounted = true;
	if (mount("tmpfs", tmpfs_mnt, "tmpfs", 0, "size=1m") < 0)
		unavailable("cannot mount a tmpfs");
	tmpfs_mounted = true;
}

/* ---- sentinel trees ---------------------------------------------------------
 * A tree outside every home whose every byte and inode must survive a test
 * unchanged.  Kept apart from the loopback code above. */

#include <ftw.h>
#include <inttypes.h>
#include <limits.h>
#include <sys/ioctl.h>
#include <sys/vfs.h>
#include <linux/btrfs.h>
#include <linux/btrfs_tree.h>
#include <linux/magic.h>

static int sentinel_file(const char *top, const char *name, mode_t mode, const char *text)
{
	char path[PATH_MAX];
	snprintf(path, sizeof(path), "%s/%s", top, name);
	int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, mode);
	if (fd < 0)
		return errno;
	size_t len = strlen(text);
	int r = write(fd, text, len) == (ssize_t)len && fchmod(fd, mode) == 0 ? 0 : errno;
	close(fd);
	return r;
}

static int sentinel_dir(const char *top, const char *name, mode_t mode)
{
	char path[PATH_MAX];
	snprintf(path, sizeof(path), "%s/%s", top, name);
	return mkdir(path, mode) == 0 && chmod(path, mode) == 0 ? 0 : errno;
}

static int sentinel_subvolume(const char *top, const char *name, bool read_only)
{
	struct btrfs_ioctl_vol_args args;
	char path[PATH_MAX];
	int r = 0;
	int fd = open(top, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return errno;
	memset(&args, 0, sizeof(args));
	snprintf(args.name, sizeof(args.name), "%s", name);
	if (ioctl(fd, BTRFS_IOC_SUBVOL_CREATE, &args) < 0)
		r = errno;
	close(fd);
	snprintf(path, sizeof(path), "%s/%s", top, name);
	if (r == 0)
		r = sentinel_file(path, "data", 0644, "inside a subvolume\n");
	if (r == 0)
		r = sentinel_dir(path, "dir", 0755);
	if (r == 0 && read_only) {
		uint64_t flags = BTRFS_SUBVOL_RDONLY;
		fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		if (fd < 0 || ioctl(fd, BTRFS_IOC_SUBVOL_SETFLAGS, &flags) < 0)
			r = errno;
		if (fd >= 0)
			close(fd);
	}
	return r;
}

int harness_sentinel_make(const char *top)
{
	struct statfs sfs;
	char nested[PATH_MAX];
	int r = mkdir(top, 0755) == 0 ? 0 : errno;
	if (r == 0)
		r = sentinel_file(top, "file", 0644, "sentinel file\n");
	if (r == 0)
		r = sentinel_file(top, "secret", 0600, "do not read or touch\n");
	if (r == 0)
		r = sentinel_file(top, "exec", 0755, "#!/bin/sh\nexit 0\n");
	if (r == 0)
		r = sentinel_dir(top, "dir", 0750);
	if (r == 0)
		r = sentinel_dir(top, "empty-dir", 0700);
	snprintf(nested, sizeof(nested), "%s/dir", top);
	if (r == 0)
		r = sentinel_file(nested, "nested-file", 0640, "nested\n");
	if (r == 0)
		r = sentinel_dir(nested, "deeper", 0755);
	if (r == 0) {
		const char *const links[][2] = {
			{ "link", "file" }, { "abs-link", "/" }, { "dangling", "nowhere" },
		};
		for (size_t i = 0; r == 0 && i < sizeof(links) / sizeof(links[0]); i++) {
			char path[PATH_MAX];
			snprintf(path, sizeof(path), "%s/%s", top, links[i][0]);
			r = symlink(links[i][1], path) == 0 ? 0 : errno;
		}
	}
	if (r == 0 && statfs(top, &sfs) == 0 && sfs.f_type == BTRFS_SUPER_MAGIC) {
		r = sentinel_subvolume(top, "subvol", false);
		if (r == 0)
			r = sentinel_subvolume(top, "ro-subvol", true);
	}
	return r;
}

/* nftw() takes no user data. */
static FILE *snapshot_out;
static size_t snapshot_base;

static uint64_t fnv1a(uint64_t h, const void *data, size_t len)
{
	const unsigned char *p = data;
	for (size_t i = 0; i < len; i++) {
		h ^= p[i];
		h *= UINT64_C(0x100000001b3);
	}
	return h;
}

static int snapshot_entry(const char *path, const struct stat *st, int type,
			  struct FTW *ftw)
{
	(void)type;
	(void)ftw;
	uint64_t hash = UINT64_C(0xcbf29ce484222325);
	char buf[4096], kind = '?';
	long long subvol_flags = -1;
	if (S_ISREG(st->st_mode)) {
		kind = 'f';
		int fd = open(path, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
		ssize_t n;
		if (fd < 0)
			return -1;
		while ((n = read(fd, buf, sizeof(buf))) > 0)
			hash = fnv1a(hash, buf, (size_t)n);
		close(fd);
		if (n < 0)
			return -1;
	} else if (S_ISLNK(st->st_mode)) {
		kind = 'l';
		ssize_t n = readlink(path, buf, sizeof(buf));
		if (n < 0)
			return -1;
		hash = fnv1a(hash, buf, (size_t)n);
	} else if (S_ISDIR(st->st_mode)) {
		kind = 'd';
		if (st->st_ino == BTRFS_FIRST_FREE_OBJECTID) {
			uint64_t flags = 0;
			int fd = open(path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
			if (fd >= 0 && ioctl(fd, BTRFS_IOC_SUBVOL_GETFLAGS, &flags) == 0)
				subvol_flags = (long long)flags;
			if (fd >= 0)
				close(fd);
		}
	} else if (S_ISFIFO(st->st_mode)) {
		kind = 'p';
	} else if (S_ISSOCK(st->st_mode)) {
		kind = 's';
	}
	fprintf(snapshot_out,
		"%s type=%c mode=%04o uid=%u gid=%u size=%lld mtime=%lld.%09ld "
		"ctime=%lld.%09ld ino=%llu nlink=%llu subvol=%lld hash=%016" PRIx64 "\n",
		path[snapshot_base] ? path + snapshot_base : "/", kind,
		(unsigned)(st->st_mode & 07777), (unsigned)st->st_uid, (unsigned)st->st_gid,
		(long long)st->st_size, (long long)st->st_mtim.tv_sec, st->st_mtim.tv_nsec,
		(long long)st->st_ctim.tv_sec, st->st_ctim.tv_nsec,
		(unsigned long long)st->st_ino, (unsigned long long)st->st_nlink,
		subvol_flags, hash);
	return 0;
}

static int cmp_lines(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

char *harness_tree_snapshot(const char *top)
{
	char *raw = NULL, *sorted = NULL;
	size_t len = 0;
	snapshot_out = open_memstream(&raw, &len);
	if (!snapshot_out)
		return NULL;
	snapshot_base = strlen(top);
	int r = nftw(top, snapshot_entry, 16, FTW_PHYS);
	fclose(snapshot_out);
	snapshot_out = NULL;
	if (r != 0) {
		free(raw);
		return NULL;
	}
	/* nftw's order is readdir's: sort the lines */
	size_t n = 0, cap = 0;
	char **lines = NULL;
	for (char *save = NULL, *line = strtok_r(raw, "\n", &save); line;
	     line = strtok_r(NULL, "\n", &save)) {
		if (n == cap) {
			cap = cap ? 2 * cap : 32;
			char **grown = realloc(lines, cap * sizeof(*lines));
			if (!grown) {
				free(lines);
				free(raw);
				return NULL;
			}
			lines = grown;
		}
		lines[n++] = line;
	}
	qsort(lines, n, sizeof(*lines), cmp_lines);
	FILE *out = open_memstream(&sorted, &len);
	if (out) {
		for (size_t i = 0; i < n; i++)
			fprintf(out, "%s\n", lines[i]);
		fclose(out);
	}
	free(lines);
	free(raw);
	return sorted;
}

uint64_t harness_write_data(const char *in, const char *name, uint64_t total, int *error)
{
	static char chunk[256 * 1024];
	char path[PATH_MAX];
	uint64_t done = 0, x = 88172645463325252u;
	for (size_t i = 0; i < sizeof(chunk); i++) {
		x ^= x << 13, x ^= x >> 7, x ^= x << 17;	/* xorshift: incompressible */
		chunk[i] = (char)x;
	}
	snprintf(path, sizeof(path), "%s/%s", in, name);
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0) {
		*error = errno;
		fprintf(stderr, "open %s: %s\n", path, strerror(errno));
		return 0;
	}
	*error = 0;
	while (done < total) {
		size_t n = total - done < sizeof(chunk) ? (size_t)(total - done) : sizeof(chunk);
		ssize_t w = write(fd, chunk, n);
		if (w < 0) {
			*error = errno;
			break;
		}
		done += (uint64_t)w;
	}
	if (fsync(fd) < 0 && !*error)
		*error = errno;
	close(fd);
	return done;
}

int harness_home_setup(void **state)
{
	struct harness_home *c = calloc(1, sizeof(*c));
	btrfslayer_error *err = NULL;
	if (!c)
		return -1;
	harness_new_home(c->home, sizeof(c->home));
	int r = btrfslayer_open(c->home, NULL, 0, NULL, 0, NULL, 0, &c->h, &err);
	if (r < 0) {
		fprintf(stderr, "open %s: %s\n", c->home, btrfslayer_error_message(err));
		btrfslayer_error_free(err);
		free(c);
		return -1;
	}
	*state = c;
	return 0;
}

int harness_home_teardown(void **state)
{
	struct harness_home *c = *state;
	int r = btrfslayer_close(c->h, NULL);
	if (r < 0)
		fprintf(stderr, "close %s: %s\n", c->home, strerror(-r));
	free(c);
	return r < 0 ? -1 : 0;
}

/* ---- qgroups the kernel drops ------------------------------------------------ */

#include <sys/utsname.h>
#include <time.h>

bool harness_kernel_drops_qgroups(void)
{
	struct utsname u;
	unsigned major = 0, minor = 0;
	if (uname(&u) < 0 || sscanf(u.release, "%u.%u", &major, &minor) != 2)
		return false;
	return major > 6 || (major == 6 && minor >= 11);
}

/* 1 if tree `tree` of the btrfs fd is on has an item (objectid, type,
 * offset in [min_offset, max_offset]), 0 if not, -1 if it cannot tell. */
static int has_item(int fd, uint64_t tree, uint64_t objectid, uint32_t type,
		    uint64_t min_offset, uint64_t max_offset)
{
	struct btrfs_ioctl_search_args args;
	memset(&args, 0, sizeof(args));
	args.key.tree_id = tree;
	args.key.min_objectid = args.key.max_objectid = objectid;
	args.key.min_type = args.key.max_type = type;
	args.key.min_offset = min_offset;
	args.key.max_offset = max_offset;
	args.key.max_transid = UINT64_MAX;
	args.key.nr_items = 1;
	if (ioctl(fd, BTRFS_IOC_TREE_SEARCH, &args) < 0)
		return -1;
	return args.key.nr_items > 0;
}

/* qgroup 0/id: its info item in the quota tree */
static int qgroup_exists(int fd, uint64_t id)
{
	return has_item(fd, BTRFS_QUOTA_TREE_OBJECTID, 0, BTRFS_QGROUP_INFO_KEY, id, id);
}

/* a deleted subvolume keeps its root item until the cleaner dropped it */
static int root_item_exists(int fd, uint64_t id)
{
	return has_item(fd, BTRFS_ROOT_TREE_OBJECTID, id, BTRFS_ROOT_ITEM_KEY, 0, UINT64_MAX);
}

bool harness_qgroup_left_to_kernel(const char *mnt, uint64_t id)
{
	int fd = open(mnt, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return false;
	bool ok = false;
	for (int i = 0; i < 6000 && !ok; i++) {
		int q = qgroup_exists(fd, id);
		if (q < 0)
			break;
		/* gone; or its subvolume not dropped yet, which the kernel
		 * does in its time (at the next mount at the latest) */
		ok = q == 0 || root_item_exists(fd, id) == 1;
		if (!ok) {
			/* dropped: the qgroup goes in a transaction of its own */
			syncfs(fd);
			nanosleep(&(struct timespec){ .tv_nsec = 10 * 1000 * 1000 }, NULL);
		}
	}
	close(fd);
	return ok;
}

/* ---- the empty template ---------------------------------------------------- */

#include <dirent.h>

bool harness_is_template(const char *name_or_path)
{
	const char *slash = strrchr(name_or_path, '/');
	return !strncmp(slash ? slash + 1 : name_or_path, ".empty-", 7);
}

int harness_template_ids(const char *home, uint64_t *ids, int max)
{
	char path[PATH_MAX];
	snprintf(path, sizeof(path), "%s/subvolumes", home);
	DIR *listing = opendir(path);
	struct dirent *d;
	int n = 0;
	while (listing && n < max && (d = readdir(listing))) {
		if (!harness_is_template(d->d_name))
			continue;
		snprintf(path, sizeof(path), "%s/subvolumes/%s", home, d->d_name);
		int fd = open(path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		struct btrfs_ioctl_ino_lookup_args args = { .objectid = BTRFS_FIRST_FREE_OBJECTID };
		if (fd >= 0 && ioctl(fd, BTRFS_IOC_INO_LOOKUP, &args) == 0)
			ids[n++] = args.treeid;
		if (fd >= 0)
			close(fd);
	}
	if (listing)
		closedir(listing);
	return n;
}

const char *harness_template_flaw(const char *path)
{
	unsigned mode, uid, gid;
	const char *name = strrchr(path, '/') ? strrchr(path, '/') + 1 : path;
	if (sscanf(name, ".empty-%o-%u-%u", &mode, &uid, &gid) != 3)
		return "its name is not .empty-<mode>-<uid>-<gid>";
	struct stat st;
	if (lstat(path, &st) < 0)
		return "cannot stat it";
	if (!S_ISDIR(st.st_mode) || st.st_ino != BTRFS_FIRST_FREE_OBJECTID)
		return "not a subvolume";
	if (st.st_size != 0)
		return "not empty";
	if ((st.st_mode & 07777) != mode || st.st_uid != uid || st.st_gid != gid)
		return "not of the mode and owner its name says";
	int fd = open(path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	uint64_t flags = 0;
	bool read_only = fd >= 0 && ioctl(fd, BTRFS_IOC_SUBVOL_GETFLAGS, &flags) == 0 &&
			 (flags & BTRFS_SUBVOL_RDONLY);
	if (fd >= 0)
		close(fd);
	return read_only ? NULL : "not read-only";
}

/* ---- qgroup markers ---------------------------------------------------------- */

#include <sys/xattr.h>

static int add_marker(uint64_t *ids, int n, int max, const char *digits)
{
	char *end;
	uint64_t id = strtoull(digits, &end, 10);
	if (*digits >= '1' && *digits <= '9' && !*end && n < max)
		ids[n++] = id;
	return n;
}

int harness_markers(const char *home, uint64_t *ids, int max)
{
	char path[PATH_MAX], list[65536];
	int n = 0;
	snprintf(path, sizeof(path), "%s/subvolumes", home);
	ssize_t size = lgetxattr(path, "user.btrfslayer.qgroups", list, sizeof(list) - 1);
	list[size > 0 ? size : 0] = '\0';
	for (char *save = NULL, *id = strtok_r(list, " ", &save); id; id = strtok_r(NULL, " ", &save))
		n = add_marker(ids, n, max, id);
	snprintf(path, sizeof(path), "%s/quotas/.staging", home);
	DIR *listing = opendir(path);
	struct dirent *d;
	while (listing && (d = readdir(listing)))
		if (!strncmp(d->d_name, ".qgroup-", 8))
			n = add_marker(ids, n, max, d->d_name + 8);
	if (listing)
		closedir(listing);
	return n;
}

bool harness_marked(const char *home, uint64_t id)
{
	uint64_t ids[4096];
	int n = harness_markers(home, ids, 4096);
	for (int i = 0; i < n; i++)
		if (ids[i] == id)
			return true;
	return false;
}
