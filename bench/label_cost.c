/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * What labelling a snapshot costs: the library's choice (label the layer
 * root only) against the reference driver's (relabel every file of the new
 * layer, on every create).  Not a test; run by hand, as root, on btrfs:
 *
 *     bench_label_cost HOME [FILES]
 *
 * HOME must not exist; its parent must be on btrfs.  Makes an image layer of
 * FILES (default 10000) labelled files in directories of 100, then times
 * creating a labelled snapshot of it, ROUNDS times each way, and prints the
 * median of each.  Leaves HOME behind with its layers.
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <ftw.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <selinux/selinux.h>

#include "btrfslayer.h"
#include "timing.h"

#define ROUNDS 5
#define PER_DIR 100
#define IMAGE_LABEL "system_u:object_r:container_ro_file_t:s0"
#define LABEL "system_u:object_r:container_file_t:s0:c1,c2"

static void die(const char *what, int r, btrfslayer_error *err)
{
	fprintf(stderr, "bench_label_cost: %s: %s\n", what,
		err ? btrfslayer_error_message(err) : strerror(-r));
	exit(1);
}

static const char *walk_label;
static long walked;

static int relabel_one(const char *path, const struct stat *st, int type, struct FTW *ftw)
{
	(void)st, (void)type, (void)ftw;
	walked++;
	return lsetfilecon(path, walk_label) < 0 ? -1 : 0;
}

/* The reference driver's way: every file of the layer, root included. */
static void relabel_tree(const char *root, const char *label)
{
	walk_label = label;
	if (nftw(root, relabel_one, 64, FTW_PHYS | FTW_MOUNT) != 0)
		die("relabel tree", -1, NULL);
}

static void populate(const char *root, long files)
{
	char path[4096];
	for (long i = 0; i < files; i++) {
		if (i % PER_DIR == 0) {
			snprintf(path, sizeof(path), "%s/d%ld", root, i / PER_DIR);
			if (mkdir(path, 0755) < 0 || lsetfilecon(path, IMAGE_LABEL) < 0)
				die(path, -1, NULL);
		}
		snprintf(path, sizeof(path), "%s/d%ld/f%ld", root, i / PER_DIR, i);
		int fd = open(path, O_WRONLY | O_CREAT | O_EXCL, 0644);
		if (fd < 0 || write(fd, "data\n", 5) != 5 || fsetfilecon(fd, IMAGE_LABEL) < 0)
			die(path, -1, NULL);
		close(fd);
	}
}

/* One labelled snapshot of "image"; its time in ms, syncfs included (the
 * walk's metadata writes are paid at writeback). */
static double snapshot(btrfslayer *h, const char *id, bool walk, int syncfd)
{
	btrfslayer_error *err = NULL;
	char *path = NULL;
	sync();
	double start = now_ms();
	int r = btrfslayer_create(h, id, "image", 0, LABEL, NULL, 0, &err);
	if (r < 0)
		die("create", r, err);
	if (walk) {
		if ((r = btrfslayer_get(h, id, NULL, &path, &err)) < 0)
			die("get", r, err);
		relabel_tree(path, LABEL);
		free(path);
	}
	syncfs(syncfd);
	return now_ms() - start;
}

int main(int argc, char **argv)
{
	if (argc < 2 || argc > 3) {
		fprintf(stderr, "usage: bench_label_cost HOME [FILES]\n");
		return 2;
	}
	long files = argc == 3 ? strtol(argv[2], NULL, 10) : 10000;
	btrfslayer *h;
	btrfslayer_error *err = NULL;
	char *image;
	int r = btrfslayer_open(argv[1], NULL, 0, NULL, 0, NULL, 0, &h, &err);
	if (r < 0)
		die("open", r, err);
	if ((r = btrfslayer_create(h, "image", NULL, 0, IMAGE_LABEL, NULL, 0, &err)) < 0 ||
	    (r = btrfslayer_get(h, "image", NULL, &image, &err)) < 0)
		die("create image", r, err);
	populate(image, files);
	int syncfd = open(image, O_RDONLY | O_DIRECTORY);
	free(image);

	double root_only[ROUNDS], whole_tree[ROUNDS];
	char id[32];
	for (int i = 0; i < ROUNDS; i++) {
		snprintf(id, sizeof(id), "root-only-%d", i);
		root_only[i] = snapshot(h, id, false, syncfd);
		snprintf(id, sizeof(id), "whole-tree-%d", i);
		walked = 0;
		whole_tree[i] = snapshot(h, id, true, syncfd);
	}
	qsort(root_only, ROUNDS, sizeof(double), cmp_double);
	qsort(whole_tree, ROUNDS, sizeof(double), cmp_double);
	printf("%ld files; median of %d labelled snapshots, syncfs included:\n", files, ROUNDS);
	printf("  root only (libbtrfslayer):            %8.1f ms\n", root_only[ROUNDS / 2]);
	printf("  whole tree (%6ld inodes relabelled): %8.1f ms\n", walked, whole_tree[ROUNDS / 2]);
	close(syncfd);
	btrfslayer_close(h, NULL);
	return 0;
}
