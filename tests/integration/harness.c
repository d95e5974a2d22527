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
