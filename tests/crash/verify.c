/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* After each kill: reopen the home (the recovery sweep runs), settle what the
 * call in flight did, and check every invariant of the crash contract against
 * the model and against the filesystem itself. */
#define _GNU_SOURCE
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "crash.h"
#include "../integration/harness.h"

#define QGROUPS_MAX 4096
#define FS_TREE 5	/* the top subvolume: its qgroup 0/5 always stays */

/* What the kills cut on each layer since the last check, for messages. */
static char cut_note[POOL][200];

int status_sweep(btrfslayer *h, uint32_t out[SWEEP_KEYS], const char **missing)
{
	memset(out, 0, SWEEP_KEYS * sizeof(*out));
	btrfslayer_list *list;
	int r = btrfslayer_status(h, &list, NULL);
	if (r < 0)
		return r;
	for (int k = 0; r == 0 && k < SWEEP_KEYS; k++) {
		const char *value = NULL;
		for (size_t i = 0; i < btrfslayer_list_count(list); i++)
			if (!strcmp(btrfslayer_list_key(list, i), sweep_names[k]))
				value = btrfslayer_list_value(list, i);
		char *end = NULL;
		unsigned long v = value ? strtoul(value, &end, 10) : 0;
		if (!value && k == SWEEP_LIMITS)
			continue;	/* the contract does not list it */
		if (!value || !*value || *end || v > UINT32_MAX) {
			*missing = sweep_names[k];
			r = value ? -EINVAL : -ENOENT;
		}
		out[k] = (uint32_t)v;
	}
	btrfslayer_list_free(list);
	return r;
}

static btrfslayer *reopen(struct ctx *c, const char *why)
{
	btrfslayer *h = NULL;
	btrfslayer_error *err = NULL;
	int r = btrfslayer_open(c->home, c->opts, c->n_opts, NULL, 0, NULL, 0, &h, &err);
	check(c, r == 0, "%s: btrfslayer_open = %d: %s", why, r,
	      err ? btrfslayer_error_message(err) : "no message");
	btrfslayer_error_free(err);
	return r == 0 ? h : NULL;
}

static void close_checked(struct ctx *c, btrfslayer *h, const char *why)
{
	btrfslayer_error *err = NULL;
	int r = btrfslayer_close(h, &err);
	check(c, r == 0, "%s: btrfslayer_close = %d: %s", why, r,
	      err ? btrfslayer_error_message(err) : "no message");
	btrfslayer_error_free(err);
}

static void collect_sweep(struct ctx *c, btrfslayer *h, unsigned long totals[SWEEP_KEYS])
{
	uint32_t s[SWEEP_KEYS];
	const char *missing = "?";
	int r = status_sweep(h, s, &missing);
	if (!check(c, r == 0, "status() after open: key %s %s (contract: status reports "
		   "the open's sweep under sweep_tombstones, sweep_temporaries, "
		   "sweep_quota_files, sweep_qgroups, sweep_left)", missing,
		   r == -ENOENT ? "is missing" : r == -EINVAL ? "is not a decimal count" :
		   btrfslayer_strerror(r)))
		return;
	for (int k = 0; k < SWEEP_KEYS; k++)
		totals[k] += s[k];
}

static bool quota_file(struct ctx *c, const char *id, uint64_t *size)
{
	bool present;
	int r = read_quota_file(c->home, id, &present, size);
	check(c, r == 0, "quotas/%s: unreadable or not a decimal byte count", id);
	return present;
}

/* What the call in flight at the kill did: the layer is whole in its old or
 * its new state, and the model takes whichever it is. */
static void settle(struct ctx *c, struct model *m, const struct inflight *in, btrfslayer *h)
{
	const struct rec *b = &in->begin;
	struct layer *l = &m->l[b->id];
	char id[ID_LEN], what[128];
	uint64_t size;
	id_name(b->id, id);
	describe(b, what, sizeof(what));
	snprintf(cut_note[b->id], sizeof(cut_note[b->id]),
		 " [a kill cut: %s; limit before it: %" PRIu64 "]", what, in->before.size);
	int e = btrfslayer_exists(h, id, NULL);
	check(c, e == 0 || e == 1, "exists(%s) = %d", id, e);
	switch (b->op) {
	case OP_CREATE:
	case OP_SNAPSHOT:
		if (e == 1) {
			*l = (struct layer){ .exists = true, .ro = b->ro, .size = b->size };
			c->st.created++;
		} else {
			c->st.not_created++;
		}
		break;
	case OP_REMOVE:
		if (e == 0) {
			*l = (struct layer){ 0 };
			c->st.removed++;
		} else {
			c->st.not_removed++;
		}
		break;
	case OP_SET_QUOTA:
	case OP_CLEAR_QUOTA: {
		bool present = quota_file(c, id, &size);
		uint64_t now = present ? size : 0;
		uint64_t want = b->op == OP_SET_QUOTA ? b->size : 0;
		check(c, now == want || now == in->before.size,
		      "layer %s: %s in flight: quota file says %" PRIu64 ", neither the old "
		      "limit %" PRIu64 " nor the new %" PRIu64, id, op_names[b->op], now,
		      in->before.size, want);
		if (now == want) {
			l->size = want;
			c->st.quota_new++;
		} else {
			c->st.quota_old++;
		}
		break;
	}
	default:
		break;
	}
	l->pending = false;
}

static int pool_index(const char *name)
{
	char id[ID_LEN];
	for (unsigned i = 0; i < POOL; i++) {
		id_name(i, id);
		if (!strcmp(id, name))
			return (int)i;
	}
	return -1;
}

static bool reserved(const char *name)
{
	return !strncmp(name, ".tmp-", 5) || !strncmp(name, ".tomb-", 6);
}

/* A marker quotas/.qgroup-N: N, or 0 when the name is not one. */
static uint64_t marker_id(const char *name)
{
	if (strncmp(name, ".qgroup-", 8) || !name[8])
		return 0;
	char *end;
	uint64_t v = strtoull(name + 8, &end, 10);
	return *end ? 0 : v;
}

/* subvolumes/ holds only layers and a whole empty template; quotas/ only
 * files of layers (with a limit) and markers; the ids of every marker (files
 * and attributes) go to `markers`. */
static void check_dirs(struct ctx *c, const struct model *m, uint64_t *markers,
		       size_t *n_markers)
{
	char path[PATH_MAX];
	snprintf(path, sizeof(path), "%s/subvolumes", c->home);
	char **names = list_dir(path);
	check(c, names, "cannot list %s", path);
	for (size_t i = 0; names && names[i]; i++) {
		int k = pool_index(names[i]);
		if (harness_is_template(names[i])) {
			/* the library's: it appears whole or not at all */
			char template[PATH_MAX + 256];
			snprintf(template, sizeof(template), "%s/%s", path, names[i]);
			const char *flaw = harness_template_flaw(template);
			check(c, !flaw, "empty template subvolumes/%s: %s", names[i], flaw);
			continue;
		}
		check(c, !reserved(names[i]), "reserved name left after open: subvolumes/%s",
		      names[i]);
		check(c, reserved(names[i]) || (k >= 0 && m->l[k].exists),
		      "subvolumes/%s: %s", names[i], k >= 0 ?
		      "present, but the model says this layer does not exist" : "unexpected entry");
	}
	free_names(names);

	snprintf(path, sizeof(path), "%s/quotas", c->home);
	names = list_dir(path);
	check(c, names, "cannot list %s", path);
	*n_markers = 0;
	for (size_t i = 0; names && names[i]; i++) {
		int k = pool_index(names[i]);
		uint64_t marker = marker_id(names[i]);
		if (marker) {
			if (*n_markers < QGROUPS_MAX)
				markers[(*n_markers)++] = marker;
			continue;
		}
		check(c, !reserved(names[i]), "reserved name left after open: quotas/%s",
		      names[i]);
		check(c, reserved(names[i]) || (k >= 0 && m->l[k].exists),
		      "quotas/%s: %s", names[i], k >= 0 ?
		      "quota file of no layer (the layer does not exist)" :
		      "unexpected entry (neither <id> nor .qgroup-N)");
	}
	free_names(names);
	/* and the markers kept as attributes of subvolumes/ */
	*n_markers += (size_t)harness_markers(c->home, markers + *n_markers,
					      (int)(QGROUPS_MAX - *n_markers));
}

static void check_layer_list(struct ctx *c, const struct model *m, btrfslayer *h)
{
	btrfslayer_list *list = NULL;
	btrfslayer_error *err = NULL;
	int r = btrfslayer_layers(h, &list, &err);
	check(c, r == 0, "btrfslayer_layers = %d: %s", r,
	      err ? btrfslayer_error_message(err) : "no message");
	btrfslayer_error_free(err);
	if (r < 0)
		return;
	bool listed[POOL] = { false };
	for (size_t i = 0; i < btrfslayer_list_count(list); i++) {
		const char *key = btrfslayer_list_key(list, i);
		int k = pool_index(key);
		check(c, k >= 0 && m->l[k].exists,
		      "layers() lists %s, which the model says does not exist", key);
		if (k >= 0)
			listed[k] = true;
	}
	for (unsigned i = 0; i < POOL; i++) {
		char id[ID_LEN];
		id_name(i, id);
		check(c, !m->l[i].exists || listed[i], "layers() leaves out %s, which exists", id);
	}
	btrfslayer_list_free(list);
}

/* One layer whole: exists as the model says, its quota file, the kernel's
 * limit and the recorded one agree with the model, read-only as created. */
static void check_layer(struct ctx *c, const struct model *m, btrfslayer *h, unsigned i)
{
	const struct layer *l = &m->l[i];
	char id[ID_LEN], path[PATH_MAX];
	id_name(i, id);
	int e = btrfslayer_exists(h, id, NULL);
	const char *note = cut_note[i];
	check(c, e == (int)l->exists, "exists(%s) = %d, the model says %d%s", id, e, l->exists,
	      note);
	if (!l->exists)
		return;

	uint64_t file_size;
	bool present = quota_file(c, id, &file_size);
	check(c, present == (l->size != 0), "layer %s: quota file %s, but its limit is %" PRIu64
	      "%s", id, present ? "present" : "missing", l->size, note);
	check(c, !present || file_size == l->size,
	      "layer %s: quota file says %" PRIu64 ", the last limit set was %" PRIu64 "%s", id,
	      file_size, l->size, note);

	btrfslayer_usage u;
	btrfslayer_error *err = NULL;
	int r = btrfslayer_get_usage(h, id, 0, &u, sizeof(u), &err);
	check(c, r == 0, "get_usage(%s) = %d: %s", id, r,
	      err ? btrfslayer_error_message(err) : "no message");
	btrfslayer_error_free(err);
	if (r == 0) {
		check(c, u.limit == u.recorded_limit,
		      "layer %s: get_usage limit %" PRIu64 " != recorded_limit %" PRIu64
		      " (kernel and quota file disagree after open)%s", id, u.limit,
		      u.recorded_limit, note);
		check(c, u.recorded_limit == l->size,
		      "layer %s: get_usage recorded_limit %" PRIu64 ", the model says %" PRIu64
		      "%s", id, u.recorded_limit, l->size, note);
		check(c, u.limit == l->size, "layer %s: kernel limit %" PRIu64
		      ", the model says %" PRIu64 "%s", id, u.limit, l->size, note);
		uint32_t want = strcmp(c->mode, "simple") ? BTRFSLAYER_QUOTA_QGROUP
							   : BTRFSLAYER_QUOTA_SIMPLE;
		check(c, u.quota_mode == want, "layer %s: get_usage quota_mode %u, want %u", id,
		      u.quota_mode, want);
	}
	snprintf(path, sizeof(path), "%s/subvolumes/%s", c->home, id);
	int ro = subvolume_read_only(path);
	check(c, ro == (int)l->ro, "layer %s: read-only flag %d, created %s%s", id, ro,
	      l->ro ? "READ_ONLY" : "writable", note);
}

static bool contains(const uint64_t *ids, size_t n, uint64_t id)
{
	for (size_t i = 0; i < n; i++)
		if (ids[i] == id)
			return true;
	return false;
}

/* Every subvolume of the filesystem is a layer of this home or nested in
 * one; every layer is a subvolume.  Their ids go to `live`. */
static void check_subvolumes(struct ctx *c, const struct model *m, uint64_t *live,
			     size_t *n_live)
{
	struct subvol *s;
	const char *rel = c->home + strlen(c->mnt) + 1;
	char prefix[PATH_MAX];
	snprintf(prefix, sizeof(prefix), "%s/subvolumes/", rel);
	size_t plen = strlen(prefix);
	bool seen[POOL] = { false };
	int n = list_subvolumes(c->mnt, &s);
	*n_live = 0;
	check(c, n >= 0, "cannot list the subvolumes of %s", c->mnt);
	for (int i = 0; i < n; i++) {
		char name[256] = "";
		bool nested = false;
		if (!strncmp(s[i].path, prefix, plen)) {
			size_t len = strcspn(s[i].path + plen, "/");
			snprintf(name, sizeof(name), "%.*s", (int)len, s[i].path + plen);
			nested = s[i].path[plen + len] == '/';
		}
		int k = pool_index(name);
		/* a home's empty template (this home's or another's) is the
		 * library's; check_dirs() looks at this one's */
		check(c, (k >= 0 && m->l[k].exists) || harness_is_template(s[i].path),
		      "orphan subvolume %" PRIu64 " at %s: not a layer of %s nor inside one",
		      s[i].id, s[i].path, c->home);
		if (k >= 0 && !nested)
			seen[k] = true;
		if (*n_live < QGROUPS_MAX)
			live[(*n_live)++] = s[i].id;
	}
	free_subvols(s, n > 0 ? n : 0);
	for (unsigned i = 0; i < POOL; i++) {
		char id[ID_LEN];
		id_name(i, id);
		check(c, !m->l[i].exists || seen[i], "layer %s is not a subvolume", id);
	}
}

/* Every level-0 qgroup but 0/5 is a live subvolume's or has a marker. */
static void check_qgroups(struct ctx *c, const uint64_t *live, size_t n_live,
			  const uint64_t *markers, size_t n_markers)
{
	static uint64_t q[QGROUPS_MAX];
	int n = list_qgroups(c->mnt, q, QGROUPS_MAX);
	check(c, n > 0, "cannot read the quota tree of %s (%d): quotas off?", c->mnt, n);
	for (int i = 0; i < n; i++) {
		if (q[i] == FS_TREE || contains(live, n_live, q[i]))
			continue;
		/* Linux 6.11 and later, with full qgroups: the kernel's own
		 * to destroy (quota.c leaves no marker), which it must */
		if (!strcmp(c->mode, "qgroup") && harness_kernel_drops_qgroups() &&
		    !contains(markers, n_markers, q[i])) {
			check(c, harness_qgroup_left_to_kernel(c->mnt, q[i]),
			      "qgroup 0/%" PRIu64 " of a deleted subvolume: the kernel has not "
			      "destroyed it a minute on", q[i]);
			continue;
		}
		check(c, contains(markers, n_markers, q[i]),
		      "qgroup 0/%" PRIu64 " belongs to no subvolume (%s) and has no marker",
		      q[i], root_item_exists(c->mnt, q[i]) == 1 ? "deleted, cleaner not done"
								: "subvolume gone");
	}
}

bool verify_after_kill(struct ctx *c, struct model *m, struct pending *p)
{
	static uint64_t live[QGROUPS_MAX], markers[QGROUPS_MAX];
	size_t n_live, n_markers;
	round_failures = 0;
	c->st.rounds++;
	memset(cut_note, 0, sizeof(cut_note));
	btrfslayer *h = reopen(c, "reopen after the kill");
	if (!h)
		return false;
	collect_sweep(c, h, c->st.sweep);
	for (unsigned i = 0; i < p->n; i++)
		settle(c, m, &p->calls[i], h);
	p->n = 0;
	check_dirs(c, m, markers, &n_markers);
	check_layer_list(c, m, h);
	for (unsigned i = 0; i < POOL; i++)
		check_layer(c, m, h, i);
	check_subvolumes(c, m, live, &n_live);
	check_qgroups(c, live, n_live, markers, n_markers);
	close_checked(c, h, "close after the checks");
	return round_failures == 0;
}

static void run_checked(struct ctx *c, const char *a, const char *b)
{
	const char *const argv[] = { "btrfs", a, b, c->mnt, NULL };
	int r = harness_run(argv);
	check(c, r == 0, "btrfs %s %s %s: exit status %d", a, b, c->mnt, r);
}

bool verify_end_of_mode(struct ctx *c, struct model *m)
{
	static uint64_t q[QGROUPS_MAX];
	char path[PATH_MAX];
	round_failures = 0;
	c->st.rounds++;
	btrfslayer *h = reopen(c, "end of mode: open");
	if (!h)
		return false;
	collect_sweep(c, h, c->st.sweep);
	for (unsigned i = 0; i < POOL; i++) {
		char id[ID_LEN];
		btrfslayer_error *err = NULL;
		id_name(i, id);
		if (!m->l[i].exists)
			continue;
		int r = btrfslayer_remove(h, id, &err);
		check(c, r == 0, "end of mode: remove(%s) = %d: %s", id, r,
		      err ? btrfslayer_error_message(err) : "no message");
		btrfslayer_error_free(err);
		m->l[i] = (struct layer){ 0 };
	}
	close_checked(c, h, "end of mode: close after removing every layer");
	run_checked(c, "filesystem", "sync");
	run_checked(c, "subvolume", "sync");
	if (!(h = reopen(c, "end of mode: open after the syncs")))
		return false;
	collect_sweep(c, h, c->st.final_sweep);
	close_checked(c, h, "end of mode: close");

	const char *dirs[] = { "subvolumes", "quotas" };
	for (int d = 0; d < 2; d++) {
		snprintf(path, sizeof(path), "%s/%s", c->home, dirs[d]);
		char **names = list_dir(path);
		check(c, names, "cannot list %s", path);
		for (size_t i = 0; names && names[i]; i++)
			/* but the empty template, which stays with no layer */
			check(c, d == 0 && harness_is_template(names[i]),
			      "end of mode: %s/%s left (%s)", dirs[d], names[i],
			      marker_id(names[i]) ? "a qgroup marker" :
			      reserved(names[i]) ? "a reserved name" : "a layer's entry");
		free_names(names);
	}
	uint64_t marked[8];
	int n_marked = harness_markers(c->home, marked, 8);
	check(c, n_marked == 0, "end of mode: %d qgroup marker(s) left, the first of 0/%" PRIu64,
	      n_marked, n_marked ? marked[0] : 0);
	struct subvol *s;
	int n = list_subvolumes(c->mnt, &s), left = 0;
	const char *first = "";
	for (int i = 0; i < n; i++)
		if (!harness_is_template(s[i].path) && !left++)
			first = s[i].path;
	check(c, left == 0, "end of mode: %d subvolume(s) left on the filesystem%s%s", left,
	      left > 0 ? ", the first: " : "", first);
	free_subvols(s, n > 0 ? n : 0);
	uint64_t templates[4];
	int n_templates = harness_template_ids(c->home, templates, 4);
	n = list_qgroups(c->mnt, q, QGROUPS_MAX);
	check(c, n >= 1, "end of mode: cannot read the quota tree (%d)", n);
	for (int i = 0; i < n; i++) {
		bool template = false;
		for (int t = 0; t < n_templates; t++)
			template |= q[i] == templates[t];
		check(c, q[i] == FS_TREE || template || (!strcmp(c->mode, "qgroup") &&
					     harness_kernel_drops_qgroups() &&
					     harness_qgroup_left_to_kernel(c->mnt, q[i])),
		      "end of mode: level-0 qgroup 0/%" PRIu64 " left (%s)", q[i],
		      root_item_exists(c->mnt, q[i]) == 1 ? "its subvolume still has a root item"
							  : "its subvolume is gone");
	}
	return round_failures == 0;
}

/* Keep-going mode only: after a failed round, the model is what is on disk,
 * and a kernel limit that disagrees with the quota file is set again from
 * the file, so that one failure is reported once rather than every round. */
void resync_model(struct ctx *c, struct model *m)
{
	btrfslayer *h = NULL;
	if (btrfslayer_open(c->home, c->opts, c->n_opts, NULL, 0, NULL, 0, &h, NULL) < 0)
		die("resync after a failed round: cannot open %s", c->home);
	for (unsigned i = 0; i < POOL; i++) {
		char id[ID_LEN], path[PATH_MAX];
		uint64_t size;
		bool present;
		btrfslayer_usage u;
		id_name(i, id);
		snprintf(path, sizeof(path), "%s/subvolumes/%s", c->home, id);
		struct layer *l = &m->l[i];
		l->exists = btrfslayer_exists(h, id, NULL) == 1;
		l->pending = false;
		read_quota_file(c->home, id, &present, &size);
		l->size = l->exists && present ? size : 0;
		l->ro = l->exists && subvolume_read_only(path) == 1;
		if (l->exists && btrfslayer_get_usage(h, id, 0, &u, sizeof(u), NULL) == 0 &&
		    u.limit != l->size && (l->size ? btrfslayer_set_quota(h, id, l->size, NULL)
						  : btrfslayer_clear_quota(h, id, NULL)) < 0)
			die("resync after a failed round: cannot set the limit of %s again", id);
	}
	btrfslayer_close(h, NULL);
}
