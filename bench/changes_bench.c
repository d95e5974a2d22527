/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * btrfslayer_changes() from the send stream against the walk, on a large
 * layer: a read-only image of FILES files (default 100,000, in directories
 * of 1,000), and two containers made from it, one with 10 files changed
 * and one with half of them changed.  Each row is one run of each way, warm
 * cache, and both must give the same number of changes.
 *
 *     build/bench/bench_changes /path/on/btrfs/new-home [FILES]
 *
 * Needs root (the send ioctl needs CAP_SYS_ADMIN).  The home is left for a
 * look, and a second run on it measures again without making the layers
 * (remove them with `btrfslayer --home HOME rm`).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include <linux/btrfs.h>

#include "btrfslayer.h"

#define PER_DIR 1000
#define ROOT_MAX 1024	/* a layer's path; file paths get room to spare */

static void check(int r, btrfslayer_error *err, const char *what)
{
	if (r < 0) {
		fprintf(stderr, "%s: %s\n", what, err ? btrfslayer_error_message(err) : strerror(-r));
		exit(1);
	}
}

static double now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
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

static void row(btrfslayer *h, const char *id, unsigned files, unsigned changed, const char *note)
{
	btrfslayer_error *err = NULL;
	size_t by_send = 0, by_walk = 0;
	double t0 = now_ms();
	check(btrfslayer_changes(h, id, "image", 0, count, &by_send, &err), err, "changes (send)");
	double t1 = now_ms();
	check(btrfslayer_changes(h, id, "image", BTRFSLAYER_CHANGES_WALK, count, &by_walk, &err),
	      err, "changes (walk)");
	double t2 = now_ms();
	if (by_send != by_walk) {
		fprintf(stderr, "%s: send found %zu changes, the walk %zu\n", id, by_send, by_walk);
		exit(1);
	}
	printf("| changes, %u-file layer, %u changed%s | %zu | %.1f ms | %.1f ms | %.0fx |\n", files,
	       changed, note, by_send, t1 - t0, t2 - t1, (t2 - t1) / (t1 - t0));
	fflush(stdout);
}

int main(int argc, char **argv)
{
	if (argc < 2 || argc > 3) {
		fprintf(stderr, "usage: %s NEW-HOME-ON-BTRFS [FILES]\n", argv[0]);
		return 2;
	}
	unsigned files = argc == 3 ? (unsigned)strtoul(argv[2], NULL, 10) : 100000;
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
	printf("| | changes | send stream | walk | walk / send |\n| --- | --- | --- | --- | --- |\n");
	row(h, "few", files, 10, " (writable: a temporary snapshot)");
	set_sealed(h, "few", 1);
	sync();	/* sealed a while ago, as an image layer is: its commit root is current */
	row(h, "few", files, 10, " (sealed)");
	set_sealed(h, "few", 0);
	row(h, "half", files, files / 2, " (writable)");
	check(btrfslayer_close(h, &err), err, "close");
	return 0;
}
