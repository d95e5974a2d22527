/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The disk log the recorder writes and the replay reads: what the loop device
 * sent to its backing file, in the order it arrived, as dm-log-writes keeps
 * it.  Entry i is the i-th thing the disk was asked to do; "position n" means
 * entries 0..n-1 reached the log. */
#ifndef POWERCUT_LOG_H
#define POWERCUT_LOG_H

#include <stdint.h>

enum pc_kind {
	PC_WRITE = 1,	/* `length` bytes of data follow the header */
	PC_FSYNC = 2,	/* a cache flush: every write before it is durable */
	PC_ZERO = 3,	/* a discard or zeroing of [offset, offset + length) */
	PC_CLOSE = 4,	/* FUSE_FLUSH, i.e. close(2) of the file: not a cache
			 * flush, kept so that the log shows it */
};

struct pc_entry {
	uint32_t kind;
	uint32_t reserved;
	uint64_t offset;
	uint64_t length;
};

/* Names in the recorder's mount. */
#define PC_DISK_NAME "disk"
#define PC_POSITION_NAME "position"

#endif
