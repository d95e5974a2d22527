/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Size limits and usage on a real btrfs, once with full qgroups and once with
 * simple quotas.  What is checked is what an operator sees: writes that fail
 * with EDQUOT, `btrfs qgroup show`, the quota files.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <pthread.h>
#include <sched.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "btrfslayer.h"
#include "check.h"
#include "harness.h"

#define MiB (UINT64_C(1) << 20)
#define HOME_MAX 128
#define CYCLES 100

/* The mode of the group of tests running: "qgroup" or "simple". */
static const char *mode;

struct ctx {
	char home[HOME_MAX];
	btrfslayer *h;
};

/* Run `btrfs ARGS... MOUNT`, which must succeed. */
static void btrfs_cmd(const char *a, const char *b)
{
	const char *argv[] = { "btrfs", a, b, harness_btrfs(), NULL };
	if (harness_run(argv) != 0)
		fail_msg("btrfs %s %s %s failed", a, b, harness_btrfs());
}

/* Quotas on at open, in the group's mode: btrfs.quota_mode alone turns
 * them on only at the first limit, btrfs.min_space at open (1 byte by
 * default: every size is above it). */
static void open_store(struct ctx *c, const char *min_space)
{
	char mode_opt[64];
	snprintf(mode_opt, sizeof(mode_opt), "btrfs.quota_mode=%s", mode);
	const char *opts[] = { mode_opt, min_space ? min_space : "btrfs.min_space=1" };
	assert_ok(btrfslayer_open(c->home, opts, 2, NULL, 0, NULL, 0, &c->h, ERR));
}

static int setup(void **state)
{
	struct ctx *c = calloc(1, sizeof(*c));
	harness_new_home(c->home, sizeof(c->home));
	open_store(c, NULL);
	*state = c;
	return 0;
}

static int teardown(void **state)
{
	struct ctx *c = *state;
	assert_int_equal(btrfslayer_close(c->h, NULL), 0);
	free(c);
	return 0;
}

/* Close the handle; teardown closes it again (NULL: a no-op) if a test fails
 * before it opens one anew. */
static void close_store(struct ctx *c)
{
	btrfslayer *h = c->h;
	c->h = NULL;
	assert_ok(btrfslayer_close(h, ERR));
}

static void create_sized(struct ctx *c, const char *id, const char *parent,
			 const char *size_opt)
{
	const char *opts[] = { size_opt };
	assert_ok(btrfslayer_create(c->h, id, parent, 0, NULL, opts, size_opt ? 1 : 0, ERR));
}

static char *layer_path(struct ctx *c, const char *id)
{
	char *path = NULL;
	assert_ok(btrfslayer_get(c->h, id, NULL, &path, ERR));
	return path;
}

static btrfslayer_usage usage(struct ctx *c, const char *id)
{
	btrfslayer_usage u;
	assert_ok(btrfslayer_get_usage(c->h, id, BTRFSLAYER_USAGE_SYNC, &u, sizeof(u), ERR));
	return u;
}


/* Within 10% or 1 MiB, whichever is larger. */
static void assert_about(uint64_t got, uint64_t want, const char *what)
{
	uint64_t slack = want / 10 > MiB ? want / 10 : MiB;
	uint64_t diff = got > want ? got - want : want - got;
	if (diff > slack)
		fail_msg("%s: %" PRIu64 " bytes, want %" PRIu64 " +- %" PRIu64, what, got,
			 want, slack);
}

/* The level-0 qgroups of the filesystem, as `btrfs qgroup show` lists them:
 * their subvolume ids, but for the empty template of c's home (it stays
 * when every layer is gone). */
struct qgroups {
	uint64_t ids[1024];
	size_t n;
};

static void list_qgroups(const struct ctx *c, struct qgroups *q)
{
	char cmd[PATH_MAX], line[512];
	uint64_t templates[4];
	int n_templates = harness_template_ids(c->home, templates, 4);
	snprintf(cmd, sizeof(cmd), "btrfs qgroup show --raw '%s' 2>&1", harness_btrfs());
	FILE *p = popen(cmd, "r");
	assert_non_null(p);
	q->n = 0;
	while (fgets(line, sizeof(line), p)) {
		if (strncmp(line, "0/", 2))
			continue;
		assert_true(q->n < sizeof(q->ids) / sizeof(q->ids[0]));
		q->ids[q->n] = strtoull(line + 2, NULL, 10);
		bool template = false;
		for (int i = 0; i < n_templates; i++)
			template |= templates[i] == q->ids[q->n];
		q->n += !template;
	}
	assert_int_equal(pclose(p), 0);
}

static bool has_qgroup(const struct qgroups *q, uint64_t id)
{
	for (size_t i = 0; i < q->n; i++)
		if (q->ids[i] == id)
			return true;
	return false;
}

/* No qgroup in `after` that was not in `before`.  Sets, not counts: a
 * qgroup in `before` may go at any moment, as the kernel (6.11 and later)
 * destroys the qgroup of a subvolume its cleaner has dropped right after
 * the drop, which `btrfs subvolume sync` does not wait for. */
static void assert_no_new_qgroup(const struct qgroups *before, const struct qgroups *after,
				 const char *what)
{
	print_message("%s: %s: level-0 qgroups before %zu, after %zu\n", mode, what,
		      before->n, after->n);
	for (size_t i = 0; i < after->n; i++)
		if (!has_qgroup(before, after->ids[i]))
			fail_msg("%s: qgroup 0/%" PRIu64 " left", what, after->ids[i]);
}

/* The max referenced and max exclusive of a layer, as `btrfs qgroup show
 * -re` prints them (0: none). */
static void qgroup_limits(uint64_t subvolume_id, uint64_t *max_rfer, uint64_t *max_excl)
{
	char cmd[PATH_MAX], line[512], want[32];
	snprintf(cmd, sizeof(cmd), "btrfs qgroup show -re --raw '%s' 2>&1", harness_btrfs());
	snprintf(want, sizeof(want), "0/%" PRIu64 " ", subvolume_id);
	FILE *p = popen(cmd, "r");
	assert_non_null(p);
	bool found = false;
	while (fgets(line, sizeof(line), p)) {
		char rfer[32], excl[32], max[32], max_e[32];
		if (strncmp(line, want, strlen(want)) ||
		    sscanf(line + strlen(want), "%31s %31s %31s %31s", rfer, excl, max,
			   max_e) != 4)
			continue;
		*max_rfer = strcmp(max, "none") ? strtoull(max, NULL, 10) : 0;
		*max_excl = strcmp(max_e, "none") ? strtoull(max_e, NULL, 10) : 0;
		found = true;
	}
	assert_int_equal(pclose(p), 0);
	if (!found)
		fail_msg("qgroup 0/%" PRIu64 " not listed", subvolume_id);
}

/* The max referenced of a layer, as `btrfs qgroup show -r` prints it. */
static uint64_t qgroup_limit(uint64_t subvolume_id)
{
	uint64_t rfer, excl;
	qgroup_limits(subvolume_id, &rfer, &excl);
	return rfer;
}

static uint64_t qgroup_exclusive_limit(uint64_t subvolume_id)
{
	uint64_t rfer, excl;
	qgroup_limits(subvolume_id, &rfer, &excl);
	return excl;
}

/* `btrfs qgroup limit -e SIZE 0/ID MOUNT`: what an administrator may do. */
static void limit_exclusive(uint64_t subvolume_id, const char *size)
{
	char qgroup[32];
	snprintf(qgroup, sizeof(qgroup), "0/%" PRIu64, subvolume_id);
	const char *argv[] = { "btrfs", "qgroup", "limit", "-e", size, qgroup,
			       harness_btrfs(), NULL };
	if (harness_run(argv) != 0)
		fail_msg("btrfs qgroup limit -e %s %s failed", size, qgroup);
}

static bool quotas_on(void)
{
	char cmd[PATH_MAX];
	snprintf(cmd, sizeof(cmd), "btrfs qgroup show '%s' >/dev/null 2>&1", harness_btrfs());
	return system(cmd) == 0;
}

/* Turn quotas on in the group's mode, as an administrator would, on no
 * layer of ours: btrfs-progs 6.2 cannot turn simple quotas on, so a handle
 * on a fresh home of the same filesystem asks for them. */
static void turn_quotas_on(void)
{
	char home[HOME_MAX], opt[64];
	btrfslayer *h = NULL;
	snprintf(opt, sizeof(opt), "btrfs.quota_mode=%s", mode);
	const char *opts[] = { opt, "btrfs.min_space=1" };
	harness_new_home(home, sizeof(home));
	assert_ok(btrfslayer_open(home, opts, 2, NULL, 0, NULL, 0, &h, ERR));
	assert_ok(btrfslayer_close(h, ERR));
	assert_true(quotas_on());
}

/* The status list's quota_mode: "off", "qgroup" or "simple". */
static void assert_status_mode(btrfslayer *h, const char *want)
{
	btrfslayer_list *list = NULL;
	const char *got = NULL;
	assert_ok(btrfslayer_status(h, &list, ERR));
	for (size_t i = 0; i < btrfslayer_list_count(list); i++)
		if (!strcmp(btrfslayer_list_key(list, i), "quota_mode"))
			got = btrfslayer_list_value(list, i);
	assert_non_null(got);
	assert_string_equal(got, want);
	btrfslayer_list_free(list);
}

static uint64_t subvolume_id(struct ctx *c, const char *id)
{
	btrfslayer_usage u;
	assert_ok(btrfslayer_get_usage(c->h, id, 0, &u, sizeof(u), ERR));
	return u.subvolume_id;
}

static bool quota_file(struct ctx *c, const char *id, char *buf, size_t len)
{
	char path[PATH_MAX];
	snprintf(path, sizeof(path), "%s/quotas/%s", c->home, id);
	FILE *f = fopen(path, "r");
	if (!f)
		return false;
	size_t n = fread(buf, 1, len - 1, f);
	buf[n] = '\0';
	fclose(f);
	return true;
}

/* Entries of dir and of its .staging directory, where the library keeps
 * its reserved names (the directory itself not counted). */
static int count_entries(const char *dir)
{
	char cmd[3 * PATH_MAX];
	snprintf(cmd, sizeof(cmd), "{ ls -A '%s' | grep -vx .staging; ls -A '%s/.staging' "
		 "2>/dev/null; } | wc -l", dir, dir);
	FILE *p = popen(cmd, "r");
	int n = -1;
	assert_non_null(p);
	assert_int_equal(fscanf(p, "%d", &n), 1);
	pclose(p);
	return n;
}

/* ---- tests ------------------------------------------------------------------- */

static void test_write_past_limit(void **state)
{
	struct ctx *c = *state;
	int error;
	create_sized(c, "small", NULL, "size=8M");
	char *dir = layer_path(c, "small");
	uint64_t written = harness_write_data(dir, "data", 32 * MiB, &error);
	assert_int_equal(error, EDQUOT);
	/* the kernel stops writes near the limit, not far below or above it */
	assert_true(written <= 8 * MiB);
	assert_true(written >= 4 * MiB);

	/* at its limit, the layer can still be read ... */
	struct stat st;
	char path[PATH_MAX];
	snprintf(path, sizeof(path), "%s/data", dir);
	assert_int_equal(stat(path, &st), 0);
	assert_int_equal((uint64_t)st.st_size, written);
	int fd = open(path, O_RDONLY);
	assert_true(fd >= 0);
	char buf[4096];
	uint64_t read_back = 0;
	ssize_t n;
	while ((n = read(fd, buf, sizeof(buf))) > 0)
		read_back += (uint64_t)n;
	close(fd);
	assert_int_equal(read_back, written);
	/* ... and removed */
	assert_ok(btrfslayer_remove(c->h, "small", ERR));
	assert_int_equal(btrfslayer_exists(c->h, "small", NULL), 0);
	assert_false(quota_file(c, "small", buf, sizeof(buf)));
	free(dir);
}

static void test_limit_survives_reopen_and_reset(void **state)
{
	struct ctx *c = *state;
	char buf[64];
	create_sized(c, "kept", NULL, "size=16M");
	assert_true(quota_file(c, "kept", buf, sizeof(buf)));
	assert_string_equal(buf, "16777216");
	btrfslayer_usage u = usage(c, "kept");
	assert_int_equal(u.limit, 16 * MiB);
	assert_int_equal(qgroup_limit(u.subvolume_id), 16 * MiB);

	/* close and open again: nothing lost, and close left quotas on */
	close_store(c);
	assert_int_equal(qgroup_limit(u.subvolume_id), 16 * MiB);
	open_store(c, NULL);
	assert_int_equal(usage(c, "kept").limit, 16 * MiB);

	/* a quota reset drops every limit; get() applies it again once the
	 * administrator turns quotas back on (get itself never does) */
	btrfs_cmd("quota", "disable");
	btrfslayer_usage none;
	expect_fail(btrfslayer_get_usage(c->h, "kept", 0, &none, sizeof(none), ERR),
		    -BTRFSLAYER_ENOQUOTA, "quotas are off");
	free(layer_path(c, "kept"));
	assert_false(quotas_on());
	if (!strcmp(mode, "qgroup"))
		btrfs_cmd("quota", "enable");	/* without limits */
	else
		turn_quotas_on();
	assert_int_equal(qgroup_limit(u.subvolume_id), 0);
	free(layer_path(c, "kept"));
	u = usage(c, "kept");
	assert_int_equal(u.limit, 16 * MiB);
	assert_int_equal(qgroup_limit(u.subvolume_id), 16 * MiB);
	assert_int_equal(u.quota_mode, !strcmp(mode, "simple") ? BTRFSLAYER_QUOTA_SIMPLE
							       : BTRFSLAYER_QUOTA_QGROUP);
	/* and it is enforced */
	int error;
	char *dir = layer_path(c, "kept");
	uint64_t written = harness_write_data(dir, "data", 64 * MiB, &error);
	assert_int_equal(error, EDQUOT);
	assert_true(written <= 16 * MiB);
	free(dir);
}

/* What a snapshot's usage means differs between the modes: see the header. */
static void test_usage_of_layer_and_snapshot(void **state)
{
	struct ctx *c = *state;
	int error;
	create_sized(c, "base", NULL, NULL);
	char *dir = layer_path(c, "base");
	assert_int_equal(harness_write_data(dir, "data", 8 * MiB, &error), 8 * MiB);
	assert_int_equal(error, 0);
	free(dir);
	btrfslayer_usage base = usage(c, "base");
	assert_about(base.referenced, 8 * MiB, "base referenced");
	assert_about(base.exclusive, 8 * MiB, "base exclusive");
	assert_int_equal(base.limit, 0);
	assert_int_equal(base.consistent, 1);

	create_sized(c, "child", "base", NULL);
	btrfslayer_usage child = usage(c, "child");
	print_message("%s: base referenced %" PRIu64 " exclusive %" PRIu64
		      "; fresh snapshot referenced %" PRIu64 " exclusive %" PRIu64 "\n",
		      mode, base.referenced, base.exclusive, child.referenced, child.exclusive);
	if (!strcmp(mode, "qgroup"))	/* everything it references, shared too */
		assert_about(child.referenced, 8 * MiB, "snapshot referenced (qgroup)");
	else				/* only what it allocated itself */
		assert_true(child.referenced < MiB);
	assert_true(child.exclusive < MiB);

	dir = layer_path(c, "child");
	assert_int_equal(harness_write_data(dir, "more", 4 * MiB, &error), 4 * MiB);
	free(dir);
	child = usage(c, "child");
	print_message("%s: snapshot after writing 4 MiB: referenced %" PRIu64
		      " exclusive %" PRIu64 "\n", mode, child.referenced, child.exclusive);
	assert_about(child.referenced, !strcmp(mode, "qgroup") ? 12 * MiB : 4 * MiB,
		     "snapshot referenced after a write");
	assert_about(child.exclusive, 4 * MiB, "snapshot exclusive after a write");
}

/* A snapshot has only the limit it is given, never its parent's. */
static void test_snapshot_limit(void **state)
{
	struct ctx *c = *state;
	create_sized(c, "parent", NULL, "size=32M");
	create_sized(c, "unlimited", "parent", NULL);
	create_sized(c, "limited", "parent", "size=24M");
	assert_ok(btrfslayer_create(c->h, "frozen", "parent", BTRFSLAYER_CREATE_READ_ONLY,
				    NULL, (const char *[]){ "size=40M" }, 1, ERR));
	assert_int_equal(usage(c, "unlimited").limit, 0);
	assert_int_equal(qgroup_limit(usage(c, "unlimited").subvolume_id), 0);
	assert_int_equal(usage(c, "limited").limit, 24 * MiB);
	assert_int_equal(usage(c, "frozen").limit, 40 * MiB);
	assert_int_equal(usage(c, "parent").limit, 32 * MiB);
}

/* With full qgroups a snapshot gets every limit of its source from the
 * kernel, the exclusive one an administrator set (btrfs qgroup limit -e)
 * included: none of them may stay.  A layer's limit is its only one. */
static void test_snapshot_drops_exclusive_limit(void **state)
{
	struct ctx *c = *state;
	int error;
	create_sized(c, "parent", NULL, NULL);
	char *dir = layer_path(c, "parent");
	assert_int_equal(harness_write_data(dir, "data", 2 * MiB, &error), 2 * MiB);
	free(dir);
	uint64_t parent = subvolume_id(c, "parent");
	limit_exclusive(parent, "8M");
	btrfslayer_usage u = usage(c, "parent");
	assert_int_equal(u.exclusive_limit, 8 * MiB);	/* reported */
	assert_int_equal(u.limit, 0);

	create_sized(c, "child", "parent", NULL);
	create_sized(c, "sized", "parent", "size=64M");
	/* the child writes past the parent's exclusive limit ... */
	dir = layer_path(c, "child");
	uint64_t written = harness_write_data(dir, "data", 16 * MiB, &error);
	free(dir);
	if (error)
		fail_msg("%s: a snapshot of a parent with an 8 MiB exclusive limit: write "
			 "failed after %" PRIu64 " bytes: %s", mode, written, strerror(error));
	assert_int_equal(written, 16 * MiB);
	/* ... as neither it nor a sized snapshot has any limit but its own */
	u = usage(c, "child");
	assert_int_equal(u.limit, 0);
	assert_int_equal(u.exclusive_limit, 0);
	assert_int_equal(qgroup_exclusive_limit(u.subvolume_id), 0);
	u = usage(c, "sized");
	assert_int_equal(u.limit, 64 * MiB);
	assert_int_equal(u.exclusive_limit, 0);
	assert_int_equal(qgroup_exclusive_limit(u.subvolume_id), 0);

	/* the limit the library sets replaces every other one at set_quota;
	 * get, a read, leaves an administrator's exclusive limit alone while
	 * the kernel still has the recorded one */
	assert_ok(btrfslayer_set_quota(c->h, "parent", 32 * MiB, ERR));
	u = usage(c, "parent");
	assert_int_equal(u.limit, 32 * MiB);
	assert_int_equal(u.exclusive_limit, 0);
	limit_exclusive(parent, "4M");
	free(layer_path(c, "parent"));
	assert_int_equal(qgroup_exclusive_limit(parent), 4 * MiB);
	assert_int_equal(qgroup_limit(parent), 32 * MiB);
	assert_ok(btrfslayer_clear_quota(c->h, "parent", ERR));
	u = usage(c, "parent");
	assert_int_equal(u.limit, 0);
	assert_int_equal(u.exclusive_limit, 0);
}

static void test_bad_sizes_make_nothing(void **state)
{
	struct ctx *c = *state;
	close_store(c);
	open_store(c, "btrfs.min_space=64M");
	static const struct {
		const char *opt;
		int code;
		const char *needle;
	} bad[] = {
		{ "size=32M", -EINVAL, "min_space" },
		{ "size=0", -EINVAL, "above 0" },
		{ "size=abc", -EINVAL, "\"abc\"" },
		{ "size=-1G", -EINVAL, "\"-1G\"" },
		{ "size=1G1", -EINVAL, "\"1G1\"" },
		{ "size=", -EINVAL, "size" },
		{ "SIZE=0k", -EINVAL, "above 0" },
		/* 2^64-1 is "no limit" to the kernel; past it is past 64 bits */
		{ "size=18446744073709551615", -ERANGE, "no limit" },
		{ "size=16383.9999999999999999P", -ERANGE, "no limit" },
		{ "size=18446744073709551616", -ERANGE, "size" },
	};
	char subvolumes[PATH_MAX], quotas[PATH_MAX];
	snprintf(subvolumes, sizeof(subvolumes), "%s/subvolumes", c->home);
	snprintf(quotas, sizeof(quotas), "%s/quotas", c->home);
	struct qgroups before, after;
	list_qgroups(c, &before);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		const char *opts[] = { bad[i].opt };
		expect_fail(btrfslayer_create(c->h, "bad", NULL, 0, NULL, opts, 1, ERR),
			    bad[i].code, bad[i].needle);
		assert_int_equal(count_entries(subvolumes), 0);
		assert_int_equal(count_entries(quotas), 0);
		list_qgroups(c, &after);
		assert_no_new_qgroup(&before, &after, bad[i].opt);
	}
	/* the key is case-insensitive: Size= is size=, not ignored */
	create_sized(c, "capital", NULL, "Size=1G");
	assert_int_equal(usage(c, "capital").limit, UINT64_C(1) << 30);
}

static void test_set_and_clear(void **state)
{
	struct ctx *c = *state;
	char buf[64];
	create_sized(c, "l", NULL, NULL);
	assert_false(quota_file(c, "l", buf, sizeof(buf)));
	assert_ok(btrfslayer_set_quota(c->h, "l", 20 * MiB, ERR));
	assert_int_equal(usage(c, "l").limit, 20 * MiB);
	assert_true(quota_file(c, "l", buf, sizeof(buf)));
	assert_string_equal(buf, "20971520");
	assert_ok(btrfslayer_set_quota(c->h, "l", 10 * MiB, ERR));
	assert_int_equal(usage(c, "l").limit, 10 * MiB);
	assert_ok(btrfslayer_clear_quota(c->h, "l", ERR));
	btrfslayer_usage u = usage(c, "l");
	assert_int_equal(u.limit, 0);
	assert_int_equal(u.recorded_limit, 0);
	assert_int_equal(qgroup_limit(u.subvolume_id), 0);
	assert_false(quota_file(c, "l", buf, sizeof(buf)));
	/* an unlimited layer writes freely */
	int error;
	char *dir = layer_path(c, "l");
	assert_int_equal(harness_write_data(dir, "data", 16 * MiB, &error), 16 * MiB);
	free(dir);

	expect_fail(btrfslayer_set_quota(c->h, "l", 0, ERR), -EINVAL, "above 0");
	/* 2^64-1 is "no limit" to the kernel: refused, and nothing changes */
	assert_ok(btrfslayer_set_quota(c->h, "l", 64 * MiB, ERR));
	expect_fail(btrfslayer_set_quota(c->h, "l", UINT64_MAX, ERR), -ERANGE, "no limit");
	u = usage(c, "l");
	assert_int_equal(u.limit, 64 * MiB);
	assert_int_equal(u.recorded_limit, 64 * MiB);
	assert_int_equal(qgroup_limit(u.subvolume_id), 64 * MiB);
	assert_true(quota_file(c, "l", buf, sizeof(buf)));
	assert_string_equal(buf, "67108864");
	assert_ok(btrfslayer_set_quota(c->h, "l", UINT64_MAX - 1, ERR));
	assert_int_equal(usage(c, "l").limit, UINT64_MAX - 1);
	assert_ok(btrfslayer_clear_quota(c->h, "l", ERR));
	expect_fail(btrfslayer_set_quota(c->h, "nope", MiB, ERR), -ENOENT,
		    "set size limit: ");
	expect_fail(btrfslayer_clear_quota(c->h, "nope", ERR), -ENOENT, c->home);
	expect_fail(btrfslayer_set_quota(c->h, "../x", MiB, ERR), -EINVAL, "layer id");
	btrfslayer_usage small;
	expect_fail(btrfslayer_get_usage(c->h, "l", 0, &small, 8, ERR), -EINVAL,
		    "out_size");
	expect_fail(btrfslayer_get_usage(c->h, "l", 0x80, &small, sizeof(small), ERR),
		    -EINVAL, "flags");
	close_store(c);
	open_store(c, "btrfs.min_space=1G");
	expect_fail(btrfslayer_set_quota(c->h, "l", 512 * MiB, ERR), -EINVAL,
		    "min_space");
	assert_int_equal(usage(c, "l").limit, 0);
}

/* A layer over its limit (given a limit below what it holds) still gets
 * its limit raised and cleared: the kernel charges the change's transaction
 * to the subvolume it is asked through, and the full layer has no room. */
static void test_limit_of_a_full_layer(void **state)
{
	struct ctx *c = *state;
	int error;
	create_sized(c, "full", NULL, NULL);
	char *dir = layer_path(c, "full");
	assert_int_equal(harness_write_data(dir, "data", 16 * MiB, &error), 16 * MiB);
	free(dir);
	assert_ok(btrfslayer_set_quota(c->h, "full", 8 * MiB, ERR));
	btrfslayer_usage u = usage(c, "full");
	assert_true(u.referenced > u.limit);
	assert_ok(btrfslayer_set_quota(c->h, "full", 32 * MiB, ERR));
	assert_int_equal(usage(c, "full").limit, 32 * MiB);
	assert_int_equal(qgroup_limit(u.subvolume_id), 32 * MiB);
	assert_ok(btrfslayer_set_quota(c->h, "full", 8 * MiB, ERR));
	assert_ok(btrfslayer_clear_quota(c->h, "full", ERR));
	u = usage(c, "full");
	assert_int_equal(u.limit, 0);
	assert_int_equal(u.recorded_limit, 0);
	assert_int_equal(qgroup_limit(u.subvolume_id), 0);
	/* and it writes again */
	dir = layer_path(c, "full");
	assert_int_equal(harness_write_data(dir, "more", 4 * MiB, &error), 4 * MiB);
	free(dir);
}

/* A caller built against a newer header passes a bigger struct: the tail it
 * knows of and we do not is zeroed. */
static void test_usage_struct_size(void **state)
{
	struct ctx *c = *state;
	create_sized(c, "l", NULL, "size=8M");
	unsigned char big[sizeof(btrfslayer_usage) + 16];
	memset(big, 0xa5, sizeof(big));
	assert_ok(btrfslayer_get_usage(c->h, "l", 0, (btrfslayer_usage *)(void *)big,
				       sizeof(big), ERR));
	for (size_t i = sizeof(btrfslayer_usage); i < sizeof(big); i++)
		assert_int_equal(big[i], 0);
	btrfslayer_usage u;
	memcpy(&u, big, sizeof(u));
	assert_int_equal(u.limit, 8 * MiB);
}

/* A caller built against the 0.2.0 header passes BTRFSLAYER_USAGE_SIZE_V1:
 * it gets those fields and not a byte more; a size between two versions
 * gets whole fields only. */
static void test_usage_struct_v1(void **state)
{
	struct ctx *c = *state;
	create_sized(c, "l", NULL, "size=8M");
	limit_exclusive(subvolume_id(c, "l"), "4M");
	btrfslayer_usage full = usage(c, "l");
	assert_int_equal(full.exclusive_limit, 4 * MiB);
	assert_int_equal(sizeof(btrfslayer_usage), BTRFSLAYER_USAGE_SIZE_V3);

	static const size_t sizes[] = { BTRFSLAYER_USAGE_SIZE_V1, BTRFSLAYER_USAGE_SIZE_V1 + 4,
					BTRFSLAYER_USAGE_SIZE_V2 - 1 };
	for (size_t s = 0; s < sizeof(sizes) / sizeof(sizes[0]); s++) {
		unsigned char buf[sizeof(btrfslayer_usage) + 16];
		memset(buf, 0xa5, sizeof(buf));
		assert_ok(btrfslayer_get_usage(c->h, "l", BTRFSLAYER_USAGE_SYNC,
					       (btrfslayer_usage *)(void *)buf, sizes[s], ERR));
		/* the V1 fields, as the full call gave them */
		assert_memory_equal(buf, &full, BTRFSLAYER_USAGE_SIZE_V1);
		for (size_t i = BTRFSLAYER_USAGE_SIZE_V1; i < sizes[s]; i++)
			assert_int_equal(buf[i], 0);	/* no part of exclusive_limit */
		for (size_t i = sizes[s]; i < sizeof(buf); i++)
			assert_int_equal(buf[i], 0xa5);	/* nothing past out_size */
	}
}

/* The recorded limit is data from disk: garbage never becomes a limit. */
static void test_garbage_quota_file(void **state)
{
	struct ctx *c = *state;
	char path[PATH_MAX];
	/* 18446744073709551615 is 2^64-1, "no limit" to the kernel */
	static const char *const garbage[] = { "abc", "0", "-5", "12 ", "99999999999999999999", "",
					       "18446744073709551615" };
	create_sized(c, "l", NULL, "size=8M");
	snprintf(path, sizeof(path), "%s/quotas/l", c->home);
	for (size_t i = 0; i < sizeof(garbage) / sizeof(garbage[0]); i++) {
		FILE *f = fopen(path, "w");
		assert_non_null(f);
		fputs(garbage[i], f);
		fclose(f);
		btrfslayer_error *err = NULL;
		char *p = NULL;
		assert_int_equal(btrfslayer_get(c->h, "l", NULL, &p, &err), 0);
		free(p);
		btrfslayer_usage u = usage(c, "l");
		assert_int_equal(u.limit, 8 * MiB);	/* untouched */
		assert_int_equal(u.recorded_limit, 0);
		/* nor does the sweep of the next open take it for a limit */
		close_store(c);
		open_store(c, NULL);
		assert_int_equal(usage(c, "l").limit, 8 * MiB);
	}
	/* a symlink planted there is not followed */
	unlink(path);
	assert_int_equal(symlink("/etc/hostname", path), 0);
	char *p = layer_path(c, "l");
	free(p);
	assert_int_equal(usage(c, "l").limit, 8 * MiB);
	assert_ok(btrfslayer_remove(c->h, "l", ERR));
	struct stat st;
	assert_int_equal(stat("/etc/hostname", &st), 0);
}

/* Write `text` over the record of `id` where it lies, as Docker's driver
 * does (os.WriteFile: truncate, write): the same inode, new contents. */
static void rewrite_record_in_place(struct ctx *c, const char *id, const char *text)
{
	char path[PATH_MAX];
	snprintf(path, sizeof(path), "%s/quotas/%s", c->home, id);
	struct stat before, after;
	assert_int_equal(stat(path, &before), 0);
	FILE *f = fopen(path, "w");
	assert_non_null(f);
	assert_true(fputs(text, f) >= 0);
	assert_int_equal(fclose(f), 0);
	assert_int_equal(stat(path, &after), 0);
	assert_int_equal(after.st_ino, before.st_ino);
}

/* get and usage remember a record they read (record_cache.c): a record
 * changed where it lies, or replaced, is read again, never answered from
 * memory; and the limit it names is the one get puts back. */
static void test_record_changed_in_place(void **state)
{
	struct ctx *c = *state;
	create_sized(c, "l", NULL, "size=8M");
	free(layer_path(c, "l"));
	assert_int_equal(usage(c, "l").recorded_limit, 8 * MiB);
	assert_int_equal(usage(c, "l").recorded_limit, 8 * MiB);	/* remembered */

	/* another length: 16 MiB */
	rewrite_record_in_place(c, "l", "16777216");
	assert_int_equal(usage(c, "l").recorded_limit, 16 * MiB);
	free(layer_path(c, "l"));	/* get puts the recorded limit back */
	assert_int_equal(qgroup_limit(subvolume_id(c, "l")), 16 * MiB);

	/* the same length: only the file's times tell (a clock tick apart) */
	nanosleep(&(struct timespec){ .tv_nsec = 20 * 1000 * 1000 }, NULL);
	rewrite_record_in_place(c, "l", "33554432");
	assert_int_equal(usage(c, "l").recorded_limit, 32 * MiB);
	free(layer_path(c, "l"));
	assert_int_equal(qgroup_limit(subvolume_id(c, "l")), 32 * MiB);

	/* garbage now: never a limit, whatever was read before */
	nanosleep(&(struct timespec){ .tv_nsec = 20 * 1000 * 1000 }, NULL);
	rewrite_record_in_place(c, "l", "3355443x");
	assert_int_equal(usage(c, "l").recorded_limit, 0);

	/* the library's own change: a new file renamed into place */
	assert_ok(btrfslayer_set_quota(c->h, "l", 24 * MiB, ERR));
	assert_int_equal(usage(c, "l").recorded_limit, 24 * MiB);
	assert_ok(btrfslayer_clear_quota(c->h, "l", ERR));
	assert_int_equal(usage(c, "l").recorded_limit, 0);

	/* a fifo put in its place is never opened, nor taken for the last
	 * record read */
	assert_ok(btrfslayer_set_quota(c->h, "l", 24 * MiB, ERR));
	assert_int_equal(usage(c, "l").recorded_limit, 24 * MiB);
	char path[PATH_MAX];
	snprintf(path, sizeof(path), "%s/quotas/l", c->home);
	assert_int_equal(unlink(path), 0);
	assert_int_equal(mkfifo(path, 0600), 0);
	assert_int_equal(usage(c, "l").recorded_limit, 0);
	free(layer_path(c, "l"));
	assert_int_equal(unlink(path), 0);
}

/* A snapshot made straight under its id (no options: one ioctl, which
 * commits) drops the record an earlier layer of the id left (a removal
 * that died on a full filesystem leaves one), as every create does. */
static void test_snapshot_drops_stale_record(void **state)
{
	struct ctx *c = *state;
	char path[PATH_MAX], buf[64];
	create_sized(c, "parent", NULL, NULL);
	snprintf(path, sizeof(path), "%s/quotas/child", c->home);
	FILE *f = fopen(path, "w");
	assert_non_null(f);
	fputs("4194304", f);
	assert_int_equal(fclose(f), 0);
	assert_ok(btrfslayer_create(c->h, "child", "parent", BTRFSLAYER_CREATE_READ_ONLY, NULL,
				    NULL, 0, ERR));
	assert_false(quota_file(c, "child", buf, sizeof(buf)));
	btrfslayer_usage u = usage(c, "child");
	assert_int_equal(u.limit, 0);
	assert_int_equal(u.recorded_limit, 0);
	assert_int_equal(qgroup_limit(u.subvolume_id), 0);
	/* an existing layer keeps its record: -EEXIST changes nothing */
	create_sized(c, "sized", NULL, "size=8M");
	expect_fail(btrfslayer_create(c->h, "sized", "parent", 0, NULL, NULL, 0, ERR), -EEXIST,
		    "sized");
	assert_true(quota_file(c, "sized", buf, sizeof(buf)));
	assert_string_equal(buf, "8388608");
	assert_int_equal(usage(c, "sized").limit, 8 * MiB);
}

/* The log callback, driven by real calls: gets of a layer whose quota file
 * is garbage log a warning each.  The main thread swaps the callback and
 * its userdata while they run and, as soon as a swap returns, poisons the
 * userdata it retired, as a caller freeing it would: no callback may see
 * poison. */
#define LOG_SWAPS 300
#define LOG_ALIVE UINT64_C(0x600dcafe600dcafe)
#define LOG_POISON UINT64_C(0xdeaddeaddeaddead)

struct log_box {
	uint64_t magic;
};

struct log_run {
	btrfslayer *h;
	atomic_bool stop;
	atomic_ulong calls, late, failed;
};

static struct log_run *log_run;

static void log_to_box(int level, const char *message, void *userdata)
{
	const struct log_box *box = userdata;
	(void)level;
	(void)message;
	atomic_fetch_add(&log_run->calls, 1);
	if (box->magic != LOG_ALIVE)
		atomic_fetch_add(&log_run->late, 1);
	sched_yield();	/* a swap now has the time to return, if it does not wait */
	if (box->magic != LOG_ALIVE)
		atomic_fetch_add(&log_run->late, 1);
}

static void *get_in_a_loop(void *arg)
{
	struct log_run *run = arg;
	while (!atomic_load(&run->stop)) {
		char *p = NULL;
		if (btrfslayer_get(run->h, "garbage", NULL, &p, NULL) < 0)
			atomic_fetch_add(&run->failed, 1);
		free(p);
	}
	return NULL;
}

static void test_log_callback_swapped_under_calls(void **state)
{
	struct ctx *c = *state;
	struct log_run run = { .h = c->h };
	struct log_box boxes[2] = { { LOG_ALIVE }, { LOG_ALIVE } };
	pthread_t threads[2];
	char path[PATH_MAX];
	create_sized(c, "garbage", NULL, NULL);
	snprintf(path, sizeof(path), "%s/quotas/garbage", c->home);
	FILE *f = fopen(path, "w");
	assert_non_null(f);
	fputs("not a size", f);
	fclose(f);

	log_run = &run;
	btrfslayer_set_log_fn(log_to_box, &boxes[0]);
	for (size_t i = 0; i < 2; i++)
		assert_int_equal(pthread_create(&threads[i], NULL, get_in_a_loop, &run), 0);
	for (unsigned i = 0; i < LOG_SWAPS; i++) {
		struct log_box *old = &boxes[i % 2], *next = &boxes[(i + 1) % 2];
		unsigned long seen = atomic_load(&run.calls);
		while (atomic_load(&run.calls) == seen)	/* swap while they log */
			sched_yield();
		next->magic = LOG_ALIVE;
		btrfslayer_set_log_fn(i % 3 ? log_to_box : NULL, i % 3 ? next : NULL);
		btrfslayer_set_log_fn(log_to_box, next);
		old->magic = LOG_POISON;
	}
	btrfslayer_set_log_fn(NULL, NULL);
	atomic_store(&run.stop, true);
	for (size_t i = 0; i < 2; i++)
		assert_int_equal(pthread_join(threads[i], NULL), 0);
	log_run = NULL;
	print_message("%s: %lu warnings logged by gets during %d swaps of the callback, "
		      "%lu after their swap returned\n", mode, atomic_load(&run.calls), LOG_SWAPS,
		      atomic_load(&run.late));
	assert_int_equal(atomic_load(&run.failed), 0);
	assert_int_equal(atomic_load(&run.late), 0);
}

/* Until the kernel's cleaner has dropped every deleted subvolume and what
 * it freed is accounted: a filesystem sync wakes the cleaner rather than
 * waiting for the next periodic commit, `subvolume sync` waits until the
 * root items are gone, and the last sync commits the transaction that
 * accounts the drop's last extents (simple quotas refuse to destroy a
 * qgroup that still shows usage).  What it does not wait for is the
 * kernel's own destruction of the dropped subvolume's qgroup (6.11 and
 * later), which follows the drop: a qgroup listed before may go at any
 * moment after, which is why the tests compare sets, not counts. */
static void wait_for_cleaner(void)
{
	btrfs_cmd("filesystem", "sync");
	btrfs_cmd("subvolume", "sync");
	btrfs_cmd("filesystem", "sync");
}

/* Removing layers leaves no qgroup behind: the kernel drops a deleted
 * subvolume's qgroup once its cleaner is done, and the library destroys the
 * ones it keeps, at the latest at close. */
static void test_no_stale_qgroups(void **state)
{
	struct ctx *c = *state;
	char id[32];
	struct qgroups before, after;
	uint64_t made[CYCLES + 1];
	size_t n_made = 0;
	wait_for_cleaner();
	list_qgroups(c, &before);
	create_sized(c, "image", NULL, "size=64M");
	made[n_made++] = subvolume_id(c, "image");
	for (int i = 0; i < CYCLES; i++) {
		snprintf(id, sizeof(id), "cycle-%d", i);
		/* empty or snapshot, limited or not */
		create_sized(c, id, i % 2 ? "image" : NULL, i % 3 ? "size=16M" : NULL);
		made[n_made++] = subvolume_id(c, id);
		assert_ok(btrfslayer_remove(c->h, id, ERR));
	}
	assert_ok(btrfslayer_remove(c->h, "image", ERR));
	wait_for_cleaner();
	close_store(c);		/* destroys what the kernel still holds */
	list_qgroups(c, &after);
	open_store(c, NULL);
	assert_no_new_qgroup(&before, &after, "100 create/remove cycles");
	for (size_t i = 0; i < n_made; i++)
		assert_false(has_qgroup(&after, made[i]));
}

/* Layer "parent" with 4M of data and "child", a snapshot that shares it;
 * *before gets the level-0 qgroups there were before (the cleaner done). */
static void make_shared_parent(struct ctx *c, struct qgroups *before)
{
	int error;
	wait_for_cleaner();
	list_qgroups(c, before);
	create_sized(c, "parent", NULL, NULL);
	char *dir = layer_path(c, "parent");
	assert_int_equal(harness_write_data(dir, "data", 4 * MiB, &error), 4 * MiB);
	free(dir);
	create_sized(c, "child", "parent", "size=16M");
}

/* The parent goes first while its snapshot still shares its data.  With
 * simple quotas the kernel keeps the parent's qgroup then (it still owns
 * that data) and never drops it later by itself: the library must. */
static void test_parent_removed_before_child(void **state)
{
	struct ctx *c = *state;
	struct qgroups before, after;
	make_shared_parent(c, &before);
	assert_ok(btrfslayer_remove(c->h, "parent", ERR));
	wait_for_cleaner();
	assert_ok(btrfslayer_remove(c->h, "child", ERR));
	wait_for_cleaner();
	close_store(c);
	list_qgroups(c, &after);
	open_store(c, NULL);
	assert_no_new_qgroup(&before, &after, "a parent removed before its child");
}

/* The same, but the handle is closed before the kernel's cleaner is done:
 * the qgroup the kernel keeps is recorded on disk (a marker), and
 * the next open destroys it. */
static void test_stale_qgroup_outlives_handle(void **state)
{
	struct ctx *c = *state;
	struct qgroups before, after;
	make_shared_parent(c, &before);
	assert_ok(btrfslayer_remove(c->h, "parent", ERR));
	assert_ok(btrfslayer_remove(c->h, "child", ERR));
	close_store(c);
	wait_for_cleaner();
	open_store(c, NULL);
	btrfslayer_list *status = NULL;
	assert_ok(btrfslayer_status(c->h, &status, ERR));
	for (size_t i = 0; i < btrfslayer_list_count(status); i++)
		if (!strcmp(btrfslayer_list_key(status, i), "sweep_qgroups"))
			print_message("%s: the sweep at open destroyed %s qgroups\n", mode,
				      btrfslayer_list_value(status, i));
	btrfslayer_list_free(status);
	list_qgroups(c, &after);
	assert_no_new_qgroup(&before, &after, "a handle closed before the cleaner");
	char marker[PATH_MAX];
	snprintf(marker, sizeof(marker), "%s/quotas", c->home);
	DIR *d = opendir(marker);
	assert_non_null(d);
	for (struct dirent *e; (e = readdir(d));)
		if (!strncmp(e->d_name, ".qgroup-", 8))
			fail_msg("marker %s/%s left", marker, e->d_name);
	closedir(d);
	uint64_t marked[8];
	int n_marked = harness_markers(c->home, marked, 8);
	if (n_marked)
		fail_msg("%d markers left, the first of qgroup 0/%" PRIu64, n_marked, marked[0]);
}

/* btrfs.quota_mode never switches a filesystem's mode: that would drop every
 * limit on it. */
static void test_mode_conflict(void **state)
{
	struct ctx *c = *state;
	char other[64], home[HOME_MAX];
	btrfslayer *h = NULL;
	create_sized(c, "l", NULL, "size=8M");
	snprintf(other, sizeof(other), "btrfs.quota_mode=%s",
		 !strcmp(mode, "simple") ? "qgroup" : "simple");
	const char *opts[] = { other };
	harness_new_home(home, sizeof(home));
	expect_fail(btrfslayer_open(home, opts, 1, NULL, 0, NULL, 0, &h, ERR), -EBUSY,
		    "already on");
	assert_null(h);
	assert_int_equal(usage(c, "l").limit, 8 * MiB);
	assert_int_equal(usage(c, "l").quota_mode, !strcmp(mode, "simple")
						     ? BTRFSLAYER_QUOTA_SIMPLE
						     : BTRFSLAYER_QUOTA_QGROUP);
}

/* Switching modes is the administrator's; a handle opened before keeps
 * working, and get() applies recorded limits in whatever mode is on. */
static void test_mode_switched_under_handle(void **state)
{
	struct ctx *c = *state;
	const char *other = !strcmp(mode, "simple") ? "qgroup" : "simple";
	create_sized(c, "l", NULL, "size=8M");
	btrfs_cmd("quota", "disable");
	if (!strcmp(other, "qgroup")) {
		btrfs_cmd("quota", "enable");
	} else {	/* btrfs-progs 6.2 cannot: a handle asking for it does */
		char home[HOME_MAX], opt[] = "btrfs.quota_mode=simple";
		const char *opts[] = { opt, "btrfs.min_space=1" };
		btrfslayer *h;
		harness_new_home(home, sizeof(home));
		assert_ok(btrfslayer_open(home, opts, 2, NULL, 0, NULL, 0, &h, ERR));
		assert_ok(btrfslayer_close(h, ERR));
	}
	free(layer_path(c, "l"));
	btrfslayer_usage u = usage(c, "l");
	assert_int_equal(u.limit, 8 * MiB);
	assert_int_equal(u.quota_mode, !strcmp(other, "simple") ? BTRFSLAYER_QUOTA_SIMPLE
								: BTRFSLAYER_QUOTA_QGROUP);
	/* back to the group's mode for what follows */
	btrfs_cmd("quota", "disable");
	close_store(c);
	open_store(c, NULL);
}

/* get is a read: with quotas off it leaves them off, whatever the mode they
 * were in and whatever the handle would turn on, and applies nothing. */
static void test_get_never_turns_quotas_on(void **state)
{
	struct ctx *c = *state;
	btrfslayer *plain = NULL;
	create_sized(c, "l", NULL, "size=8M");
	uint64_t id = subvolume_id(c, "l");
	btrfs_cmd("quota", "disable");
	assert_false(quotas_on());

	/* the handle that asked for this mode at open, and one that asked
	 * for none (it would pick simple quotas where the kernel has them) */
	free(layer_path(c, "l"));
	assert_false(quotas_on());
	assert_status_mode(c->h, "off");
	assert_ok(btrfslayer_open(c->home, NULL, 0, NULL, 0, NULL, 0, &plain, ERR));
	char *p = NULL;
	assert_ok(btrfslayer_get(plain, "l", NULL, &p, ERR));
	free(p);
	assert_false(quotas_on());
	assert_status_mode(plain, "off");
	btrfslayer_usage u;
	expect_fail(btrfslayer_get_usage(plain, "l", 0, &u, sizeof(u), ERR),
		    -BTRFSLAYER_ENOQUOTA, "quotas are off");
	assert_ok(btrfslayer_close(plain, ERR));

	/* quotas back on, by the administrator: get applies the record */
	turn_quotas_on();
	free(layer_path(c, "l"));
	assert_int_equal(qgroup_limit(id), 8 * MiB);
	assert_status_mode(c->h, mode);
}

static void test_status_reports_quotas(void **state)
{
	struct ctx *c = *state;
	btrfslayer_list *list;
	const char *got_mode = NULL, *consistent = NULL;
	assert_ok(btrfslayer_status(c->h, &list, ERR));
	for (size_t i = 0; i < btrfslayer_list_count(list); i++) {
		if (!strcmp(btrfslayer_list_key(list, i), "quota_mode"))
			got_mode = btrfslayer_list_value(list, i);
		if (!strcmp(btrfslayer_list_key(list, i), "quota_consistent"))
			consistent = btrfslayer_list_value(list, i);
	}
	assert_non_null(got_mode);
	assert_string_equal(got_mode, mode);
	assert_non_null(consistent);
	assert_true(!strcmp(consistent, "yes") || !strcmp(consistent, "no"));
	btrfslayer_list_free(list);
}

/* ---- groups: one per mode, each from quotas off ------------------------------- */

static int start_mode(const char *m)
{
	mode = m;
	if (quotas_on()) {
		const char *argv[] = { "btrfs", "quota", "disable", harness_btrfs(), NULL };
		if (harness_run(argv) != 0)
			return -1;
	}
	return 0;
}

static int start_qgroup(void **state)
{
	(void)state;
	return start_mode("qgroup");
}

static int start_simple(void **state)
{
	(void)state;
	return start_mode("simple");
}

/* Without simple quotas in the kernel, asking for them is a clear error. */
static void test_simple_unsupported(void **state)
{
	(void)state;
	char home[HOME_MAX];
	btrfslayer *h = NULL;
	const char *opts[] = { "btrfs.quota_mode=simple" };
	harness_new_home(home, sizeof(home));
	expect_fail(btrfslayer_open(home, opts, 1, NULL, 0, NULL, 0, &h, ERR),
		    -EOPNOTSUPP, "Linux 6.7");
	assert_false(quotas_on());
}

int main(void)
{
	harness_start();
#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)
	const struct CMUnitTest tests[] = {
		T(test_write_past_limit),
		T(test_limit_survives_reopen_and_reset),
		T(test_usage_of_layer_and_snapshot),
		T(test_snapshot_limit),
		T(test_snapshot_drops_exclusive_limit),
		T(test_bad_sizes_make_nothing),
		T(test_set_and_clear),
		T(test_limit_of_a_full_layer),
		T(test_usage_struct_size),
		T(test_usage_struct_v1),
		T(test_garbage_quota_file),
		T(test_record_changed_in_place),
		T(test_snapshot_drops_stale_record),
		T(test_log_callback_swapped_under_calls),
		T(test_no_stale_qgroups),
		T(test_parent_removed_before_child),
		T(test_stale_qgroup_outlives_handle),
		T(test_mode_conflict),
		T(test_status_reports_quotas),
		T(test_mode_switched_under_handle),
		T(test_get_never_turns_quotas_on),
	};
	int failed = cmocka_run_group_tests_name("integration.quota.qgroup", tests,
						 start_qgroup, NULL);
	if (access("/sys/fs/btrfs/features/simple_quota", F_OK) == 0) {
		failed += cmocka_run_group_tests_name("integration.quota.simple", tests,
						      start_simple, NULL);
	} else {
		const struct CMUnitTest unsupported[] = {
			cmocka_unit_test(test_simple_unsupported),
		};
		failed += cmocka_run_group_tests_name("integration.quota.simple-unsupported",
						      unsupported, start_simple, NULL);
	}
	return failed ? 1 : 0;
}
