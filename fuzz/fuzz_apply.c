/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * bl_tar_apply(): an untrusted layer tar (plain, gzip or zstd) applied to
 * a directory on tmpfs (the beneath-opens work on any filesystem).  Beside
 * that directory lies a sentinel directory; whatever the input, nothing in
 * it may change, and a refusal's message is one printable line that says
 * "apply:".  The layer directory is emptied before each input.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fuzz.h"
#include "internal.h"

static char top[64], layer[96], outside[96], sentinel[128];
static const char sentinel_text[] = "outside the layer\n";

static int remove_entry(const char *path, const struct stat *st, int type, struct FTW *ftw)
{
	(void)st, (void)ftw;
	if (type == FTW_DP)
		return rmdir(path) < 0 && errno != ENOENT ? -1 : 0;
	return unlink(path) < 0 && errno != ENOENT ? -1 : 0;
}

static void remove_all(void)
{
	if (top[0])
		nftw(top, remove_entry, 32, FTW_DEPTH | FTW_PHYS);
}

static int count_names(const char *dir)
{
	DIR *d = opendir(dir);
	CHECK(d);
	int n = 0;
	struct dirent *de;
	while ((de = readdir(d)))
		n += strcmp(de->d_name, ".") && strcmp(de->d_name, "..");
	closedir(d);
	return n;
}

/* The sentinel directory holds exactly the sentinel file, unchanged. */
static void check_outside(void)
{
	struct stat st;
	CHECK(lstat(outside, &st) == 0 && S_ISDIR(st.st_mode) && (st.st_mode & 07777) == 0755);
	CHECK(lstat(sentinel, &st) == 0 && S_ISREG(st.st_mode) && st.st_nlink == 1 &&
	      st.st_uid == 0 && (st.st_mode & 07777) == 0644 &&
	      st.st_size == (off_t)sizeof(sentinel_text) - 1);
	char buf[64];
	int fd = open(sentinel, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	CHECK(fd >= 0);
	CHECK(read(fd, buf, sizeof(buf)) == (ssize_t)sizeof(sentinel_text) - 1);
	CHECK(!memcmp(buf, sentinel_text, sizeof(sentinel_text) - 1));
	close(fd);
	/* nothing added next to it, nor next to the layer */
	CHECK(count_names(outside) == 1);
	CHECK(count_names(top) == 2);
}

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc, (void)argv;
	const char *base = access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp";
	snprintf(top, sizeof(top), "%s/fuzz-apply.XXXXXX", base);
	CHECK(mkdtemp(top));
	atexit(remove_all);
	snprintf(layer, sizeof(layer), "%s/layer", top);
	snprintf(outside, sizeof(outside), "%s/outside", top);
	snprintf(sentinel, sizeof(sentinel), "%s/outside/file", top);
	CHECK(mkdir(outside, 0755) == 0);
	CHECK(chmod(outside, 0755) == 0);
	int fd = open(sentinel, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
	CHECK(fd >= 0);
	CHECK(fchmod(fd, 0644) == 0);
	CHECK(write(fd, sentinel_text, sizeof(sentinel_text) - 1) ==
	      (ssize_t)sizeof(sentinel_text) - 1);
	close(fd);
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	nftw(layer, remove_entry, 32, FTW_DEPTH | FTW_PHYS);
	CHECK(mkdir(layer, 0755) == 0);
	int root = open(layer, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	CHECK(root >= 0);
	int in = memfd_create("fuzz-tar", MFD_CLOEXEC);
	CHECK(in >= 0);
	CHECK(write(in, data, size) == (ssize_t)size);
	CHECK(lseek(in, 0, SEEK_SET) == 0);

	btrfslayer_error *err = NULL;
	uint64_t unpacked = UINT64_MAX;
	int r = bl_tar_apply(root, in, layer, NULL, NULL, &unpacked, &err);
	if (r < 0) {
		CHECK(err != NULL);
		CHECK(btrfslayer_error_code(err) == r);
		const char *msg = btrfslayer_error_message(err);
		CHECK(fuzz_printable(msg));
		CHECK(!strncmp(msg, "apply: ", 7));
		btrfslayer_error_free(err);
		CHECK(unpacked == UINT64_MAX);
	} else {
		CHECK(r == 0 && err == NULL);
		CHECK(unpacked != UINT64_MAX);
	}
	close(in);
	close(root);
	check_outside();
	return 0;
}
