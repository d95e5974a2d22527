/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Rootless: the library in a user namespace without CAP_SYS_ADMIN in the
 * initial one, as `unshare -r` runs it, on a loopback btrfs mounted with
 * user_subvol_rm_allowed.  The test (root) makes the filesystem, a
 * directory owned by an unprivileged uid, and forks a child that becomes
 * that uid, enters a new user namespace mapping itself to root there, and
 * uses a home in that directory: create, snapshot, get, list, remove of a
 * layer holding nested subvolumes (one of them read-only) work; what needs
 * privilege (the bind mount at home, quotas) fails with -EPERM saying so.
 * It runs once with quotas off and once with simple quotas turned on by
 * the administrator (root, here), where the library reads quota state from
 * sysfs.
 *
 * Skips (77) without root, btrfs or loop devices (the harness), or where
 * unprivileged user namespaces are disabled; under CI=true each of these
 * fails instead.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <limits.h>
#include <sched.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <btrfsutil.h>

#include "btrfslayer.h"
#include "harness.h"

#define USER_ID 4242	/* the unprivileged user: no account needed */
#define EXIT_NO_USERNS 77
#define MiB (1024ull * 1024)

static int failures;

static void failf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static void failf(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	fprintf(stderr, "rootless: FAIL: ");
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
	va_end(ap);
	failures++;
}

/* The call succeeded, else say what it said. */
#define OK(call)                                                                         \
	do {                                                                             \
		btrfslayer_error *e_ = NULL;                                             \
		int r_ = (call);                                                         \
		if (r_ < 0)                                                              \
			failf("%s:%d: %s = %d: %s", __FILE__, __LINE__, #call, r_,       \
			      e_ ? btrfslayer_error_message(e_) : "no error");           \
		btrfslayer_error_free(e_);                                               \
	} while (0)
/* The call failed with `code`, with a message containing `needle`. */
#define FAILS(call, code, needle)                                                        \
	do {                                                                             \
		btrfslayer_error *e_ = NULL;                                             \
		int r_ = (call);                                                         \
		const char *m_ = e_ ? btrfslayer_error_message(e_) : "";                 \
		if (r_ != (code) || !strstr(m_, (needle)))                               \
			failf("%s:%d: %s = %d (\"%s\"), want %d with \"%s\"", __FILE__,  \
			      __LINE__, #call, r_, m_, (code), (needle));                \
		btrfslayer_error_free(e_);                                               \
	} while (0)
#define ERR (&e_)
#define CHECK(cond)                                                                      \
	do {                                                                             \
		if (!(cond))                                                             \
			failf("%s:%d: %s", __FILE__, __LINE__, #cond);                   \
	} while (0)

static bool write_file(const char *path, const char *text)
{
	int fd = open(path, O_WRONLY | O_CLOEXEC);
	if (fd < 0)
		return false;
	bool ok = write(fd, text, strlen(text)) == (ssize_t)strlen(text);
	return close(fd) == 0 && ok;
}

/* Become USER_ID, then root of a new user namespace mapped to it: no
 * capability in the initial namespace.  false when the kernel allows no
 * unprivileged user namespace. */
static bool become_rootless(void)
{
	char map[64];
	if (setgroups(0, NULL) < 0 || setresgid(USER_ID, USER_ID, USER_ID) < 0 ||
	    setresuid(USER_ID, USER_ID, USER_ID) < 0) {
		failf("become uid %d: %s", USER_ID, strerror(errno));
		return true;
	}
	/* a changed uid makes the process undumpable, and its /proc/self
	 * files root's: the maps could not be written */
	if (prctl(PR_SET_DUMPABLE, 1) < 0)
		failf("prctl(PR_SET_DUMPABLE): %s", strerror(errno));
	if (unshare(CLONE_NEWUSER) < 0) {
		fprintf(stderr, "rootless: unshare(CLONE_NEWUSER): %s\n", strerror(errno));
		return false;
	}
	snprintf(map, sizeof(map), "0 %d 1\n", USER_ID);
	if (!write_file("/proc/self/setgroups", "deny") ||
	    !write_file("/proc/self/uid_map", map) || !write_file("/proc/self/gid_map", map))
		failf("write the user namespace's maps: %s", strerror(errno));
	return true;
}

/* A subvolume nested in a layer, as a container makes one. */
static void nest(const char *layer, const char *rel, bool read_only)
{
	char path[PATH_MAX];
	snprintf(path, sizeof(path), "%s/%s", layer, rel);
	if (btrfs_util_create_subvolume(path, 0, NULL, NULL) != BTRFS_UTIL_OK)
		failf("create nested subvolume %s: %s", path, strerror(errno));
	if (read_only && btrfs_util_set_subvolume_read_only(path, true) != BTRFS_UTIL_OK)
		failf("make %s read-only: %s", path, strerror(errno));
}

/* What a rootless runtime does, in the child. */
static void rootless_session(const char *home, bool quotas)
{
	btrfslayer *h = NULL;
	char *path = NULL, *snap_path = NULL;

	/* the bind mount at home needs CAP_SYS_ADMIN: a clear refusal */
	FAILS(btrfslayer_open(home, NULL, 0, NULL, 0, NULL, 0, &h, ERR), -EPERM,
	      "btrfs.mount_home=false");
	CHECK(h == NULL);
	const char *opts[] = { "btrfs.mount_home=false" };
	OK(btrfslayer_open(home, opts, 1, NULL, 0, NULL, 0, &h, ERR));
	if (!h)
		return;

	OK(btrfslayer_create(h, "base", NULL, 0, NULL, NULL, 0, ERR));
	OK(btrfslayer_get(h, "base", NULL, &path, ERR));
	if (path) {
		char dir[PATH_MAX];
		nest(path, "n1", false);
		nest(path, "n1/n2", false);
		snprintf(dir, sizeof(dir), "%s/d", path);
		if (mkdir(dir, 0755) < 0)
			failf("mkdir %s: %s", dir, strerror(errno));
		nest(path, "d/n3", true);
	}
	OK(btrfslayer_create(h, "snap", "base", BTRFSLAYER_CREATE_READ_ONLY, NULL, NULL, 0, ERR));
	OK(btrfslayer_create(h, "child", "snap", 0, NULL, NULL, 0, ERR));
	OK(btrfslayer_get(h, "snap", NULL, &snap_path, ERR));
	CHECK(btrfslayer_exists(h, "child", NULL) == 1);
	btrfslayer_list *list = NULL;
	OK(btrfslayer_layers(h, &list, ERR));
	CHECK(btrfslayer_list_count(list) == 3);
	btrfslayer_list_free(list);
	list = NULL;
	OK(btrfslayer_status(h, &list, ERR));
	btrfslayer_list_free(list);

	/* what a layer is, and the layer as an fd, need no privilege */
	btrfslayer_info info;
	OK(btrfslayer_layer_info(h, "child", &info, sizeof(info), ERR));
	CHECK(!strcmp(info.parent, "snap") && !(info.flags & BTRFSLAYER_INFO_READ_ONLY));
	OK(btrfslayer_layer_info(h, "snap", &info, sizeof(info), ERR));
	CHECK(!strcmp(info.parent, "base") && (info.flags & BTRFSLAYER_INFO_READ_ONLY));
	OK(btrfslayer_layer_info(h, "base", &info, sizeof(info), ERR));
	CHECK(info.parent[0] == '\0' && (info.flags & BTRFSLAYER_INFO_HAS_NESTED));
	int fd = -1;
	OK(btrfslayer_get_fd(h, "child", 0, &fd, ERR));
	CHECK(fd >= 0);
	if (fd >= 0)
		close(fd);

	/* quotas need CAP_SYS_ADMIN (turning them on, setting a limit) */
	const char *size[] = { "size=64M" };
	FAILS(btrfslayer_create(h, "sized", NULL, 0, NULL, size, 1, ERR), -EPERM,
	      "CAP_SYS_ADMIN");
	CHECK(btrfslayer_exists(h, "sized", NULL) == 0);
	FAILS(btrfslayer_set_quota(h, "child", 64 * MiB, ERR), -EPERM, "CAP_SYS_ADMIN");
	btrfslayer_usage usage;
	int r = btrfslayer_get_usage(h, "base", 0, &usage, sizeof(usage), NULL);
	CHECK(quotas ? r == 0 : r == -BTRFSLAYER_ENOQUOTA);

	/* a read-only layer, and a layer holding nested subvolumes (one of
	 * them read-only, inside a directory) */
	OK(btrfslayer_remove(h, "snap", ERR));
	OK(btrfslayer_remove(h, "base", ERR));
	OK(btrfslayer_remove(h, "child", ERR));
	CHECK(btrfslayer_exists(h, "base", NULL) == 0);
	struct stat st;
	CHECK(path && lstat(path, &st) < 0 && errno == ENOENT);
	CHECK(snap_path && lstat(snap_path, &st) < 0 && errno == ENOENT);
	OK(btrfslayer_close(h, ERR));
	free(path);
	free(snap_path);
}

/* Fork, go rootless, run the session: the child's exit status. */
static int run_child(const char *home, bool quotas)
{
	fflush(NULL);
	pid_t pid = fork();
	if (pid < 0) {
		perror("fork");
		return 1;
	}
	if (pid == 0) {
		if (!become_rootless())
			_exit(EXIT_NO_USERNS);
		if (!failures)
			rootless_session(home, quotas);
		fflush(NULL);
		_exit(failures ? 1 : 0);	/* never the harness's atexit teardown */
	}
	int status;
	if (waitpid(pid, &status, 0) < 0)
		return 1;
	return WIFEXITED(status) ? WEXITSTATUS(status) : 1;
}

/* How many subvolumes of the filesystem have `needle` in their path. */
static int subvolumes_named(const char *needle)
{
	char cmd[PATH_MAX];
	/* but the library's empty template, which stays with no layer */
	snprintf(cmd, sizeof(cmd), "btrfs subvolume list '%s' | grep -- '%s' | "
		 "grep -vc '/subvolumes/[.]empty-'", harness_btrfs(), needle);
	FILE *p = popen(cmd, "r");
	int n = -1;
	if (p && fscanf(p, "%d", &n) != 1)
		n = -1;
	if (p)
		pclose(p);
	return n;
}

int main(void)
{
	char base[PATH_MAX], dir[PATH_MAX], home[PATH_MAX + 8];
	harness_start();

	/* user_subvol_rm_allowed lets a user delete the subvolumes it may
	 * write to; the test's directories must let that user reach home */
	const char *remount[] = { "mount", "-o", "remount,user_subvol_rm_allowed",
				  harness_btrfs(), NULL };
	snprintf(base, sizeof(base), "%s", harness_btrfs());
	*strrchr(base, '/') = '\0';
	if (harness_run(remount) != 0 || chmod(base, 0711) < 0) {
		fprintf(stderr, "rootless: FAIL: remount with user_subvol_rm_allowed\n");
		return 1;
	}

	for (int quotas = 0; quotas <= 1; quotas++) {
		if (quotas) {
			/* the administrator turns simple quotas on */
			char admin_home[PATH_MAX];
			btrfslayer *h = NULL;
			const char *opts[] = { "btrfs.mount_home=false", "btrfs.quota_mode=simple",
					       "btrfs.min_space=1M" };
			harness_new_home(admin_home, sizeof(admin_home));
			if (btrfslayer_open(admin_home, opts, 3, NULL, 0, NULL, 0, &h, NULL) < 0) {
				fprintf(stderr, "rootless: FAIL: turn simple quotas on\n");
				return 1;
			}
			btrfslayer_close(h, NULL);
		}
		harness_new_home(dir, sizeof(dir));
		if (mkdir(dir, 0755) < 0 || chown(dir, USER_ID, USER_ID) < 0) {
			fprintf(stderr, "rootless: FAIL: make %s: %s\n", dir, strerror(errno));
			return 1;
		}
		snprintf(home, sizeof(home), "%s/home", dir);
		int status = run_child(home, quotas);
		if (status == EXIT_NO_USERNS) {
			const char *ci = getenv("CI");
			fprintf(stderr, "%s: rootless test cannot run: no unprivileged user "
				"namespace (see the error above)\n",
				ci && !strcmp(ci, "true") ? "FAIL" : "SKIP");
			return ci && !strcmp(ci, "true") ? 1 : 77;
		}
		if (status != 0) {
			fprintf(stderr, "rootless: FAIL (quotas %s)\n", quotas ? "on" : "off");
			return 1;
		}
		/* nothing the session made is left, nested subvolumes included */
		int left = subvolumes_named(strrchr(dir, '/') + 1);
		if (left != 0) {
			fprintf(stderr, "rootless: FAIL: %d subvolumes left in %s\n", left, home);
			return 1;
		}
		printf("rootless: quotas %s: ok\n", quotas ? "on (simple)" : "off");
	}
	return 0;
}
