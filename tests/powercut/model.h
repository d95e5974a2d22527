/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * What the workload did and what it implies.  The workload writes one line
 * per call to the results file:
 *
 *   <op> <id> <parent> <ro> <size> <rc> <start> <end> <uuid>
 *
 * parent is a layer index or -1, size is bytes (0: none), rc what the call
 * returned, start and end the recorder's position read just before the call
 * and just after it returned.  Everything in the log before `end` reached
 * the disk's log by the time the call returned.  uuid is the subvolume
 * UUID of the layer a create made (32 hex digits, "-" for other calls): it
 * tells a layer from an older one under the same id.
 */
#ifndef POWERCUT_MODEL_H
#define POWERCUT_MODEL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* A small pool of ids, so that ids are reused: created, removed, created
 * again. */
#define PC_POOL 6
#define PC_ID_LEN 8

enum pc_op {
	PC_OP_OPEN,		/* btrfslayer_open of the home */
	PC_OP_CREATE,		/* empty layer */
	PC_OP_SNAPSHOT,
	PC_OP_SET_QUOTA,
	PC_OP_CLEAR_QUOTA,
	PC_OP_REMOVE,
	PC_OP_NEST,		/* a subvolume made inside a layer: no library call */
	PC_OP_WRITE,		/* a file written in a layer: no library call */
	PC_OP_COUNT,
};

struct pc_call {
	enum pc_op op;
	int id;			/* layer index, -1 for open */
	int parent;
	bool ro;
	uint64_t size;
	int rc;
	uint64_t start, end;
	uint8_t uuid[16];	/* create, snapshot: the layer made; else zero */
};

struct pc_layer {
	bool exists;
	bool ro;
	uint64_t limit;		/* 0: none */
	int by;			/* the call that last changed it, or -1 */
	int made;		/* the call that created it, or -1 */
	uint8_t uuid[16];	/* its subvolume's UUID, from that call */
};

extern const char *const pc_op_names[PC_OP_COUNT];

void pc_id_name(int i, char buf[PC_ID_LEN]);

/* "snapshot l3 from l1 ro size=..."; buf of 128 bytes is enough. */
void pc_call_describe(const struct pc_call *c, char *buf, size_t len);

/* What a call that returned `rc` does to the layers (nothing on failure). */
void pc_model_apply(struct pc_layer l[PC_POOL], const struct pc_call *c, int index);

/* The subvolume UUID of the layer at `path`.  0, or -errno. */
int pc_subvolume_uuid(const char *path, uint8_t uuid[16]);

/* Write a results line; 0, or -1. */
int pc_results_write(int fd, const struct pc_call *c);

/* Read the results file: calls in order.  Count, or -errno. */
int pc_results_load(const char *path, struct pc_call **out);

#endif
