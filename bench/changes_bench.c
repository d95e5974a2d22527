/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * btrfslayer_changes() from the send stream against the walk, on a large
 * layer: a read-only image of FILES files (default 100,000, in directories
 * of 1,000), and two containers made from it, one with 10 files changed
 * and one with half of them changed.  Each row is ROUNDS rounds (default 7)
 * of each way, the two interleaved (send first in odd rounds, walk first in
 * even ones), warm cache, and gives the medians; both ways must give the
 * same number of changes every time: the median wall time, the best
 * one, and the median CPU time of the process (the last two are what other
 * jobs on a shared machine disturb least).  "Kernel alone" is the floor of the send way: the
 * kernel's BTRFS_IOC_SEND alone (no file data, into a temporary file), and
 * for a writable layer the read-only snapshot made and deleted around it.
 *
 *     build/bench/bench_changes /path/on/btrfs/new-home [FILES [ROUNDS]]
 *
 * Needs root (the send ioctl needs CAP_SYS_ADMIN).  The home is left for a
 * look, and a second run on it measures again without making the layers
 * (remove them with `btrfslayer --home HOME rm`).  The library's walk reads
 * directories with O_NOATIME, so the rounds leave the layers as they were.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include <linux/btrfs.h>
#include <linux/btrfs_tree.h>

#include "btrfslayer.h"
#include "timing.h"

#define PER_DIR 1000
#define ROOT_MAX 1024	/* a layer's path; file paths get room to spare */

static void check(int r, btrfslayer_error *err, const char *what)
{
	if (r < 0) {
		fprintf(stderr, "%s: %s\n", what, err ? btrfslayer_error_message(err) : strerror(-r));
		exit(1);
	}
}

static int count(int kind, const char *path, void *userdata)
{
	(void)kind;
	(void)path;
	++*(size_t *)userdata;
	return 0;
}

static void file_path(char *buf, size_t size, const char *root, unsigned i)
{
	snprintf(buf, size, "%.*s/d%03u/f%05u", ROOT_MAX, root, i / PER_DIR, i);
}

static void layer_root(btrfslayer *h, const char *id, char *buf, size_t size)
{
	char *path = NULL;
	btrfslayer_error *err = NULL;
	check(btrfslayer_get(h, id, NULL, &path, &err), err, "get");
	snprintf(buf, size, "%.*s", ROOT_MAX - 1, path);
	free(path);
}

/* Append to every `step`-th file, `n` of them. */
static void change(const char *root, unsigned files, unsigned n)
{
	unsigned step = files / n;
	char path[PATH_MAX];
	for (unsigned i = 0, done = 0; done < n && i < files; i += step, done++) {
		file_path(path, sizeof(path), root, i);
		int fd = open(path, O_WRONLY | O_APPEND);
		if (fd < 0 || write(fd, "changed\n", 8) != 8) {
			perror(path);
			exit(1);
		}
		close(fd);
	}
}

/* Seal or unseal a layer behind the library's back (BTRFS_IOC_SUBVOL_SETFLAGS):
 * a sealed layer needs no temporary snapshot for its send. */
static void set_sealed(btrfslayer *h, const char *id, int sealed)
{
	char root[ROOT_MAX];
	layer_root(h, id, root, sizeof(root));
	int fd = open(root, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	uint64_t flags = sealed ? BTRFS_SUBVOL_RDONLY : 0;
	if (fd < 0 || ioctl(fd, BTRFS_IOC_SUBVOL_SETFLAGS, &flags) < 0) {
		perror(root);
		exit(1);
	}
	close(fd);
}

#define MAX_ROUNDS 101

static double cpu_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
	return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

/* Wall time, and the CPU time of the process (its threads, user and kernel:
 * what other jobs on a shared machine do not inflate) in *cpu. */
static double changes_ms(btrfslayer *h, const char *id, uint32_t flags, size_t *n, double *cpu)
{
	btrfslayer_error *err = NULL;
	*n = 0;
	double t0 = now_ms(), c0 = cpu_ms();
	check(btrfslayer_changes(h, id, "image", flags, count, n, &err), err,
	      flags ? "changes (walk)" : "changes (send)");
	*cpu = cpu_ms() - c0;
	return now_ms() - t0;
}

/* The kernel's part alone: a send of layer id against the image, no file
 * data, into an unnamed temporary file in dir; for a writable layer, from a
 * read-only snapshot made (in dir) and deleted around it, as the library
 * does.  No mapping, no comparison. */
static double send_ioctl_ms(btrfslayer *h, const char *id, const char *dir, bool writable)
{
	char root[ROOT_MAX], image[ROOT_MAX], snap[PATH_MAX];
	layer_root(h, id, root, sizeof(root));
	layer_root(h, "image", image, sizeof(image));
	int fd = open(root, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	int parent = open(image, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	int home = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	int out = open(dir, O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
	struct btrfs_ioctl_ino_lookup_args lookup = { .objectid = BTRFS_FIRST_FREE_OBJECTID };
	if (fd < 0 || parent < 0 || home < 0 || out < 0 ||
	    ioctl(parent, BTRFS_IOC_INO_LOOKUP, &lookup) < 0) {
		perror("send ioctl");
		exit(1);
	}
	struct btrfs_ioctl_vol_args_v2 snap_args = { .fd = fd, .flags = BTRFS_SUBVOL_RDONLY };
	snprintf(snap_args.name, sizeof(snap_args.name), ".bench-send-snapshot");
	snprintf(snap, sizeof(snap), "%s/%s", dir, snap_args.name);
	double t0 = now_ms();
	int from = fd;
	if (writable) {
		if (ioctl(home, BTRFS_IOC_SNAP_CREATE_V2, &snap_args) < 0 ||
		    (from = open(snap, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) < 0) {
			perror("BTRFS_IOC_SNAP_CREATE_V2");
			exit(1);
		}
	}
	struct btrfs_ioctl_send_args args = { .send_fd = out, .parent_root = lookup.treeid,
					      .flags = BTRFS_SEND_FLAG_NO_FILE_DATA };
	if (ioctl(from, BTRFS_IOC_SEND, &args) < 0) {
		perror("BTRFS_IOC_SEND");
		exit(1);
	}
	if (writable) {
		struct btrfs_ioctl_vol_args destroy = { 0 };
		snprintf(destroy.name, sizeof(destroy.name), "%s", snap_args.name);
		close(from);
		if (ioctl(home, BTRFS_IOC_SNAP_DESTROY, &destroy) < 0) {
			perror("BTRFS_IOC_SNAP_DESTROY");
			exit(1);
		}
	}
	double t = now_ms() - t0;
	close(out);
	close(home);
	close(parent);
	close(fd);
	return t;
}

static void row(btrfslayer *h, const char *id, unsigned files, unsigned changed, unsigned rounds,
		const char *note, const char *tmpdir, bool writable)
{
	double send[MAX_ROUNDS], walk[MAX_ROUNDS], ioc[MAX_ROUNDS];
	double send_cpu[MAX_ROUNDS], walk_cpu[MAX_ROUNDS];
	size_t by_send = 0, by_walk = 0;
	for (unsigned i = 0; i < rounds; i++) {
		if (i % 2) {
			walk[i] = changes_ms(h, id, BTRFSLAYER_CHANGES_WALK, &by_walk,
					     &walk_cpu[i]);
			send[i] = changes_ms(h, id, 0, &by_send, &send_cpu[i]);
		} else {
			send[i] = changes_ms(h, id, 0, &by_send, &send_cpu[i]);
			walk[i] = changes_ms(h, id, BTRFSLAYER_CHANGES_WALK, &by_walk,
					     &walk_cpu[i]);
		}
		if (by_send != by_walk) {
			fprintf(stderr, "%s: send found %zu changes, the walk %zu\n", id, by_send,
				by_walk);
			exit(1);
		}
		if (tmpdir)
			ioc[i] = send_ioctl_ms(h, id, tmpdir, writable);
	}
	double s = median_of(send, rounds), w = median_of(walk, rounds);
	double sb = send[0], wb = walk[0];	/* sorted by median_of() */
	double sc = median_of(send_cpu, rounds), wc = median_of(walk_cpu, rounds);
	char kernel[32] = "";
	if (tmpdir)
		snprintf(kernel, sizeof(kernel), "%.1f ms", median_of(ioc, rounds));
	/* two decimals where the ratio is near 1: "slower" must show */
	int digits = w / s < 10 ? 2 : 0;
	printf("| changes, %u-file layer, %u changed%s | %zu | %.1f / %.1f / %.1f ms "
	       "| %.1f / %.1f / %.1f ms | %.*fx / %.*fx / %.*fx | %s |\n", files, changed, note,
	       by_send, s, sb, sc, w, wb, wc, digits, w / s, digits, wb / sb, digits, wc / sc,
	       kernel);
	fflush(stdout);
}

int main(int argc, char **argv)
{
	if (argc < 2 || argc > 4) {
		fprintf(stderr, "usage: %s NEW-HOME-ON-BTRFS [FILES [ROUNDS]]\n", argv[0]);
		return 2;
	}
	unsigned files = argc >= 3 ? (unsigned)strtoul(argv[2], NULL, 10) : 100000;
	unsigned rounds = argc == 4 ? (unsigned)strtoul(argv[3], NULL, 10) : 7;
	if (rounds < 1 || rounds > MAX_ROUNDS) {
		fprintf(stderr, "ROUNDS must be 1 to %d\n", MAX_ROUNDS);
		return 2;
	}
	if (files < 20) {
		fprintf(stderr, "FILES must be at least 20\n");
		return 2;
	}
	btrfslayer *h;
	btrfslayer_error *err = NULL;
	check(btrfslayer_open(argv[1], NULL, 0, NULL, 0, NULL, 0, &h, &err), err, "open");
	char root[ROOT_MAX], path[PATH_MAX];
	if (btrfslayer_exists(h, "half", NULL) == 1) {
		fprintf(stderr, "reusing the layers of an earlier run\n");
		goto measure;
	}
	check(btrfslayer_create(h, "base", NULL, 0, NULL, NULL, 0, &err), err, "create base");
	layer_root(h, "base", root, sizeof(root));
	fprintf(stderr, "making %u files...\n", files);
	for (unsigned i = 0; i < files; i++) {
		if (i % PER_DIR == 0) {
			snprintf(path, sizeof(path), "%.*s/d%03u", ROOT_MAX, root, i / PER_DIR);
			if (mkdir(path, 0755) < 0) {
				perror(path);
				return 1;
			}
		}
		file_path(path, sizeof(path), root, i);
		int fd = open(path, O_WRONLY | O_CREAT | O_EXCL, 0644);
		if (fd < 0 || write(fd, path, 64) != 64) {
			perror(path);
			return 1;
		}
		close(fd);
	}
	check(btrfslayer_create(h, "image", "base", BTRFSLAYER_CREATE_READ_ONLY, NULL, NULL, 0,
				&err), err, "create image");
	check(btrfslayer_create(h, "few", "image", 0, NULL, NULL, 0, &err), err, "create few");
	check(btrfslayer_create(h, "half", "image", 0, NULL, NULL, 0, &err), err, "create half");
	layer_root(h, "few", root, sizeof(root));
	change(root, files, 10);
	layer_root(h, "half", root, sizeof(root));
	fprintf(stderr, "changing %u files...\n", files / 2);
	change(root, files, files / 2);
	sync();
measure:;
	/* a warm cache for both ways: one walk of each tree first */
	size_t warm = 0;
	check(btrfslayer_changes(h, "half", "image", BTRFSLAYER_CHANGES_WALK, count, &warm, &err),
	      err, "warm-up walk");
	printf("| | changes | send stream: median / best / CPU | walk: median / best / CPU "
	       "| walk / send | kernel alone (median) |\n"
	       "| --- | --- | --- | --- | --- | --- |\n");
	row(h, "few", files, 10, rounds, " (writable: a temporary snapshot)", argv[1], true);
	set_sealed(h, "few", 1);
	sync();	/* sealed a while ago, as an image layer is: its commit root is current */
	row(h, "few", files, 10, rounds, " (sealed)", argv[1], false);
	set_sealed(h, "few", 0);
	row(h, "half", files, files / 2, rounds, " (writable)", NULL, true);
	check(btrfslayer_close(h, &err), err, "close");
	return 0;
}
