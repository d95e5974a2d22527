/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Replay of the recorder's log onto a copy of the base image. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "log.h"
#include "replay.h"
#include "util.h"

int pc_log_load(const char *path, struct pc_log *log)
{
	struct stat st;
	struct pc_entry h;
	size_t cap = 0;
	uint64_t at = 0;
	memset(log, 0, sizeof(*log));
	log->fd = open(path, O_RDONLY | O_CLOEXEC);
	if (log->fd < 0 || fstat(log->fd, &st) < 0) {
		int r = -errno;
		pc_log_free(log);
		return r;
	}
	while (at < (uint64_t)st.st_size) {
		if (pread(log->fd, &h, sizeof(h), (off_t)at) != (ssize_t)sizeof(h))
			goto torn;
		at += sizeof(h);
		struct pc_log_entry e = { h.kind, h.offset, h.length, at };
		if (h.kind == PC_WRITE) {
			if (h.length > (uint64_t)st.st_size - at)
				goto torn;
			at += h.length;
		} else if (h.kind != PC_FSYNC && h.kind != PC_ZERO && h.kind != PC_CLOSE) {
			goto torn;
		}
		if (log->n == cap) {
			cap = cap ? 2 * cap : 1024;
			struct pc_log_entry *grown = reallocarray(log->e, cap, sizeof(*grown));
			if (!grown) {
				pc_log_free(log);
				return -ENOMEM;
			}
			log->e = grown;
		}
		log->e[log->n++] = e;
	}
	return 0;
torn:
	pc_log_free(log);
	return -EBADMSG;
}

void pc_log_free(struct pc_log *log)
{
	if (log->fd >= 0)
		close(log->fd);
	free(log->e);
	memset(log, 0, sizeof(*log));
	log->fd = -1;
}

long pc_log_last_flush(const struct pc_log *log, uint64_t cut)
{
	for (uint64_t i = cut < log->n ? cut : log->n; i-- > 0;)
		if (log->e[i].kind == PC_FSYNC)
			return (long)i;
	return -1;
}

/* The base image's data extents only: it is mostly holes. */
static int copy_sparse(int from, int to)
{
	struct stat st;
	if (fstat(from, &st) < 0 || ftruncate(to, st.st_size) < 0)
		return -errno;
	off_t data = 0;
	while ((data = lseek(from, data, SEEK_DATA)) >= 0) {
		off_t hole = lseek(from, data, SEEK_HOLE);
		if (hole < 0)
			return -errno;
		off_t in = data, out = data;
		while (in < hole) {
			ssize_t n = copy_file_range(from, &in, to, &out, (size_t)(hole - in), 0);
			if (n <= 0)
				return n < 0 ? -errno : -EIO;
		}
		data = hole;
	}
	return errno == ENXIO ? 0 : -errno;
}

int pc_copy_sparse(const char *from, const char *to)
{
	int in = open(from, O_RDONLY | O_CLOEXEC);
	if (in < 0)
		return -errno;
	int out = open(to, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	int r = out < 0 ? -errno : copy_sparse(in, out);
	if (out >= 0 && close(out) < 0 && r == 0)
		r = -errno;
	close(in);
	return r;
}

static int apply(const struct pc_log *log, const struct pc_log_entry *e, int to)
{
	if (e->kind == PC_ZERO)
		return fallocate(to, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, (off_t)e->offset,
				 (off_t)e->length) < 0 ? -errno : 0;
	if (e->kind != PC_WRITE)
		return 0;
	off_t in = (off_t)e->data_at, out = (off_t)e->offset;
	for (uint64_t left = e->length; left;) {
		ssize_t n = copy_file_range(log->fd, &in, to, &out, (size_t)left, 0);
		if (n <= 0)
			return n < 0 ? -errno : -EIO;
		left -= (uint64_t)n;
	}
	return 0;
}

int pc_rebuild(const struct pc_log *log, const char *base, const char *out, uint64_t cut,
	       uint64_t seed, struct pc_rebuilt *what)
{
	memset(what, 0, sizeof(*what));
	int from = open(base, O_RDONLY | O_CLOEXEC);
	if (from < 0)
		return -errno;
	int to = open(out, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (to < 0) {
		int r = -errno;
		close(from);
		return r;
	}
	int r = copy_sparse(from, to);
	close(from);
	what->flush = pc_log_last_flush(log, cut);
	uint64_t rng = seed ^ (cut * UINT64_C(0x9e3779b97f4a7c15));
	for (uint64_t i = 0; r == 0 && i < cut && i < log->n; i++) {
		const struct pc_log_entry *e = &log->e[i];
		if (e->kind != PC_WRITE && e->kind != PC_ZERO)
			continue;
		if ((long)i < what->flush) {
			what->durable++;
		} else if (pc_rng(&rng) & 1) {
			what->volatile_kept++;
		} else {
			what->volatile_dropped++;
			continue;
		}
		r = apply(log, e, to);
	}
	if (close(to) < 0 && r == 0)
		r = -errno;
	return r;
}
