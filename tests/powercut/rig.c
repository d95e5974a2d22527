/* SPDX-License-Identifier: LGPL-2.1-or-later */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "log.h"
#include "rig.h"
#include "util.h"

#define IMAGE_SIZE "256M"	/* above mkfs.btrfs's minimum, small to copy */

extern char **environ;

struct rig_paths rig;
pid_t rig_child;

static const char *recorder_path;
static pid_t recorder;
static bool fuse_mounted, mounted, check_mounted;
static char loop_dev[64], check_dev[64];

/* The signals the teardown answers.  They are held while a loop device or
 * a mount is being made or undone, so that the teardown, should it run,
 * finds the flags above telling the truth: a mount(2) of a btrfs that
 * replays its log takes long enough for a signal to land in it. */
static const int teardown_signals[] = { SIGINT, SIGTERM, SIGHUP };

static sigset_t hold(void)
{
	sigset_t set, old;
	sigemptyset(&set);
	for (size_t i = 0; i < sizeof(teardown_signals) / sizeof(teardown_signals[0]); i++)
		sigaddset(&set, teardown_signals[i]);
	sigprocmask(SIG_BLOCK, &set, &old);
	return old;
}

static void release(sigset_t old)
{
	sigprocmask(SIG_SETMASK, &old, NULL);
}

static void unavailable(const char *why)
{
	const char *ci = getenv("CI");
	rig_teardown();
	if (ci && !strcmp(ci, "true")) {
		fprintf(stderr, "FAIL: powercut: cannot run: %s (CI=true: no skipping)\n", why);
		exit(1);
	}
	fprintf(stderr, "SKIP: powercut: cannot run: %s\n", why);
	exit(77);
}

static void on_signal(int sig)
{
	rig_teardown();
	signal(sig, SIG_DFL);
	raise(sig);
}

static bool have_btrfs(void)
{
	char line[128];
	bool found = false;
	FILE *f = fopen("/proc/filesystems", "re");
	while (f && fgets(line, sizeof(line), f))
		if (strstr(line, "\tbtrfs\n"))
			found = true;
	if (f)
		fclose(f);
	/* a module not loaded yet is not listed: mount loads it */
	return found || access("/sys/module/btrfs", F_OK) == 0 ||
	       system("modprobe -q btrfs 2>/dev/null") == 0;
}

void rig_start(const char *recorder_exe)
{
	recorder_path = recorder_exe;
	if (geteuid() != 0)
		unavailable("needs root (mount, loop devices, FUSE)");
	if (access("/dev/fuse", R_OK | W_OK) != 0)
		unavailable("no /dev/fuse (FUSE is the disk recorder)");
	const char *const fusermount[] = { "fusermount3", "-V", NULL };
	if (pc_run(fusermount, NULL, 0) != 0)
		unavailable("no fusermount3 (install fuse3)");
	const char *const mkfs[] = { "mkfs.btrfs", "--version", NULL };
	if (pc_run(mkfs, NULL, 0) != 0)
		unavailable("no mkfs.btrfs (install btrfs-progs)");
	if (!have_btrfs())
		unavailable("the kernel has no btrfs");
	if (access(recorder_path, X_OK) != 0)
		unavailable("the recorder was not built");

	strcpy(rig.dir, "/var/tmp/btrfslayer-powercut.XXXXXX");
	if (!mkdtemp(rig.dir)) {
		rig.dir[0] = '\0';
		unavailable("cannot make a directory under /var/tmp");
	}
	atexit(rig_teardown);
	/* one teardown at a time: the others wait until it is done */
	struct sigaction sa = { .sa_handler = on_signal };
	sigemptyset(&sa.sa_mask);
	for (size_t i = 0; i < sizeof(teardown_signals) / sizeof(teardown_signals[0]); i++)
		sigaddset(&sa.sa_mask, teardown_signals[i]);
	for (size_t i = 0; i < sizeof(teardown_signals) / sizeof(teardown_signals[0]); i++)
		sigaction(teardown_signals[i], &sa, NULL);
	/* for sweep.sh, should this process die too hard to tear down */
	char pid_file[96];
	snprintf(pid_file, sizeof(pid_file), "%s/pid", rig.dir);
	FILE *pf = fopen(pid_file, "we");
	if (pf) {
		fprintf(pf, "%d\n", (int)getpid());
		fclose(pf);
	}
	snprintf(rig.base, sizeof(rig.base), "%s/base.img", rig.dir);
	snprintf(rig.image, sizeof(rig.image), "%s/disk.img", rig.dir);
	snprintf(rig.log, sizeof(rig.log), "%s/disk.log", rig.dir);
	snprintf(rig.fuse, sizeof(rig.fuse), "%s/recorder", rig.dir);
	snprintf(rig.disk, sizeof(rig.disk), "%s/" PC_DISK_NAME, rig.fuse);
	snprintf(rig.position, sizeof(rig.position), "%s/" PC_POSITION_NAME, rig.fuse);
	snprintf(rig.mnt, sizeof(rig.mnt), "%s/btrfs", rig.dir);
	snprintf(rig.rebuilt, sizeof(rig.rebuilt), "%s/rebuilt.img", rig.dir);
	snprintf(rig.check, sizeof(rig.check), "%s/check", rig.dir);
	snprintf(rig.results, sizeof(rig.results), "%s/results", rig.dir);
	snprintf(rig.copies, sizeof(rig.copies), "%s/copy", rig.dir);
	if (mkdir(rig.fuse, 0700) < 0 || mkdir(rig.mnt, 0755) < 0 || mkdir(rig.check, 0755) < 0)
		unavailable("cannot make the test directories under /var/tmp");
}

static int attach(const char *file, bool direct_io, char *dev, size_t len)
{
	const char *const losetup[] = { "losetup", "--find", "--show",
		direct_io ? "--direct-io=on" : "--direct-io=off", file, NULL };
	if (pc_run(losetup, dev, len) != 0 || strncmp(dev, "/dev/loop", 9) != 0) {
		fprintf(stderr, "powercut: losetup %s: failed (%s)\n", file, dev);
		dev[0] = '\0';
		return -1;
	}
	return 0;
}

static void detach(char *dev)
{
	if (!dev[0])
		return;
	const char *const losetup[] = { "losetup", "--detach", dev, NULL };
	if (pc_run(losetup, NULL, 0) != 0)
		fprintf(stderr, "powercut: losetup --detach %s: failed\n", dev);
	dev[0] = '\0';
}

static void unmount(const char *path, bool *flag)
{
	if (!*flag)
		return;
	/* busy (a test died holding an fd): lazily, so that nothing stays */
	if (umount2(path, 0) < 0 && umount2(path, MNT_DETACH) < 0)
		fprintf(stderr, "powercut: umount %s: %s\n", path, strerror(errno));
	*flag = false;
}

/* Wait for the recorder to exit; false if it has not after `ms`. */
static bool reap_recorder(int ms)
{
	for (int waited = 0; recorder > 0; waited += 10) {
		pid_t r = waitpid(recorder, NULL, WNOHANG);
		if (r == recorder || (r < 0 && errno != EINTR)) {
			recorder = 0;
			break;
		}
		if (waited >= ms)
			return false;
		nanosleep(&(struct timespec){ 0, 10 * 1000 * 1000 }, NULL);
	}
	return true;
}

static int start_recorder(void)
{
	const char *const argv[] = { recorder_path, rig.image, rig.log, rig.fuse, NULL };
	struct stat top, st;
	posix_spawnattr_t attr;
	pc_spawnattr_init(&attr);
	int r = posix_spawn(&recorder, recorder_path, NULL, &attr, (char *const *)argv, environ);
	posix_spawnattr_destroy(&attr);
	if (r != 0) {
		recorder = 0;
		fprintf(stderr, "powercut: start the recorder %s: failed\n", recorder_path);
		return -1;
	}
	fuse_mounted = true;	/* from now on, maybe: the teardown checks */
	if (stat(rig.dir, &top) < 0)
		return -1;
	for (int i = 0; i < 500; i++) {
		if (stat(rig.position, &st) == 0 && st.st_dev != top.st_dev)
			return 0;
		if (waitpid(recorder, NULL, WNOHANG) == recorder) {
			recorder = 0;
			fuse_mounted = false;
			fprintf(stderr, "powercut: the recorder exited before mounting %s\n",
				rig.fuse);
			return -1;
		}
		nanosleep(&(struct timespec){ 0, 10 * 1000 * 1000 }, NULL);
	}
	fprintf(stderr, "powercut: the recorder did not mount %s within 5 s\n", rig.fuse);
	return -1;
}

uint64_t rig_position(void)
{
	char buf[32] = "";
	int fd = open(rig.position, O_RDONLY | O_CLOEXEC);
	ssize_t n = fd < 0 ? -1 : read(fd, buf, sizeof(buf) - 1);
	if (fd >= 0)
		close(fd);
	buf[n > 0 ? n : 0] = '\0';
	return strtoull(buf, NULL, 10);
}

static int record_start(const char *opts, bool recorded)
{
	unlink(rig.image);
	unlink(rig.log);
	unlink(rig.base);
	const char *const truncate[] = { "truncate", "-s", IMAGE_SIZE, rig.image, NULL };
	const char *const mkfs[] = { "mkfs.btrfs", "-q", "-f", rig.image, NULL };
	const char *const copy[] = { "cp", "--sparse=always", rig.image, rig.base, NULL };
	if (pc_run(truncate, NULL, 0) != 0 || pc_run(mkfs, NULL, 0) != 0) {
		fprintf(stderr, "powercut: mkfs.btrfs %s: failed\n", rig.image);
		return -1;
	}
	if (pc_run(copy, NULL, 0) != 0) {
		fprintf(stderr, "powercut: copy the base image to %s: failed\n", rig.base);
		return -1;
	}
	const char *disk = recorded ? rig.disk : rig.image;
	if ((recorded && start_recorder() < 0) || attach(disk, false, loop_dev, sizeof(loop_dev)) < 0)
		return -1;
	if (mount(loop_dev, rig.mnt, "btrfs", 0, opts) < 0) {
		fprintf(stderr, "powercut: mount %s (on %s) at %s -o %s: %s\n", loop_dev, disk,
			rig.mnt, opts, strerror(errno));
		return -1;
	}
	mounted = true;
	return 0;
}

int rig_record_start(const char *opts, bool recorded)
{
	sigset_t old = hold();
	int r = record_start(opts, recorded);
	release(old);
	return r;
}

static int record_stop(void)
{
	unmount(rig.mnt, &mounted);
	detach(loop_dev);
	unmount(rig.fuse, &fuse_mounted);
	if (!reap_recorder(5000)) {
		fprintf(stderr, "powercut: the recorder did not exit after unmount: killing it\n");
		kill(recorder, SIGKILL);
		reap_recorder(5000);
		return -1;
	}
	return 0;
}

int rig_record_stop(void)
{
	sigset_t old = hold();
	int r = record_stop();
	release(old);
	return r;
}

int rig_check_mount(const char *image)
{
	sigset_t old = hold();
	if (attach(image, true, check_dev, sizeof(check_dev)) < 0) {
		release(old);
		return -EIO;
	}
	int r = 0;
	/* no nodiscard needed: discards on the copy do not matter */
	if (mount(check_dev, rig.check, "btrfs", 0, NULL) < 0) {
		r = -errno;
		detach(check_dev);
	}
	check_mounted = r == 0;
	release(old);
	return r;
}

void rig_check_umount(void)
{
	sigset_t old = hold();
	unmount(rig.check, &check_mounted);
	detach(check_dev);
	release(old);
}

void rig_remove_copies(void)
{
	DIR *d = rig.dir[0] ? opendir(rig.dir) : NULL;
	struct dirent *e;
	while (d && (e = readdir(d)))
		if (!strncmp(e->d_name, "copy-", 5))
			unlinkat(dirfd(d), e->d_name, 0);
	if (d)
		closedir(d);
}

void rig_teardown(void)
{
	if (rig_child > 0) {
		kill(rig_child, SIGKILL);
		waitpid(rig_child, NULL, 0);
		rig_child = 0;
	}
	rig_check_umount();
	if (recorder > 0 || fuse_mounted || mounted)
		record_stop();
	if (!rig.dir[0])
		return;
	const char *const files[] = { rig.base, rig.image, rig.log, rig.rebuilt, rig.results };
	for (size_t i = 0; i < sizeof(files) / sizeof(files[0]); i++)
		unlink(files[i]);
	rig_remove_copies();
	/* a mount point still busy keeps the pid file, for sweep.sh */
	if (rmdir(rig.fuse) == 0 && rmdir(rig.mnt) == 0 && rmdir(rig.check) == 0) {
		char pid_file[96];
		snprintf(pid_file, sizeof(pid_file), "%s/pid", rig.dir);
		unlink(pid_file);
	}
	if (rmdir(rig.dir) < 0)
		fprintf(stderr, "powercut: rmdir %s: %s\n", rig.dir, strerror(errno));
	rig.dir[0] = '\0';
}
