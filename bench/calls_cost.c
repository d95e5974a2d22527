/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * What the 1.0 calls cost.  Not a test; run by hand, as root, on btrfs:
 *
 *     bench_calls_cost HOME [LAYERS [FILES]]
 *
 * HOME must not exist; its parent must be on btrfs.  Makes LAYERS (default
 * 1000) layers, each a snapshot of the one before, and an image layer of
 * FILES (default 10000) files in directories of 100, then prints the median
 * of ROUNDS runs of:
 *   - layer_info of the last layer (parent found through the uuid tree),
 *     and the same without CAP_SYS_ADMIN (the layers compared one by one);
 *   - get_usage with BTRFSLAYER_USAGE_WALK of the image layer;
 *   - mount_idmapped of the image layer, against what it replaces: chowning
 *     every file of a snapshot of it (lchown, as a runtime shifting ids does).
 * Leaves HOME behind with its layers.
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <ftw.h>
#include <linux/capability.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "btrfslayer.h"
#include "timing.h"

#define ROUNDS 5
#define PER_DIR 100
#define SHIFT 100000u

static void die(const char *what, int r, btrfslayer_error *err)
{
	fprintf(stderr, "bench_calls_cost: %s: %s\n", what,
		err ? btrfslayer_error_message(err) : strerror(-r));
	exit(1);
}

#define CHECK(what, call)                               \
	do {                                            \
		btrfslayer_error *e_ = NULL;            \
		int r_ = (call);                        \
		if (r_ < 0)                             \
			die(what, r_, e_);              \
	} while (0)
#define ERR (&e_)

static long shifted;

static int shift_one(const char *path, const struct stat *st, int type, struct FTW *ftw)
{
	(void)type, (void)ftw;
	shifted++;
	return lchown(path, st->st_uid + SHIFT, st->st_gid + SHIFT) < 0 ? -1 : 0;
}

/* The median time of layer_info of `id` in a child without CAP_SYS_ADMIN. */
static double info_unprivileged(btrfslayer *h, const char *id)
{
	int pipefd[2];
	double ms = 0;
	if (pipe(pipefd) < 0)
		die("pipe", -1, NULL);
	pid_t pid = fork();
	if (pid == 0) {
		struct __user_cap_header_struct header = { _LINUX_CAPABILITY_VERSION_3, 0 };
		struct __user_cap_data_struct caps[2];
		double t[ROUNDS];
		btrfslayer_info info;
		if (syscall(SYS_capget, &header, caps) < 0)
			_exit(1);
		caps[CAP_TO_INDEX(CAP_SYS_ADMIN)].effective &= ~CAP_TO_MASK(CAP_SYS_ADMIN);
		if (syscall(SYS_capset, &header, caps) < 0)
			_exit(1);
		for (int i = 0; i < ROUNDS; i++) {
			double start = now_ms();
			if (btrfslayer_layer_info(h, id, &info, sizeof(info), NULL) < 0)
				_exit(1);
			t[i] = now_ms() - start;
		}
		ms = median_of(t, ROUNDS);
		_exit(write(pipefd[1], &ms, sizeof(ms)) == sizeof(ms) ? 0 : 1);
	}
	int status;
	if (pid < 0 || waitpid(pid, &status, 0) < 0 || !WIFEXITED(status) ||
	    WEXITSTATUS(status) || read(pipefd[0], &ms, sizeof(ms)) != sizeof(ms))
		die("layer info without CAP_SYS_ADMIN", -1, NULL);
	close(pipefd[0]);
	close(pipefd[1]);
	return ms;
}

int main(int argc, char **argv)
{
	if (argc < 2 || argc > 4) {
		fprintf(stderr, "usage: bench_calls_cost HOME [LAYERS [FILES]]\n");
		return 2;
	}
	int layers = argc > 2 ? atoi(argv[2]) : 1000;
	int files = argc > 3 ? atoi(argv[3]) : 10000;
	char id[32], parent[32], path[4096];
	btrfslayer *h;
	double t[ROUNDS];

	CHECK("open", btrfslayer_open(argv[1], NULL, 0, NULL, 0, NULL, 0, &h, ERR));
	for (int i = 0; i < layers; i++) {
		snprintf(id, sizeof(id), "l%d", i);
		CHECK("create layer", btrfslayer_create(h, id, i ? parent : NULL, 0, NULL, NULL, 0,
							ERR));
		memcpy(parent, id, sizeof(id));
	}
	btrfslayer_info info;
	for (int i = 0; i < ROUNDS; i++) {
		double start = now_ms();
		CHECK("layer info", btrfslayer_layer_info(h, id, &info, sizeof(info), ERR));
		t[i] = now_ms() - start;
	}
	printf("layer_info, %d layers, parent %s: %.3f ms with CAP_SYS_ADMIN, %.3f ms "
	       "without\n", layers, info.parent, median_of(t, ROUNDS), info_unprivileged(h, id));

	CHECK("create image", btrfslayer_create(h, "image", NULL, 0, NULL, NULL, 0, ERR));
	for (int i = 0; i < files; i++) {
		if (i % PER_DIR == 0) {
			snprintf(path, sizeof(path), "%s/subvolumes/image/d%d", argv[1], i / PER_DIR);
			if (mkdir(path, 0755) < 0)
				die(path, -1, NULL);
		}
		snprintf(path, sizeof(path), "%s/subvolumes/image/d%d/f%d", argv[1], i / PER_DIR, i);
		int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
		if (fd < 0 || write(fd, "data\n", 5) != 5 || close(fd) < 0)
			die(path, -1, NULL);
	}
	btrfslayer_usage u;
	for (int i = 0; i < ROUNDS; i++) {
		double start = now_ms();
		CHECK("usage walk", btrfslayer_get_usage(h, "image", BTRFSLAYER_USAGE_WALK, &u,
							 sizeof(u), ERR));
		t[i] = now_ms() - start;
	}
	printf("get_usage WALK, %d files: %.1f ms (%llu inodes, %llu bytes)\n", files,
	       median_of(t, ROUNDS), (unsigned long long)u.walk_inodes,
	       (unsigned long long)u.walk_bytes);

	static const btrfslayer_idmap map[] = { { 0, SHIFT, 65536 } };
	for (int i = 0; i < ROUNDS; i++) {
		int mfd;
		double start = now_ms();
		CHECK("idmapped mount", btrfslayer_mount_idmapped(h, "image", map, 1, map, 1, 0,
								  &mfd, ERR));
		t[i] = now_ms() - start;
		close(mfd);
	}
	double idmapped = median_of(t, ROUNDS);
	for (int i = 0; i < ROUNDS; i++) {
		snprintf(id, sizeof(id), "chowned%d", i);
		CHECK("snapshot", btrfslayer_create(h, id, "image", 0, NULL, NULL, 0, ERR));
		snprintf(path, sizeof(path), "%s/subvolumes/%s", argv[1], id);
		shifted = 0;
		double start = now_ms();
		if (nftw(path, shift_one, 64, FTW_PHYS | FTW_MOUNT) != 0)
			die("chown walk", -1, NULL);
		int fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		if (fd < 0 || syncfs(fd) < 0)
			die("sync", -1, NULL);
		close(fd);
		t[i] = now_ms() - start;
	}
	printf("idmapped mount: %.2f ms; chown of a snapshot's %ld inodes (and sync): %.1f ms\n",
	       idmapped, shifted, median_of(t, ROUNDS));
	CHECK("close", btrfslayer_close(h, ERR));
	return 0;
}
