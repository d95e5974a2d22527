/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The disk recorder: a FUSE filesystem with one file, `disk`, backed by a
 * real image file, that appends every WRITE and every FSYNC it serves to a
 * log (log.h), in the order they arrive.  A loop device on `disk` then
 * behaves as a disk whose every write and cache flush is on record, which is
 * what dm-log-writes gives where there is no device-mapper.
 *
 *   powercut_recorder IMAGE LOG MOUNTPOINT
 *
 * Runs in the foreground, single-threaded (-s): requests are served one at a
 * time, so the log's order is the order the kernel's requests were answered.
 * A second file, `position`, reads as the number of log entries so far
 * (decimal): a workload that reads it knows that everything before that
 * entry reached the log.
 *
 * Why the log is faithful:
 * - No writeback cache (FUSE_CAP_WRITEBACK_CACHE off, FUSE's default):
 *   the kernel sends each write to us before write(2) on `disk` returns, so
 *   a write the loop device completed is in the log (it completes a
 *   request only once the write to its backing file returned).
 * - Cache flushes (drivers/block/loop.c): loop_update_limits() gives the
 *   device BLK_FEAT_WRITE_CACHE when the backing file has ->fsync, and
 *   never BLK_FEAT_FUA, so the block layer's flush machinery (blk-flush.c)
 *   turns REQ_PREFLUSH into a REQ_OP_FLUSH before the write and REQ_FUA into
 *   one after it.  do_req_filebacked() serves REQ_OP_FLUSH with
 *   lo_req_flush(), i.e. vfs_fsync() of the backing file, which FUSE sends
 *   here as FSYNC.  Seen in a log: a sync of the btrfs ends with FSYNC,
 *   WRITE of the superblock at 64 KiB, FSYNC; powercut.c checks at every
 *   run that a syncfs() shows a FSYNC.
 * - Discards and write-zeroes reach us as fallocate (lo_fallocate()); the
 *   test mounts with nodiscard anyway.
 * - `position` is opened direct_io, so every read comes here and is
 *   answered in turn with the writes.
 */
#define _GNU_SOURCE
#define FUSE_USE_VERSION 35
#include <errno.h>
#include <fcntl.h>
#include <fuse.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>

#include "log.h"

static int image_fd = -1, log_fd = -1;
static off_t image_size;
static uint64_t entries;

static int log_append(uint32_t kind, uint64_t offset, uint64_t length, const void *data)
{
	struct pc_entry e = { .kind = kind, .offset = offset, .length = length };
	struct iovec iov[2] = {
		{ &e, sizeof(e) },
		{ (void *)data, data ? (size_t)length : 0 },
	};
	size_t want = sizeof(e) + iov[1].iov_len;
	/* the log is a plain file: a short write means the disk is full */
	if (writev(log_fd, iov, 2) != (ssize_t)want) {
		fprintf(stderr, "recorder: append to the log: %s\n", strerror(errno));
		return -EIO;
	}
	entries++;
	return 0;
}

static void *rec_init(struct fuse_conn_info *conn, struct fuse_config *cfg)
{
	/* write-through: each write reaches us before the writer returns */
	conn->want &= ~(unsigned)FUSE_CAP_WRITEBACK_CACHE;
	cfg->kernel_cache = 0;
	cfg->auto_cache = 0;
	cfg->direct_io = 0;
	cfg->attr_timeout = 3600;
	cfg->entry_timeout = 3600;
	return NULL;
}

static int rec_getattr(const char *path, struct stat *st, struct fuse_file_info *fi)
{
	(void)fi;
	memset(st, 0, sizeof(*st));
	if (!strcmp(path, "/")) {
		st->st_mode = S_IFDIR | 0700;
		st->st_nlink = 2;
	} else if (!strcmp(path, "/" PC_DISK_NAME)) {
		st->st_mode = S_IFREG | 0600;
		st->st_nlink = 1;
		st->st_size = image_size;
	} else if (!strcmp(path, "/" PC_POSITION_NAME)) {
		st->st_mode = S_IFREG | 0400;
		st->st_nlink = 1;
		st->st_size = 32;	/* direct_io: the size is not what limits reads */
	} else {
		return -ENOENT;
	}
	return 0;
}

static int rec_readdir(const char *path, void *buf, fuse_fill_dir_t fill, off_t off,
		       struct fuse_file_info *fi, enum fuse_readdir_flags flags)
{
	(void)off;
	(void)fi;
	(void)flags;
	if (strcmp(path, "/"))
		return -ENOTDIR;
	fill(buf, ".", NULL, 0, 0);
	fill(buf, "..", NULL, 0, 0);
	fill(buf, PC_DISK_NAME, NULL, 0, 0);
	fill(buf, PC_POSITION_NAME, NULL, 0, 0);
	return 0;
}

static int rec_open(const char *path, struct fuse_file_info *fi)
{
	if (!strcmp(path, "/" PC_POSITION_NAME)) {
		if ((fi->flags & O_ACCMODE) != O_RDONLY)
			return -EACCES;
		fi->direct_io = 1;	/* never cached: each read asks us */
		return 0;
	}
	return strcmp(path, "/" PC_DISK_NAME) ? -ENOENT : 0;
}

static int rec_read(const char *path, char *buf, size_t size, off_t off,
		    struct fuse_file_info *fi)
{
	(void)fi;
	if (!strcmp(path, "/" PC_POSITION_NAME)) {
		char text[32];
		int n = snprintf(text, sizeof(text), "%" PRIu64 "\n", entries);
		if (off >= n)
			return 0;
		size_t len = (size_t)(n - off) < size ? (size_t)(n - off) : size;
		memcpy(buf, text + off, len);
		return (int)len;
	}
	ssize_t n = pread(image_fd, buf, size, off);
	return n < 0 ? -errno : (int)n;
}

static int rec_write(const char *path, const char *buf, size_t size, off_t off,
		     struct fuse_file_info *fi)
{
	(void)fi;
	if (strcmp(path, "/" PC_DISK_NAME))
		return -EACCES;
	if (off < 0 || off > image_size || size > (size_t)(image_size - off))
		return -ENOSPC;	/* the disk does not grow */
	ssize_t n = pwrite(image_fd, buf, size, off);
	if (n < 0)
		return -errno;
	int r = log_append(PC_WRITE, (uint64_t)off, (uint64_t)n, buf);
	return r < 0 ? r : (int)n;
}

static int rec_fsync(const char *path, int datasync, struct fuse_file_info *fi)
{
	(void)datasync;
	(void)fi;
	/* the image needs no fsync of its own: the cut is simulated, and only
	 * the log says what was durable */
	return strcmp(path, "/" PC_DISK_NAME) ? 0 : log_append(PC_FSYNC, 0, 0, NULL);
}

static int rec_flush(const char *path, struct fuse_file_info *fi)
{
	(void)fi;
	return strcmp(path, "/" PC_DISK_NAME) ? 0 : log_append(PC_CLOSE, 0, 0, NULL);
}

static int rec_fallocate(const char *path, int mode, off_t off, off_t len,
			 struct fuse_file_info *fi)
{
	(void)fi;
	if (strcmp(path, "/" PC_DISK_NAME))
		return -EACCES;
	/* what lo_fallocate() asks: punch a hole or zero a range, in place */
	if (mode != (FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE) &&
	    mode != FALLOC_FL_ZERO_RANGE && mode != (FALLOC_FL_ZERO_RANGE | FALLOC_FL_KEEP_SIZE))
		return -EOPNOTSUPP;
	if (off < 0 || len <= 0 || off > image_size || len > image_size - off)
		return -EINVAL;
	if (fallocate(image_fd, mode, off, len) < 0)
		return -errno;
	return log_append(PC_ZERO, (uint64_t)off, (uint64_t)len, NULL);
}

static const struct fuse_operations ops = {
	.init = rec_init,
	.getattr = rec_getattr,
	.readdir = rec_readdir,
	.open = rec_open,
	.read = rec_read,
	.write = rec_write,
	.fsync = rec_fsync,
	.flush = rec_flush,
	.fallocate = rec_fallocate,
};

int main(int argc, char **argv)
{
	if (argc != 4) {
		fprintf(stderr, "usage: %s IMAGE LOG MOUNTPOINT\n", argv[0]);
		return 2;
	}
	/* a test that dies leaves no recorder behind: its teardown may not
	 * run (SIGKILL, a sanitizer abort) */
	pid_t parent = getppid();
	if (prctl(PR_SET_PDEATHSIG, SIGTERM) < 0 || getppid() != parent)
		return 1;
	image_fd = open(argv[1], O_RDWR | O_CLOEXEC);
	if (image_fd < 0) {
		fprintf(stderr, "recorder: open image %s: %s\n", argv[1], strerror(errno));
		return 1;
	}
	struct stat st;
	if (fstat(image_fd, &st) < 0) {
		fprintf(stderr, "recorder: stat image %s: %s\n", argv[1], strerror(errno));
		return 1;
	}
	image_size = st.st_size;
	log_fd = open(argv[2], O_WRONLY | O_CREAT | O_EXCL | O_APPEND | O_CLOEXEC, 0600);
	if (log_fd < 0) {
		fprintf(stderr, "recorder: create log %s: %s\n", argv[2], strerror(errno));
		return 1;
	}
	char *fargv[] = { argv[0], "-f", "-s", "-o", "fsname=powercut,subtype=powercut",
			  argv[3], NULL };
	return fuse_main(6, fargv, &ops, NULL);
}
