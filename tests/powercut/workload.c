/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The workload: library calls on a recorded disk, each bracketed by two
 * reads of the recorder's position.  It never syncs: whatever reaches the
 * disk is what the library (or btrfs on its own) wrote. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <unistd.h>
#include <linux/btrfs.h>

#include "btrfslayer.h"
#include "model.h"
#include "util.h"
#include "workload.h"

struct work {
	const struct pc_workload_args *a;
	btrfslayer *h;
	int position_fd, results_fd;
	uint64_t rng;
	struct pc_layer l[PC_POOL];
	int index;		/* calls made so far */
	int failed;
	uint64_t reads;		/* the position when there is no recorder */
};

/* The child never returns through main: no atexit handler (the rig's
 * teardown would unmount the parent's filesystems), no stdio flush. */
static uint64_t position(struct work *w)
{
	char buf[32];
	if (w->position_fd < 0)
		return w->reads++;
	ssize_t n = pread(w->position_fd, buf, sizeof(buf) - 1, 0);
	if (n <= 0) {
		dprintf(STDERR_FILENO, "powercut workload: read the recorder's position: %s\n",
			n < 0 ? strerror(errno) : "empty");
		_exit(2);
	}
	buf[n] = '\0';
	return strtoull(buf, NULL, 10);
}

static void record(struct work *w, const struct pc_call *c, const char *what,
		   btrfslayer_error *err)
{
	if (pc_results_write(w->results_fd, c) < 0)
		_exit(2);
	if (c->rc != 0) {
		char desc[128];
		pc_call_describe(c, desc, sizeof(desc));
		dprintf(STDERR_FILENO, "powercut workload: call #%d %s: %s = %d (%s): %s\n",
			w->index, desc, what, c->rc, btrfslayer_strerror(c->rc),
			err ? btrfslayer_error_message(err) : "no message");
		w->failed = 1;
	}
	pc_model_apply(w->l, c, w->index);
	if (c->rc == 0 && c->op >= PC_OP_CREATE && c->op <= PC_OP_REMOVE && w->a->after_call)
		w->a->after_call(w->index, w->a->data);
	w->index++;
}

/* A subvolume inside the layer (remove must take it too), or a file in
 * it (data for the quotas to count and for writeback to carry). */
static int layer_io(struct work *w, const struct pc_call *c, const char **what,
		    btrfslayer_error **err)
{
	char id[PC_ID_LEN], *path = NULL, file[4200], buf[65536];
	pc_id_name(c->id, id);
	*what = "btrfslayer_get";
	int rc = btrfslayer_get(w->h, id, NULL, &path, err);
	if (rc < 0)
		return rc;
	if (c->op == PC_OP_NEST) {
		struct btrfs_ioctl_vol_args args;
		memset(&args, 0, sizeof(args));
		snprintf(args.name, sizeof(args.name), "nested-%d", w->index);
		*what = "create a nested subvolume";
		int fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		rc = fd < 0 || ioctl(fd, BTRFS_IOC_SUBVOL_CREATE, &args) < 0 ? -errno : 0;
		if (fd >= 0)
			close(fd);
		snprintf(file, sizeof(file), "%s/nested-%d/data", path, w->index);
	} else {
		snprintf(file, sizeof(file), "%s/data-%d", path, w->index);
	}
	if (rc == 0) {
		*what = "write a file in the layer";
		for (size_t i = 0; i < sizeof(buf); i += 8) {
			uint64_t v = pc_rng(&w->rng);
			memcpy(buf + i, &v, 8);
		}
		int fd = open(file, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
		rc = fd < 0 || write(fd, buf, sizeof(buf)) != (ssize_t)sizeof(buf) ? -EIO : 0;
		if (fd >= 0)
			close(fd);
	}
	free(path);
	return rc;
}

static void call(struct work *w, struct pc_call c)
{
	char id[PC_ID_LEN], parent[PC_ID_LEN], opt[48];
	const char *opts[1] = { opt };
	const char *what = pc_op_names[c.op];
	btrfslayer_error *err = NULL;
	pc_id_name(c.id, id);
	pc_id_name(c.parent, parent);
	snprintf(opt, sizeof(opt), "size=%" PRIu64, c.size);
	c.start = position(w);
	switch (c.op) {
	case PC_OP_CREATE:
	case PC_OP_SNAPSHOT:
		c.rc = btrfslayer_create(w->h, id, c.op == PC_OP_SNAPSHOT ? parent : NULL,
					 c.ro ? BTRFSLAYER_CREATE_READ_ONLY : 0, NULL, opts,
					 c.size ? 1 : 0, &err);
		break;
	case PC_OP_SET_QUOTA:
		c.rc = btrfslayer_set_quota(w->h, id, c.size, &err);
		break;
	case PC_OP_CLEAR_QUOTA:
		c.rc = btrfslayer_clear_quota(w->h, id, &err);
		break;
	case PC_OP_REMOVE:
		c.rc = btrfslayer_remove(w->h, id, &err);
		break;
	default:
		c.rc = layer_io(w, &c, &what, &err);
		break;
	}
	c.end = position(w);
	memset(c.uuid, 0, sizeof(c.uuid));
	if (c.rc == 0 && (c.op == PC_OP_CREATE || c.op == PC_OP_SNAPSHOT)) {
		/* read-only: nothing reaches the disk */
		char path[4200];
		snprintf(path, sizeof(path), "%s/subvolumes/%s", w->a->home, id);
		if ((c.rc = pc_subvolume_uuid(path, c.uuid)) < 0)
			what = "read the new layer's subvolume UUID";
	}
	record(w, &c, what, err);
	btrfslayer_error_free(err);
}

static int pick(struct work *w, bool exists, bool writable)
{
	int start = (int)(pc_rng(&w->rng) % PC_POOL);
	for (int n = 0; n < PC_POOL; n++) {
		int i = (start + n) % PC_POOL;
		if (w->l[i].exists == exists && (!writable || !w->l[i].ro))
			return i;
	}
	return -1;
}

/* 16-32 MiB: a limit far above what the workload writes. */
static uint64_t pick_size(struct work *w)
{
	return (16384 + pc_rng(&w->rng) % 16384) * 1024;
}

/* The next call, from what exists: every call it picks must succeed. */
static struct pc_call next_call(struct work *w)
{
	int existing = pick(w, true, false), free_id = pick(w, false, false);
	int writable = pick(w, true, true);
	unsigned roll = (unsigned)(pc_rng(&w->rng) % 100);
	struct pc_call c = { .id = existing, .parent = -1 };
	if (free_id >= 0 && (existing < 0 || roll < 30)) {
		c.id = free_id;
		c.op = existing >= 0 && pc_rng(&w->rng) % 2 ? PC_OP_SNAPSHOT : PC_OP_CREATE;
		c.parent = c.op == PC_OP_SNAPSHOT ? existing : -1;
		c.ro = pc_rng(&w->rng) % 3 == 0;
		c.size = pc_rng(&w->rng) % 3 == 0 ? pick_size(w) : 0;
	} else if (roll < 45) {
		c.op = PC_OP_SET_QUOTA;
		c.size = pick_size(w);
	} else if (roll < 55) {
		c.op = PC_OP_CLEAR_QUOTA;
	} else if (roll < 62 && writable >= 0) {
		c.op = PC_OP_NEST;
		c.id = writable;
	} else if (roll < 70 && writable >= 0) {
		c.op = PC_OP_WRITE;
		c.id = writable;
	} else {
		c.op = PC_OP_REMOVE;
	}
	return c;
}

void pc_workload(const struct pc_workload_args *a)
{
	struct work w = { .a = a, .rng = a->seed, .position_fd = -1 };
	btrfslayer_error *err = NULL;
	/* a test killed outright takes its workload along */
	pid_t parent = getppid();
	if (prctl(PR_SET_PDEATHSIG, SIGKILL) < 0 || getppid() != parent)
		_exit(2);
	signal(SIGINT, SIG_DFL);
	signal(SIGTERM, SIG_DFL);
	signal(SIGHUP, SIG_DFL);
	for (int i = 0; i < PC_POOL; i++)
		w.l[i].by = w.l[i].made = -1;
	if (a->position && (w.position_fd = open(a->position, O_RDONLY | O_CLOEXEC)) < 0) {
		dprintf(STDERR_FILENO, "powercut workload: open %s: %s\n", a->position,
			strerror(errno));
		_exit(2);
	}
	w.results_fd = open(a->results, O_WRONLY | O_CREAT | O_TRUNC | O_APPEND | O_CLOEXEC,
			    0600);
	if (w.results_fd < 0) {
		dprintf(STDERR_FILENO, "powercut workload: open %s: %s\n", a->results,
			strerror(errno));
		_exit(2);
	}
	struct pc_call o = { .op = PC_OP_OPEN, .id = -1, .parent = -1 };
	o.start = position(&w);
	o.rc = btrfslayer_open(a->home, a->opts, a->n_opts, NULL, 0, NULL, 0, &w.h, &err);
	o.end = position(&w);
	record(&w, &o, "btrfslayer_open", err);
	btrfslayer_error_free(err);
	if (o.rc < 0)
		_exit(1);

	/* first the cases a random walk may miss: a layer with a nested
	 * subvolume removed, a read-only snapshot, a read-only empty layer */
	uint64_t size = pick_size(&w);
	const struct pc_call prologue[] = {
		{ .op = PC_OP_CREATE, .id = 0, .parent = -1, .size = size },
		{ .op = PC_OP_NEST, .id = 0, .parent = -1 },
		{ .op = PC_OP_SNAPSHOT, .id = 1, .parent = 0, .ro = true },
		{ .op = PC_OP_SET_QUOTA, .id = 1, .parent = -1, .size = pick_size(&w) },
		{ .op = PC_OP_CREATE, .id = 2, .parent = -1, .ro = true },
		{ .op = PC_OP_REMOVE, .id = 0, .parent = -1 },
		{ .op = PC_OP_SNAPSHOT, .id = 3, .parent = 1, .size = size },
		{ .op = PC_OP_CLEAR_QUOTA, .id = 1, .parent = -1 },
	};
	for (size_t i = 0; i < sizeof(prologue) / sizeof(prologue[0]) && i < a->calls; i++)
		call(&w, prologue[i]);
	for (unsigned i = sizeof(prologue) / sizeof(prologue[0]); i < a->calls; i++)
		call(&w, next_call(&w));
	int r = btrfslayer_close(w.h, &err);
	if (r < 0) {
		dprintf(STDERR_FILENO, "powercut workload: btrfslayer_close: %s\n",
			btrfslayer_error_message(err));
		w.failed = 1;
	}
	btrfslayer_error_free(err);
	_exit(w.failed);
}
