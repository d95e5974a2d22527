/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Crash-safety harness: a child works on a home and is SIGKILLed at a random
 * moment; the parent reopens the home and checks what the library promises
 * after a crash (docs: the recovery sweep at open). */
#ifndef CRASH_H
#define CRASH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "btrfslayer.h"

/* Layer ids come from a small pool so that snapshots and removes of existing
 * layers are frequent. */
#define POOL 24
#define ID_LEN 16

/* What a layer is, as the parent knows it from the child's reports. */
struct layer {
	bool exists;
	bool ro;		/* created READ_ONLY */
	uint64_t size;		/* recorded limit; 0: none */
	bool pending;		/* a call on it was cut by a kill and is not settled
				 * yet: the children leave it alone */
};

struct model {
	struct layer l[POOL];
};

enum op {
	OP_OPEN,
	OP_CREATE,		/* empty layer */
	OP_SNAPSHOT,
	OP_SET_QUOTA,
	OP_CLEAR_QUOTA,
	OP_REMOVE,
	OP_WRITE,		/* a few KB through get()'s path */
	OP_NEST,		/* a nested subvolume inside a layer */
	OP_COUNT,
};

/* The child writes these to the pipe: one write each, smaller than
 * PIPE_BUF, so a record arrives whole or not at all. */
enum rec_kind {
	REC_BEGIN,		/* about to make the call */
	REC_DONE,		/* the call returned success */
	REC_SWEEP,		/* what the child's own open swept */
	REC_FAIL,		/* a call failed: the child stops */
};

enum sweep_key {
	SWEEP_TOMBSTONES,
	SWEEP_TEMPORARIES,
	SWEEP_QUOTA_FILES,
	SWEEP_QGROUPS,
	SWEEP_LIMITS,		/* not in the contract's list: counted when there */
	SWEEP_LEFT,
	SWEEP_KEYS,
};

struct rec {
	uint8_t kind;
	uint8_t op;
	uint8_t id;
	uint8_t parent;
	uint8_t ro;
	uint8_t pad[3];
	int32_t rc;
	uint32_t usec;		/* REC_DONE: how long the call took */
	uint32_t sweep[SWEEP_KEYS];
	uint64_t size;
};

/* The call the child was in when it died (valid when `active`). */
struct inflight {
	bool active;
	struct rec begin;
	struct layer before;	/* the layer's state before the call */
};

/* Calls cut by kills since the last check: a round may skip its check, so
 * that the next child's open has leftovers to sweep (and may be killed in
 * the middle of that).  At most one per layer: a pending layer is frozen. */
struct pending {
	struct inflight calls[POOL + 1];
	unsigned n;
};

/* Everything counted for the summary line of one quota mode. */
struct stats {
	unsigned kills;
	unsigned inside[OP_COUNT];	/* killed inside a call of this op */
	unsigned inside_open_leftovers;	/* inside an open whose home still had
					 * what an unchecked kill left */
	unsigned between;		/* after a call returned, before the next */
	unsigned aimed, aimed_hits;	/* kills aimed at a call; that landed in it */
	unsigned before_open;		/* before the child's first call */
	unsigned long checks;		/* invariant checks evaluated */
	unsigned rounds;		/* reopen-and-check rounds */
	unsigned unchecked;		/* kills whose check was left to the next
					 * child's open and the next round */
	unsigned long sweep[SWEEP_KEYS];	/* parent's reopens */
	unsigned long child_sweep[SWEEP_KEYS];	/* the children's opens */
	unsigned long final_sweep[SWEEP_KEYS];	/* end-of-mode open */
	unsigned recovery_logs;		/* "recovery: " lines at the reopens */
	unsigned warnings;		/* WARNING or worse at the reopens */
	/* what a call in flight at the kill turned out to have done */
	unsigned created, not_created, removed, not_removed;
	unsigned quota_new, quota_old;
	unsigned long ops_done;		/* calls the children completed */
	unsigned long done[OP_COUNT];	/* of them, per call */
	double seconds[OP_COUNT];	/* time spent in them */
	unsigned sweeping_opens;	/* the children's opens that swept something */
	double sweeping_seconds;
	unsigned failed_rounds;
};

struct ctx {
	const char *mode;	/* "simple" or "qgroup" */
	const char *mnt;	/* the btrfs mount */
	char home[512];
	char opt_mode[64];
	const char *opts[3];
	size_t n_opts;
	pid_t parent_pid;
	uint64_t seed;
	unsigned kill_no;	/* the kill being checked, for messages */
	struct stats st;
};

extern const char *const op_names[OP_COUNT];
extern const char *const sweep_names[SWEEP_KEYS];

void id_name(unsigned i, char buf[ID_LEN]);
uint64_t rng_next(uint64_t *state);
/* "snapshot layer-03 from layer-01 size=... READ_ONLY" */
void describe(const struct rec *r, char *buf, size_t len);
/* CLOCK_MONOTONIC in microseconds. */
uint64_t now_us(void);

/* What a successful call (a REC_DONE) does to the model. */
void model_apply(struct model *m, const struct rec *r);

/* child.c: never returns. */
void child_main(const struct ctx *c, const struct model *m, uint64_t seed, int wfd)
	__attribute__((noreturn));

/* check.c: one invariant check; prints a precise message when it fails. */
bool check(struct ctx *c, bool ok, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
/* Failures so far in the current round. */
extern unsigned round_failures;

/* inspect.c: the filesystem as it is, not as the library says. */
/* Quota file content: 0 and *present false when missing; -1 when unreadable. */
int read_quota_file(const char *home, const char *name, bool *present, uint64_t *size);
/* Level-0 qgroup ids of the filesystem (0/5 included); count, or -errno. */
int list_qgroups(const char *mnt, uint64_t *ids, size_t max);
/* 1 if subvolume `id` still has a root item (live or not yet cleaned). */
int root_item_exists(const char *mnt, uint64_t id);
/* Subvolume read-only flag of `path`: 1, 0, or -errno. */
int subvolume_read_only(const char *path);
struct subvol {
	uint64_t id;
	char *path;		/* relative to the filesystem top */
};
/* Every subvolume of the filesystem; count, or -errno.  free_subvols(). */
int list_subvolumes(const char *mnt, struct subvol **out);
void free_subvols(struct subvol *s, int n);
/* Names in a directory ("." and ".." left out), NULL-terminated, sorted;
 * those in its .staging directory (where the library keeps its reserved
 * names) count as its own. */
char **list_dir(const char *path);
void free_names(char **names);
/* Print what is on disk, for a failure report. */
void dump_disk(struct ctx *c);

/* verify.c */
/* The sweep_* keys of status(): 0, or -ENOENT with *missing naming the first
 * key absent, or status()'s error. */
int status_sweep(btrfslayer *h, uint32_t out[SWEEP_KEYS], const char **missing);
/* Reopen, settle what `in` did, check every invariant, close.  Updates m;
 * false when a check failed. */
bool verify_after_kill(struct ctx *c, struct model *m, struct pending *p);
/* Remove every layer, sync, reopen, and check that nothing is left. */
bool verify_end_of_mode(struct ctx *c, struct model *m);
/* After a failed round: take the model from what is on disk. */
void resync_model(struct ctx *c, struct model *m);

/* crash.c */
void log_fn(int level, const char *message, void *userdata);
/* Fail the test now: kill the child, print, exit 1 (harness tears down). */
void die(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));

#endif
