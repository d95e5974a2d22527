/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The child: opens the home and makes random calls until it is killed.  It
 * starts from the parent's model (inherited through fork), so every call it
 * picks must succeed: a failure is reported and ends the child. */
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

#include "crash.h"

struct child {
	const struct ctx *c;
	struct model m;
	uint64_t rng;
	bool quota_heavy;	/* mostly set/clear_quota: short calls, which
				 * random kills would otherwise rarely cut */
	int wfd;
	btrfslayer *h;
};

/* The child never returns through main: no atexit handler (the harness's
 * teardown would unmount the parent's filesystem), no stdio flush. */
static void send_rec(struct child *k, const struct rec *r)
{
	if (write(k->wfd, r, sizeof(*r)) != (ssize_t)sizeof(*r))
		_exit(5);
}

static void child_log(int level, const char *message, void *userdata)
{
	(void)userdata;
	if (level <= BTRFSLAYER_LOG_WARNING)
		dprintf(STDERR_FILENO, "crash child %d: library log %d: %s\n", (int)getpid(),
			level, message);
}

static void __attribute__((noreturn))
fail(struct child *k, struct rec *r, int rc, btrfslayer_error *err, const char *what)
{
	char id[ID_LEN], parent[ID_LEN];
	id_name(r->id, id);
	id_name(r->parent, parent);
	dprintf(STDERR_FILENO,
		"crash child %d: %s id=%s parent=%s size=%" PRIu64 " ro=%u: %s = %d (%s): %s\n",
		(int)getpid(), op_names[r->op], id, parent, r->size, r->ro, what, rc,
		btrfslayer_strerror(rc), err ? btrfslayer_error_message(err) : "no message");
	r->kind = REC_FAIL;
	r->rc = rc;
	send_rec(k, r);
	_exit(3);
}

static int pick(struct child *k, bool exists, bool writable)
{
	unsigned start = (unsigned)(rng_next(&k->rng) % POOL);
	for (unsigned n = 0; n < POOL; n++) {
		unsigned i = (start + n) % POOL;
		const struct layer *l = &k->m.l[i];
		if (l->exists == exists && !l->pending && (!writable || !l->ro))
			return (int)i;
	}
	return -1;
}

/* A limit of 16-32 MiB, far above what the children write: as "<n>k" or as
 * plain bytes, the two spellings a runtime uses. */
static uint64_t pick_size(struct child *k, char *opt, size_t len)
{
	uint64_t kib = 16384 + rng_next(&k->rng) % 16384;
	if (rng_next(&k->rng) & 1) {
		snprintf(opt, len, "size=%" PRIu64 "k", kib);
		return kib * 1024;
	}
	uint64_t bytes = kib * 1024 + rng_next(&k->rng) % 1024;
	snprintf(opt, len, "size=%" PRIu64, bytes);
	return bytes;
}

static void do_open(struct child *k)
{
	struct rec r = { .kind = REC_BEGIN, .op = OP_OPEN };
	btrfslayer_error *err = NULL;
	send_rec(k, &r);
	uint64_t start = now_us();
	int rc = btrfslayer_open(k->c->home, k->c->opts, k->c->n_opts, NULL, 0, NULL, 0,
				 &k->h, &err);
	if (rc < 0)
		fail(k, &r, rc, err, "btrfslayer_open");
	struct rec s = { .kind = REC_SWEEP, .op = OP_OPEN };
	const char *missing = NULL;
	if (status_sweep(k->h, s.sweep, &missing) == 0)
		send_rec(k, &s);
	r.kind = REC_DONE;
	r.usec = (uint32_t)(now_us() - start);
	send_rec(k, &r);
}

static int do_create(struct child *k, struct rec *r, int parent, btrfslayer_error **err)
{
	char id[ID_LEN], parent_id[ID_LEN], opt[64];
	const char *opts[1] = { opt };
	size_t n_opts = 0;
	id_name(r->id, id);
	id_name((unsigned)parent, parent_id);
	if (rng_next(&k->rng) % 3 == 0) {
		r->size = pick_size(k, opt, sizeof(opt));
		n_opts = 1;
	}
	r->ro = rng_next(&k->rng) % 4 == 0;
	r->parent = parent < 0 ? 0xff : (uint8_t)parent;
	send_rec(k, r);
	return btrfslayer_create(k->h, id, parent < 0 ? NULL : parent_id,
				 r->ro ? BTRFSLAYER_CREATE_READ_ONLY : 0, NULL, opts, n_opts, err);
}

/* A few KB into a file of the layer, through the path get() hands out:
 * something for the quotas to count. */
static int write_some(struct child *k, const char *path, const char **what)
{
	char file[4200], buf[16384];
	size_t n = 1 + rng_next(&k->rng) % sizeof(buf);
	for (size_t i = 0; i < n; i += 8) {
		uint64_t v = rng_next(&k->rng);
		memcpy(buf + i, &v, n - i < 8 ? n - i : 8);
	}
	snprintf(file, sizeof(file), "%s/data-%u", path, (unsigned)(rng_next(&k->rng) % 4));
	int fd = open(file, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	*what = "write a file in the layer";
	if (fd < 0)
		return -errno;
	int rc = write(fd, buf, n) == (ssize_t)n ? 0 : -EIO;
	if (close(fd) < 0 && rc == 0)
		rc = -errno;
	return rc;
}

/* A subvolume inside the layer: removal and the sweep must take it too. */
static int nest(struct child *k, const char *path, const char **what)
{
	struct btrfs_ioctl_vol_args args;
	memset(&args, 0, sizeof(args));
	snprintf(args.name, sizeof(args.name), "nested-%016" PRIx64, rng_next(&k->rng));
	*what = "create a nested subvolume";
	int fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	int rc = ioctl(fd, BTRFS_IOC_SUBVOL_CREATE, &args) < 0 ? -errno : 0;
	close(fd);
	if (rc == 0 && rng_next(&k->rng) & 1) {
		char inner[4200];
		snprintf(inner, sizeof(inner), "%s/%s", path, args.name);
		rc = write_some(k, inner, what);
	}
	return rc;
}

static int do_layer_io(struct child *k, struct rec *r, btrfslayer_error **err,
		       const char **what)
{
	char id[ID_LEN], *path = NULL;
	id_name(r->id, id);
	send_rec(k, r);
	*what = "btrfslayer_get";
	int rc = btrfslayer_get(k->h, id, NULL, &path, err);
	if (rc < 0)
		return rc;
	rc = r->op == OP_WRITE ? write_some(k, path, what) : nest(k, path, what);
	free(path);
	if (rc == 0) {
		*what = "btrfslayer_put";
		rc = btrfslayer_put(k->h, id, err);
	}
	return rc;
}

/* Pick the next call from what exists, make it, report it.  Returns after
 * the call succeeded; a failure ends the child. */
static void step(struct child *k)
{
	struct rec r = { .kind = REC_BEGIN };
	btrfslayer_error *err = NULL;
	const char *what = NULL;
	char id[ID_LEN];
	int existing = pick(k, true, false), free_id = pick(k, false, false);
	int writable = pick(k, true, true);
	unsigned roll = (unsigned)(rng_next(&k->rng) % 100);
	int rc;
	uint64_t start = now_us();

	if (k->quota_heavy)	/* 10% as usual, 90% set/clear */
		roll = roll < 10 ? roll * 10 : roll < 55 ? 42 + roll % 12 : 54 + roll % 8;

	if (existing < 0 && free_id < 0)
		pause();	/* every id pending: wait for the kill */
	if (existing < 0)
		roll = 0;	/* nothing to work on: create */
	if (roll < 42 && free_id < 0)
		roll = 70;	/* pool full: remove */
	if (roll >= 86 && writable < 0)
		roll = 70;
	r.op = roll < 22 ? OP_CREATE : roll < 42 ? OP_SNAPSHOT : roll < 54 ? OP_SET_QUOTA :
	       roll < 62 ? OP_CLEAR_QUOTA : roll < 86 ? OP_REMOVE : roll < 97 ? OP_WRITE : OP_NEST;
	r.id = (uint8_t)(r.op == OP_CREATE || r.op == OP_SNAPSHOT ? free_id :
			 r.op >= OP_WRITE ? writable : existing);
	r.parent = 0xff;
	id_name(r.id, id);

	switch (r.op) {
	case OP_CREATE:
	case OP_SNAPSHOT:
		what = "btrfslayer_create";
		rc = do_create(k, &r, r.op == OP_SNAPSHOT ? existing : -1, &err);
		break;
	case OP_SET_QUOTA: {
		char unused[64];
		r.size = pick_size(k, unused, sizeof(unused));
		send_rec(k, &r);
		what = "btrfslayer_set_quota";
		rc = btrfslayer_set_quota(k->h, id, r.size, &err);
		break;
	}
	case OP_CLEAR_QUOTA:
		send_rec(k, &r);
		what = "btrfslayer_clear_quota";
		rc = btrfslayer_clear_quota(k->h, id, &err);
		break;
	case OP_REMOVE:
		send_rec(k, &r);
		what = "btrfslayer_remove";
		rc = btrfslayer_remove(k->h, id, &err);
		break;
	default:
		rc = do_layer_io(k, &r, &err, &what);
		break;
	}
	if (rc < 0)
		fail(k, &r, rc, err, what);

	model_apply(&k->m, &r);
	r.kind = REC_DONE;
	r.usec = (uint32_t)(now_us() - start);
	send_rec(k, &r);
}

void child_main(const struct ctx *c, const struct model *m, uint64_t seed, int wfd)
{
	struct child k = { .c = c, .m = *m, .rng = seed, .wfd = wfd };
	k.quota_heavy = rng_next(&k.rng) % 4 == 0;
	/* the harness's handlers tear the filesystem down: not from here */
	signal(SIGINT, SIG_DFL);
	signal(SIGTERM, SIG_DFL);
	signal(SIGALRM, SIG_DFL);
	/* a parent that dies must not leave us working on its mount */
	if (prctl(PR_SET_PDEATHSIG, SIGKILL) < 0 || getppid() != c->parent_pid)
		_exit(4);
	btrfslayer_set_log_fn(child_log, NULL);
	do_open(&k);
	for (;;)
		step(&k);
}
