/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The disk as it stood at a power cut, rebuilt from the base image and the
 * recorder's log. */
#ifndef POWERCUT_REPLAY_H
#define POWERCUT_REPLAY_H

#include <stddef.h>
#include <stdint.h>

struct pc_log_entry {
	uint32_t kind;		/* enum pc_kind */
	uint64_t offset, length;
	uint64_t data_at;	/* PC_WRITE: where its data is in the log file */
};

struct pc_log {
	int fd;
	size_t n;
	struct pc_log_entry *e;
};

/* Index the log at `path`.  0, or -errno (-EBADMSG: a torn entry). */
int pc_log_load(const char *path, struct pc_log *log);
void pc_log_free(struct pc_log *log);

/* Index of the last cache flush among entries [0, cut), or -1. */
long pc_log_last_flush(const struct pc_log *log, uint64_t cut);

struct pc_rebuilt {
	long flush;		/* the last flush before the cut, or -1 */
	unsigned durable;	/* writes before it: all applied */
	unsigned volatile_kept, volatile_dropped;	/* writes after it */
};

/* Write at `out` the disk as a power cut at position `cut` may leave it:
 * `base` (the image before recording), every write before the last flush
 * before the cut, and a subset of the writes between that flush and the cut
 * (a volatile disk cache may have kept any of them), drawn from `seed`.
 * 0, or -errno. */
int pc_rebuild(const struct pc_log *log, const char *base, const char *out, uint64_t cut,
	       uint64_t seed, struct pc_rebuilt *what);

/* Copy the image at `from` to `to` (made or truncated), holes kept.  0, or
 * -errno. */
int pc_copy_sparse(const char *from, const char *to);

#endif
