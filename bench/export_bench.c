/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * What exporting a container layer costs when it changed little: a tree
 * of FILES files (default 100000, 1 KiB each, in directories of 100), a
 * read-only snapshot of it (the image layer), a writable layer on that
 * (the container's) with 10 of the files rewritten (64 KiB each), exported
 * against its parent with btrfslayer_export() (which finds the 10 through
 * the send stream), against
 * GNU `tar -c` of the same 10 files given by name (which does not have to
 * find them).  Not a test; run by hand, as root, on btrfs:
 *
 *     bench_export HOME [FILES]
 *
 * HOME must not exist; its parent must be on btrfs.  Each way runs ROUNDS
 * times, writing to a file beside HOME (GNU tar reads nothing when it
 * writes to /dev/null); prints the median of each and the sizes of both
 * tars.  Leaves HOME behind with its layers.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "btrfslayer.h"
#include "timing.h"

#define ROUNDS 5
#define PER_DIR 100
#define CHANGED 10

static void die(const char *what, int r, btrfslayer_error *err)
{
	fprintf(stderr, "bench_export: %s: %s\n", what,
		err ? btrfslayer_error_message(err) : strerror(r < 0 ? -r : r));
	exit(1);
}

static void write_file(const char *path, size_t size, char fill)
{
	static char buf[65536];
	memset(buf, fill, size);
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0 || write(fd, buf, size) != (ssize_t)size || close(fd) < 0)
		die(path, errno, NULL);
}

int main(int argc, char **argv)
{
	if (argc < 2 || argc > 3) {
		fprintf(stderr, "usage: bench_export HOME [FILES]\n");
		return 2;
	}
	const char *home = argv[1];
	long files = argc == 3 ? strtol(argv[2], NULL, 10) : 100000;
	btrfslayer *h = NULL;
	btrfslayer_error *err = NULL;
	char *base_path = NULL, *top_path = NULL, path[4096], out[4096];
	int r = btrfslayer_open(home, NULL, 0, NULL, 0, NULL, 0, &h, &err);
	if (r < 0)
		die("open", r, err);
	if ((r = btrfslayer_create(h, "base", NULL, 0, NULL, NULL, 0, &err)) < 0 ||
	    (r = btrfslayer_get(h, "base", NULL, &base_path, &err)) < 0)
		die("create base", r, err);
	for (long i = 0; i < files; i++) {
		if (i % PER_DIR == 0) {
			snprintf(path, sizeof(path), "%s/d%ld", base_path, i / PER_DIR);
			if (mkdir(path, 0755) < 0)
				die(path, errno, NULL);
		}
		snprintf(path, sizeof(path), "%s/d%ld/f%ld", base_path, i / PER_DIR, i);
		write_file(path, 1024, 'b');
	}
	sync();
	/* as a runtime has them: a read-only image layer, a writable container
	 * layer on it */
	if ((r = btrfslayer_create(h, "image", "base", BTRFSLAYER_CREATE_READ_ONLY, NULL, NULL,
				   0, &err)) < 0)
		die("create image", r, err);
	if ((r = btrfslayer_create(h, "top", "image", 0, NULL, NULL, 0, &err)) < 0 ||
	    (r = btrfslayer_get(h, "top", NULL, &top_path, &err)) < 0)
		die("create top", r, err);
	/* the 10 changed files, spread over the tree; their names for tar */
	char names[CHANGED][64];
	const char *tar_argv[8 + CHANGED + 1] = { "tar", "-C", top_path, "-cf", out };
	int n_argv = 5;
	for (int k = 0; k < CHANGED; k++) {
		long i = (files / CHANGED) * k + 7;
		snprintf(names[k], sizeof(names[k]), "d%ld/f%ld", i / PER_DIR, i);
		snprintf(path, sizeof(path), "%s/%s", top_path, names[k]);
		write_file(path, 65536, 't');
		tar_argv[n_argv++] = names[k];
	}
	tar_argv[n_argv] = NULL;
	sync();
	snprintf(out, sizeof(out), "%s.bench.tar", home);

	double t_export[ROUNDS], t_tar[ROUNDS];
	struct stat st_export, st_tar;
	for (int round = 0; round < ROUNDS; round++) {
		double t0 = now_ms();
		int fd = open(out, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
		if (fd < 0)
			die(out, errno, NULL);
		r = btrfslayer_export(h, "top", "image", fd, 0, NULL, NULL, &err);
		if (r < 0)
			die("export", r, err);
		close(fd);
		t_export[round] = now_ms() - t0;
		stat(out, &st_export);

		t0 = now_ms();
		pid_t pid = fork();
		if (pid == 0) {
			execvp("tar", (char *const *)tar_argv);
			_exit(127);
		}
		int status;
		if (pid < 0 || waitpid(pid, &status, 0) < 0 || !WIFEXITED(status) ||
		    WEXITSTATUS(status))
			die("tar", EIO, NULL);
		t_tar[round] = now_ms() - t0;
		stat(out, &st_tar);
	}
	unlink(out);
	printf("export of a %ld-file layer with %d changed files: btrfslayer_export %.1f ms "
	       "(%lld bytes), GNU tar of the same %d files by name %.1f ms (%lld bytes); "
	       "median of %d\n", files, CHANGED, median_of(t_export, ROUNDS), (long long)st_export.st_size,
	       CHANGED, median_of(t_tar, ROUNDS), (long long)st_tar.st_size, ROUNDS);
	free(base_path);
	free(top_path);
	btrfslayer_close(h, NULL);
	return 0;
}
