/* SPDX-License-Identifier: LGPL-2.1-or-later */
#define _GNU_SOURCE
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "cuts.h"
#include "log.h"
#include "util.h"

const char *const pc_cut_kind_names[PC_CUT_KINDS] = {
	[PC_CUT_END] = "end of log",
	[PC_CUT_RETURNED] = "a call returned",
	[PC_CUT_FLUSH] = "after a flush",
	[PC_CUT_INSIDE] = "inside a call",
	[PC_CUT_ANYWHERE] = "anywhere",
};

struct pool {
	uint64_t *pos;
	size_t n;
};

static void pool_add(struct pool *p, uint64_t pos, size_t cap)
{
	if (p->n < cap)
		p->pos[p->n++] = pos;
}

static void shuffle(struct pool *p, uint64_t *rng)
{
	for (size_t i = p->n; i > 1; i--) {
		size_t j = (size_t)(pc_rng(rng) % i);
		uint64_t t = p->pos[i - 1];
		p->pos[i - 1] = p->pos[j];
		p->pos[j] = t;
	}
}

static bool taken(const struct pc_cut *out, size_t n, uint64_t pos)
{
	for (size_t i = 0; i < n; i++)
		if (out[i].pos == pos)
			return true;
	return false;
}

size_t pc_cuts_choose(const struct pc_log *log, const struct pc_call *calls, int n_calls,
		      uint64_t *rng, size_t max, struct pc_cut *out)
{
	/* the workload's span: from its first position read to the end */
	uint64_t lo = n_calls ? calls[0].start : 0, hi = log->n;
	size_t cap = (size_t)n_calls + log->n + max + 1, n = 0;
	struct pool pools[PC_CUT_KINDS];
	for (int k = 0; k < PC_CUT_KINDS; k++) {
		pools[k].pos = calloc(cap, sizeof(uint64_t));
		pools[k].n = 0;
	}
	for (int k = 0; k < PC_CUT_KINDS; k++)
		if (!pools[k].pos)
			goto out;
	pool_add(&pools[PC_CUT_END], hi, cap);
	for (int i = 0; i < n_calls; i++) {
		if (calls[i].rc == 0)
			pool_add(&pools[PC_CUT_RETURNED], calls[i].end, cap);
		if (calls[i].end - calls[i].start >= 2)
			pool_add(&pools[PC_CUT_INSIDE], calls[i].start + 1 +
				 pc_rng(rng) % (calls[i].end - calls[i].start - 1), cap);
	}
	for (uint64_t e = lo; e < hi; e++)
		if (log->e[e].kind == PC_FSYNC)
			pool_add(&pools[PC_CUT_FLUSH], e + 1, cap);
	for (size_t i = 0; i < max && hi > lo; i++)
		pool_add(&pools[PC_CUT_ANYWHERE], lo + pc_rng(rng) % (hi - lo + 1), cap);
	for (int k = 0; k < PC_CUT_KINDS; k++)
		shuffle(&pools[k], rng);
	/* round-robin over the kinds, so that a short run has some of each */
	size_t next[PC_CUT_KINDS] = { 0 };
	for (bool more = true; more && n < max;) {
		more = false;
		for (int k = 0; k < PC_CUT_KINDS && n < max; k++) {
			while (next[k] < pools[k].n && taken(out, n, pools[k].pos[next[k]]))
				next[k]++;
			if (next[k] == pools[k].n)
				continue;
			out[n++] = (struct pc_cut){ pools[k].pos[next[k]++], (enum pc_cut_kind)k };
			more = true;
		}
	}
out:
	for (int k = 0; k < PC_CUT_KINDS; k++)
		free(pools[k].pos);
	return n;
}

void pc_expect_at(const struct pc_call *calls, int n_calls, uint64_t pos, struct pc_expect *x)
{
	for (int i = 0; i < PC_POOL; i++)
		x->before[i] = (struct pc_layer){ .by = -1, .made = -1 };
	x->inflight = -1;
	for (int i = 0; i < n_calls; i++) {
		if (calls[i].end <= pos)
			pc_model_apply(x->before, &calls[i], i);
		else if (calls[i].start < pos)
			x->inflight = i;	/* calls run one at a time: at most one */
	}
	memcpy(x->after, x->before, sizeof(x->after));
	if (x->inflight >= 0)
		pc_model_apply(x->after, &calls[x->inflight], x->inflight);
}
