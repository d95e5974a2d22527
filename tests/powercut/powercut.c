/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The power-cut test.  The library promises that once create, remove,
 * set_quota or clear_quota returned 0, a power cut at any later moment keeps
 * the result, and that a cut during a call leaves the layer whole or absent.
 *
 * Per quota mode (off, qgroup, simple): record every write and cache flush a
 * workload's btrfs sends to its disk (recorder.c), then, for many cut
 * points, rebuild the disk as the cut may have left it (replay.c), mount it,
 * open the home (which runs the recovery sweep) and check every layer
 * against the calls that had returned (check.c).
 *
 * Then the cheaper check of copymode.c, in one quota mode per run.
 *
 * Needs root, btrfs, /dev/fuse and fusermount3: skips (77) without them,
 * fails under CI=true.  Environment:
 *   BTRFSLAYER_POWERCUT_CUTS  cut points per quota mode (default 40)
 *   BTRFSLAYER_POWERCUT_SEED  replay a run (the seed is printed): the same
 *                             calls, cut points and kept writes.  The log
 *                             itself may differ by a few entries where the
 *                             kernel's background work lands differently.
 * Last line: "N passed, M failed", N and M counting cut points and copies (a
 * mode whose recording could not be made counts as one failure).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "btrfslayer.h"
#include "cuts.h"
#include "log.h"
#include "powercut.h"
#include "replay.h"
#include "rig.h"
#include "util.h"

#define DEFAULT_CUTS 40
/* nodiscard: a discard the recorder would have to log as zeroes is noise */
#define RECORD_MOUNT_OPTS "nodiscard"

static const struct pc_mode modes[] = {
	{ "off", { "btrfs.mount_home=false" }, 1 },
	/* quotas on from open: btrfs.quota_mode alone waits for a limit */
	{ "qgroup", { "btrfs.mount_home=false", "btrfs.quota_mode=qgroup", "btrfs.min_space=1" },
	  3 },
	{ "simple", { "btrfs.mount_home=false", "btrfs.quota_mode=simple", "btrfs.min_space=1" },
	  3 },
};

unsigned long pc_passed, pc_failed;

static uint64_t env_u64(const char *name, uint64_t dflt)
{
	const char *v = getenv(name);
	char *end;
	if (!v || !*v)
		return dflt;
	errno = 0;
	uint64_t r = strtoull(v, &end, 0);
	if (errno || *end) {
		fprintf(stderr, "powercut: %s=%s is not a number\n", name, v);
		exit(2);
	}
	return r;
}

static void describe_cut(const struct pc_cut *c, const struct pc_call *calls, int n_calls,
			 char *buf, size_t len)
{
	int last = -1;
	for (int i = 0; i < n_calls; i++)
		if (calls[i].end <= c->pos)
			last = i;
	char desc[128] = "none";
	if (last >= 0)
		pc_call_describe(&calls[last], desc, sizeof(desc));
	snprintf(buf, len, "%s; last call returned: #%d %s", pc_cut_kind_names[c->kind], last,
		 desc);
}

/* One cut: rebuild, mount, check, unmount.  True when it held. */
static bool try_cut(const struct pc_mode *m, const struct pc_log *log,
		    const struct pc_call *calls, int n_calls, const struct pc_cut *c,
		    uint64_t seed, const char *label, struct pc_tally *t)
{
	struct pc_rebuilt rb;
	char where[256];
	int inflight = -1;
	describe_cut(c, calls, n_calls, where, sizeof(where));
	int r = pc_rebuild(log, rig.base, rig.rebuilt, c->pos, seed, &rb);
	if (r < 0) {
		printf("%s: FAIL: rebuild the disk at %s: %s\n", label, rig.rebuilt, strerror(-r));
		t->violations++;
		return false;
	}
	unsigned long problems = pc_check_image(m, rig.rebuilt, calls, n_calls, c->pos, label, t,
						&inflight);
	printf("%s: %s (%s; last flush at %ld, volatile writes kept %u of %u%s)\n", label,
	       problems ? "FAIL" : "held", where, rb.flush, rb.volatile_kept,
	       rb.volatile_kept + rb.volatile_dropped, inflight >= 0 ? "; a call in flight" : "");
	return problems == 0;
}

/* The premise of it all: a sync of the btrfs reaches the log as a flush. */
static bool flush_seen(const struct pc_log *log, const uint64_t probe[2])
{
	for (uint64_t i = probe[0]; i < probe[1] && i < log->n; i++)
		if (log->e[i].kind == PC_FSYNC)
			return true;
	return false;
}

static void run_mode(const struct pc_mode *m, uint64_t seed, size_t max_cuts)
{
	uint64_t probe[2] = { 0, 0 };
	double t0 = pc_now();
	printf("powercut: mode %s: recording %d calls\n", m->name, WORKLOAD_CALLS);
	fflush(stdout);
	if (pc_record(m, true, RECORD_MOUNT_OPTS, seed, NULL, NULL, probe) < 0) {
		printf("powercut: mode %s: FAIL: no recording to cut\n", m->name);
		pc_failed++;
		return;
	}
	struct pc_log log;
	struct pc_call *calls = NULL;
	int r = pc_log_load(rig.log, &log);
	int n_calls = r < 0 ? r : pc_results_load(rig.results, &calls);
	if (r < 0 || n_calls < 0) {
		printf("powercut: mode %s: FAIL: read %s: %s\n", m->name,
		       r < 0 ? rig.log : rig.results, strerror(r < 0 ? -r : -n_calls));
		if (r == 0)
			pc_log_free(&log);
		pc_failed++;
		return;
	}
	if (!flush_seen(&log, probe)) {
		printf("powercut: mode %s: FAIL: syncfs of %s made no flush in the log between "
		       "positions %" PRIu64 " and %" PRIu64 ": the recorder cannot tell what "
		       "was durable\n", m->name, rig.mnt, probe[0], probe[1]);
		pc_log_free(&log);
		free(calls);
		pc_failed++;
		return;
	}
	unsigned flushes = 0;
	for (size_t i = 0; i < log.n; i++)
		flushes += log.e[i].kind == PC_FSYNC;
	printf("powercut: mode %s: %zu log entries, %u flushes, %d calls, recorded in %.1f s\n",
	       m->name, log.n, flushes, n_calls, pc_now() - t0);

	struct pc_cut *cuts = calloc(max_cuts, sizeof(*cuts));
	uint64_t rng = seed;
	size_t n = cuts ? pc_cuts_choose(&log, calls, n_calls, &rng, max_cuts, cuts) : 0;
	struct pc_tally t = { 0 };
	unsigned long held = 0;
	for (size_t i = 0; i < n; i++) {
		char label[96];
		snprintf(label, sizeof(label), "powercut: %s cut %zu/%zu at %" PRIu64 " of %zu",
			 m->name, i + 1, n, cuts[i].pos, log.n);
		bool ok = try_cut(m, &log, calls, n_calls, &cuts[i], seed + cuts[i].pos, label, &t);
		held += ok;
		fflush(stdout);
	}
	pc_passed += held;
	pc_failed += n - held;
	char by[256];
	pc_tally_lost_by(&t, by, sizeof(by));
	printf("powercut: mode %s: %zu cut points tried, %lu held; %lu layer states checked, "
	       "%lu lost%s, %lu other violations; %.1f s\n",
	       m->name, n, held, t.layers, t.lost, by, t.violations, pc_now() - t0);
	free(cuts);
	free(calls);
	pc_log_free(&log);
}

int main(void)
{
	char recorder[4096];
	/* the recorder is built next to this program */
	ssize_t len = readlink("/proc/self/exe", recorder, sizeof(recorder) - 32);
	if (len <= 0) {
		perror("powercut: readlink /proc/self/exe");
		return 1;
	}
	recorder[len] = '\0';
	char *slash = strrchr(recorder, '/');
	strcpy(slash ? slash + 1 : recorder, "powercut_recorder");

	rig_start(recorder);
	uint64_t seed = env_u64("BTRFSLAYER_POWERCUT_SEED",
				(uint64_t)time(NULL) ^ ((uint64_t)getpid() << 32));
	size_t cuts = (size_t)env_u64("BTRFSLAYER_POWERCUT_CUTS", DEFAULT_CUTS);
	printf("powercut: seed %" PRIu64 " (replay: BTRFSLAYER_POWERCUT_SEED=%" PRIu64
	       "), %zu cut points per quota mode, work directory %s\n",
	       seed, seed, cuts, rig.dir);
	double t0 = pc_now();
	for (size_t i = 0; i < sizeof(modes) / sizeof(modes[0]); i++)
		run_mode(&modes[i], seed + i, cuts);
	/* the cheaper check, in one quota mode per run (the seed picks it) */
	pc_copy_mode(&modes[seed % (sizeof(modes) / sizeof(modes[0]))], seed);
	printf("powercut: %.1f s in all\n", pc_now() - t0);
	printf("%lu passed, %lu failed\n", pc_passed, pc_failed);
	return pc_failed ? 1 : 0;
}
