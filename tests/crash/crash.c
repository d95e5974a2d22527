/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Crash safety: for each quota mode, a child opens a home and makes random
 * calls (create, snapshot, set/clear quota, remove, writes) until the parent
 * SIGKILLs it at a random moment, inside a call or between two.  The child
 * says on a pipe what it is about to do and what it did, so the parent knows
 * the model and the call in flight; it then reopens the home (the recovery
 * sweep runs) and checks the contract's invariants (verify.c).
 *
 * Environment: BTRFSLAYER_CRASH_KILLS (kills per mode), BTRFSLAYER_CRASH_SEED
 * (replay a run's choices; kill timing still varies), BTRFSLAYER_CRASH_MODES
 * ("simple,qgroup"), BTRFSLAYER_CRASH_KEEP_GOING=1 (go on after a failed
 * round, from what is on disk, to see every kind of failure in one run).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "crash.h"
#include "../integration/harness.h"

#define DEFAULT_KILLS 300
#define MAX_DELAY_US 40000
/* A quarter of the kills come early, to land inside open and its sweep. */
#define EARLY_DELAY_US 6000
/* An aimed kill whose call does not come in this time is made anyway. */
#define AIM_TIMEOUT_US 100000
/* A third of the kills leave their check to the next round, up to this many
 * in a row: the next child's open then sweeps (and may be killed sweeping). */
#define MAX_UNCHECKED 3
/* One round (child, kill, checks) longer than this is a hang. */
#define ROUND_TIMEOUT_S 120
#define HISTORY 16

const char *const op_names[OP_COUNT] = {
	"open", "create", "snapshot", "set_quota", "clear_quota", "remove", "write", "nest",
};
const char *const sweep_names[SWEEP_KEYS] = {
	"sweep_tombstones", "sweep_temporaries", "sweep_quota_files", "sweep_qgroups",
	"sweep_limits", "sweep_left",
};

static pid_t parent_pid, child_pid;
static struct ctx *current;
static volatile sig_atomic_t alarm_round;
unsigned round_failures;

/* The records of the last child, for a failure report. */
static struct rec history[HISTORY];
static unsigned n_history;

void id_name(unsigned i, char buf[ID_LEN])
{
	if (i >= POOL)
		snprintf(buf, ID_LEN, "-");
	else
		snprintf(buf, ID_LEN, "layer-%02u", i);
}

/* splitmix64: the whole run follows from one seed. */
uint64_t rng_next(uint64_t *state)
{
	uint64_t z = (*state += UINT64_C(0x9e3779b97f4a7c15));
	z = (z ^ (z >> 30)) * UINT64_C(0xbf58476d1ce4e5b9);
	z = (z ^ (z >> 27)) * UINT64_C(0x94d049bb133111eb);
	return z ^ (z >> 31);
}

void describe(const struct rec *r, char *buf, size_t len)
{
	char id[ID_LEN], parent[ID_LEN];
	id_name(r->id, id);
	id_name(r->parent, parent);
	if (r->op == OP_OPEN)
		snprintf(buf, len, "open");
	else
		snprintf(buf, len, "%s %s%s%s size=%" PRIu64 "%s", op_names[r->op], id,
			 r->op == OP_SNAPSHOT ? " from " : "", r->op == OP_SNAPSHOT ? parent : "",
			 r->size, r->ro ? " READ_ONLY" : "");
}

bool check(struct ctx *c, bool ok, const char *fmt, ...)
{
	c->st.checks++;
	if (ok)
		return true;
	va_list ap;
	fprintf(stderr, "FAIL crash: mode=%s seed=%" PRIu64 " kill=%u: ", c->mode, c->seed,
		c->kill_no);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	round_failures++;
	return false;
}

static void kill_child(void)
{
	if (getpid() != parent_pid || child_pid <= 0)
		return;
	kill(child_pid, SIGKILL);
	waitpid(child_pid, NULL, 0);
	child_pid = 0;
}

void die(const char *fmt, ...)
{
	va_list ap;
	if (getpid() != parent_pid)
		_exit(1);	/* never the harness's teardown from a child */
	kill_child();
	fprintf(stderr, "FAIL crash: ");
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	exit(1);	/* atexit: kill_child, then the harness's teardown */
}

/* A hung round: say so, then let the harness's SIGTERM handler tear down. */
static void on_alarm(int sig)
{
	(void)sig;
	dprintf(STDERR_FILENO, "FAIL crash: kill %d: a round took over %d s (a hang in the "
		"library?)\n", (int)alarm_round, ROUND_TIMEOUT_S);
	if (child_pid > 0)
		kill(child_pid, SIGKILL);
	raise(SIGTERM);
}

void log_fn(int level, const char *message, void *userdata)
{
	(void)userdata;
	if (!current)
		return;
	if (!strncmp(message, "recovery: ", 10))
		current->st.recovery_logs++;
	if (level <= BTRFSLAYER_LOG_WARNING) {
		current->st.warnings++;
		fprintf(stderr, "crash: mode=%s kill=%u: library log %d: %s\n", current->mode,
			current->kill_no, level, message);
	}
}

void model_apply(struct model *m, const struct rec *r)
{
	struct layer *l = &m->l[r->id];
	if (r->op == OP_CREATE || r->op == OP_SNAPSHOT)
		*l = (struct layer){ .exists = true, .ro = r->ro, .size = r->size };
	else if (r->op == OP_SET_QUOTA)
		l->size = r->size;
	else if (r->op == OP_CLEAR_QUOTA)
		l->size = 0;
	else if (r->op == OP_REMOVE)
		*l = (struct layer){ 0 };
}

static void apply(struct ctx *c, struct model *m, struct inflight *in, const struct rec *r)
{
	static bool swept;	/* the child's open swept something */
	history[n_history++ % HISTORY] = *r;
	if (r->kind == REC_SWEEP) {
		unsigned sum = 0;
		for (int k = 0; k < SWEEP_KEYS; k++) {
			c->st.child_sweep[k] += r->sweep[k];
			sum += r->sweep[k];
		}
		swept = sum > 0;
		return;
	}
	if (r->kind == REC_BEGIN) {
		swept = swept && r->op != OP_OPEN;
		in->active = true;
		in->begin = *r;
		in->before = r->id < POOL ? m->l[r->id] : (struct layer){ 0 };
		return;
	}
	if (r->kind != REC_DONE)
		return;
	in->active = false;
	c->st.ops_done++;
	c->st.done[r->op]++;
	c->st.seconds[r->op] += r->usec / 1e6;
	if (r->op == OP_OPEN && swept) {
		c->st.sweeping_opens++;
		c->st.sweeping_seconds += r->usec / 1e6;
	}
	model_apply(m, r);
}

static void print_history(void)
{
	unsigned first = n_history > HISTORY ? n_history - HISTORY : 0;
	static const char *const kinds[] = { "begin", "done", "sweep", "FAILED" };
	fprintf(stderr, "last records of the child (oldest first):\n");
	for (unsigned i = first; i < n_history; i++) {
		char what[128];
		const struct rec *r = &history[i % HISTORY];
		describe(r, what, sizeof(what));
		fprintf(stderr, "  %-6s %s\n", kinds[r->kind], what);
	}
}

uint64_t now_us(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000 + (uint64_t)ts.tv_nsec / 1000;
}

/* How the parent places a kill: after a random delay, or aimed at a call
 * (the child's n-th "begin" of one op, plus a random part of that op's mean
 * duration so far).  Calls that take tens of microseconds (clear_quota,
 * remove on a fast disk) are seldom cut by the first kind. */
struct aim {
	bool aimed;
	uint8_t op;
	unsigned skip;		/* begins of op to let pass first */
	uint64_t delay_us;	/* after the start, or after the aimed begin */
};

static struct aim pick_aim(const struct ctx *c, bool leftovers, uint64_t *rng)
{
	static const uint8_t targets[] = { OP_OPEN, OP_CREATE, OP_SNAPSHOT, OP_SET_QUOTA,
					   OP_CLEAR_QUOTA, OP_REMOVE };
	const struct stats *s = &c->st;
	if (leftovers && rng_next(rng) % 2 == 0) {
		/* into the sweep of what the last kill left */
		uint64_t mean = s->sweeping_opens ?
			(uint64_t)(1e6 * s->sweeping_seconds / s->sweeping_opens) : 3000;
		return (struct aim){ .aimed = true, .op = OP_OPEN,
				     .delay_us = rng_next(rng) % (mean + mean / 4 + 1) };
	}
	struct aim a = { .aimed = rng_next(rng) % 2 == 0 };
	if (!a.aimed) {
		uint64_t max = rng_next(rng) % 4 == 0 ? EARLY_DELAY_US : MAX_DELAY_US;
		a.delay_us = rng_next(rng) % (max + 1);
		return a;
	}
	a.op = targets[rng_next(rng) % sizeof(targets)];
	a.skip = a.op == OP_OPEN ? 0 : (unsigned)(rng_next(rng) % 4);
	uint64_t mean = s->done[a.op] ? (uint64_t)(1e6 * s->seconds[a.op] / s->done[a.op]) : 2000;
	a.delay_us = rng_next(rng) % (mean + mean / 4 + 1);
	return a;
}

/* Read what the child says until the aim is reached (or the delay is up). */
static void watch(struct ctx *c, struct model *m, struct inflight *in, int fd,
		  const struct aim *a, bool *failed, bool *any)
{
	uint64_t deadline = now_us() + (a->aimed ? AIM_TIMEOUT_US : a->delay_us);
	unsigned skip = a->skip;
	for (;;) {
		uint64_t t = now_us();
		if (t >= deadline)
			return;
		struct pollfd pfd = { .fd = fd, .events = POLLIN };
		struct timespec ts = { (time_t)((deadline - t) / 1000000),
				       (long)((deadline - t) % 1000000) * 1000 };
		int n = ppoll(&pfd, 1, &ts, NULL);
		if (n < 0 && errno != EINTR)
			die("poll on the child's pipe: %s", strerror(errno));
		if (n <= 0)
			continue;
		struct rec r;
		if (read(fd, &r, sizeof(r)) != (ssize_t)sizeof(r))
			return;	/* the child is gone */
		*any = true;
		*failed |= r.kind == REC_FAIL;
		apply(c, m, in, &r);
		if (a->aimed && r.kind == REC_BEGIN && r.op == a->op && skip-- == 0) {
			/* spin: a sleep would oversleep the short calls */
			uint64_t at = now_us() + a->delay_us;
			while (now_us() < at)
				;
			c->st.aimed++;
			return;
		}
	}
}

/* Fork a child on the model, kill it, and read what it said.  *in is the
 * call it was in, if any. */
static void run_child(struct ctx *c, struct model *m, struct inflight *in, bool leftovers,
		      uint64_t *rng)
{
	int fds[2];
	uint64_t child_seed = rng_next(rng);
	struct aim a = pick_aim(c, leftovers, rng);
	if (pipe2(fds, O_CLOEXEC) < 0)
		die("pipe: %s", strerror(errno));
	fflush(NULL);
	pid_t pid = fork();
	if (pid < 0)
		die("fork: %s", strerror(errno));
	if (pid == 0) {
		close(fds[0]);
		child_main(c, m, child_seed, fds[1]);
	}
	child_pid = pid;
	close(fds[1]);

	bool failed = false, any = false;
	*in = (struct inflight){ 0 };
	n_history = 0;
	watch(c, m, in, fds[0], &a, &failed, &any);
	int status;
	kill(pid, SIGKILL);
	while (waitpid(pid, &status, 0) < 0)
		if (errno != EINTR)
			die("waitpid: %s", strerror(errno));
	child_pid = 0;

	struct rec r;
	ssize_t n;
	while ((n = read(fds[0], &r, sizeof(r))) == (ssize_t)sizeof(r)) {
		any = true;
		failed |= r.kind == REC_FAIL;
		apply(c, m, in, &r);
	}
	close(fds[0]);
	if (n != 0)
		die("reading the child's pipe: short record (%zd bytes)", n);
	if (failed || !WIFSIGNALED(status) || WTERMSIG(status) != SIGKILL) {
		print_history();
		die("mode=%s seed=%" PRIu64 " kill=%u: the child %s (see its message above): "
		    "a call the model says must succeed failed", c->mode, c->seed, c->kill_no,
		    WIFEXITED(status) ? "exited" : "died of another signal");
	}
	c->st.kills++;
	if (!any)
		c->st.before_open++;
	else if (in->active)
		c->st.inside[in->begin.op]++;
	else
		c->st.between++;
	if (a.aimed && in->active && in->begin.op == a.op)
		c->st.aimed_hits++;
}

static void fail_round(struct ctx *c, struct model *m, const struct pending *p)
{
	char what[128];
	fprintf(stderr, "calls cut by the kills since the last check: %s\n",
		p->n ? "" : "none (killed between calls, or in open/write/nest)");
	for (unsigned i = 0; i < p->n; i++) {
		describe(&p->calls[i].begin, what, sizeof(what));
		fprintf(stderr, "  %s\n", what);
	}
	print_history();
	dump_disk(c);
	c->st.failed_rounds++;
	const char *keep = getenv("BTRFSLAYER_CRASH_KEEP_GOING");
	if (!keep || strcmp(keep, "1"))
		die("mode=%s seed=%" PRIu64 " kill=%u: invariants broken (above); replay the "
		    "choices with BTRFSLAYER_CRASH_SEED=%" PRIu64, c->mode, c->seed, c->kill_no,
		    c->seed);
	resync_model(c, m);
}

static void print_sweep(const char *what, const unsigned long s[SWEEP_KEYS])
{
	printf(" %s:", what);
	for (int k = 0; k < SWEEP_KEYS; k++)
		printf(" %s=%lu", sweep_names[k] + 6, s[k]);
}

/* One line per mode, every figure the run measured. */
static void summary(const struct ctx *c, double seconds)
{
	const struct stats *s = &c->st;
	unsigned inside = 0;
	for (int i = 0; i < OP_COUNT; i++)
		inside += s->inside[i];
	printf("crash: SUMMARY mode=%s seed=%" PRIu64 " kills=%u inside_call=%u (", c->mode,
	       c->seed, s->kills, inside);
	for (int i = 0; i < OP_COUNT; i++)
		printf("%s=%u ", op_names[i], s->inside[i]);
	printf("open_with_leftovers=%u) between_calls=%u (before_first_call=%u)",
	       s->inside_open_leftovers, s->between + s->before_open, s->before_open);
	printf(" aimed_kills=%u aimed_hits=%u unchecked_kills=%u rounds=%u invariant_checks=%lu",
	       s->aimed, s->aimed_hits, s->unchecked, s->rounds, s->checks);
	printf(" calls_completed=%lu in_flight_outcomes: created=%u not_created=%u removed=%u"
	       " not_removed=%u quota_new=%u quota_old=%u;", s->ops_done, s->created,
	       s->not_created, s->removed, s->not_removed, s->quota_new, s->quota_old);
	print_sweep("sweep_reopens", s->sweep);
	print_sweep("sweep_child_opens", s->child_sweep);
	print_sweep("sweep_final_open", s->final_sweep);
	printf(" mean_call_ms:");
	printf(" open_that_swept=%.2f", s->sweeping_opens ?
	       1e3 * s->sweeping_seconds / s->sweeping_opens : 0);
	for (int i = 0; i < OP_COUNT; i++)
		printf(" %s=%.2f", op_names[i], s->done[i] ? 1e3 * s->seconds[i] / s->done[i] : 0);
	printf(" recovery_log_lines=%u warnings=%u failed_rounds=%u time=%.1fs\n",
	       s->recovery_logs, s->warnings, s->failed_rounds, seconds);
}

static void run_mode(struct ctx *c, unsigned kills)
{
	struct model m = { 0 };
	struct inflight in = { 0 };
	struct pending p = { .n = 0 };
	unsigned unchecked = 0;
	uint64_t rng = c->seed ^ (strcmp(c->mode, "simple") ? 0x71 : 0x51);
	uint64_t start = now_us();

	harness_new_home(c->home, sizeof(c->home));
	snprintf(c->opt_mode, sizeof(c->opt_mode), "btrfs.quota_mode=%s", c->mode);
	c->opts[0] = c->opt_mode;
	/* the sweep is what is under test, not the bind mount of home */
	c->opts[1] = "btrfs.mount_home=false";
	/* quotas on from open (btrfs.quota_mode alone waits for a limit) */
	c->opts[2] = "btrfs.min_space=1";
	c->n_opts = 3;
	current = c;
	btrfslayer_set_log_fn(log_fn, NULL);

	for (unsigned k = 1; k <= kills; k++) {
		c->kill_no = k;
		alarm_round = (sig_atomic_t)k;
		alarm(ROUND_TIMEOUT_S);
		bool leftovers = unchecked > 0;	/* for this child's open to sweep */
		run_child(c, &m, &in, leftovers, &rng);
		if (leftovers && in.active && in.begin.op == OP_OPEN)
			c->st.inside_open_leftovers++;
		if (in.active && in.begin.op != OP_OPEN && in.begin.op < OP_WRITE) {
			p.calls[p.n++] = in;
			m.l[in.begin.id].pending = true;
		}
		bool skip = rng_next(&rng) % 3 == 0;
		if (skip && unchecked < MAX_UNCHECKED && k < kills) {
			unchecked++;
			c->st.unchecked++;
			continue;
		}
		unchecked = 0;
		struct pending cut = p;	/* for the report: verify settles p */
		if (!verify_after_kill(c, &m, &p)) {
			fail_round(c, &m, &cut);
			p.n = 0;
		}
		alarm(0);
	}
	c->kill_no = kills + 1;	/* the end-of-mode round */
	alarm(ROUND_TIMEOUT_S);
	if (!verify_end_of_mode(c, &m)) {
		dump_disk(c);
		c->st.failed_rounds++;
		const char *keep = getenv("BTRFSLAYER_CRASH_KEEP_GOING");
		if (!keep || strcmp(keep, "1"))
			die("mode=%s seed=%" PRIu64 ": end of mode: something was left (above)",
			    c->mode, c->seed);
	}
	alarm(0);
	summary(c, (double)(now_us() - start) / 1e6);
	fflush(stdout);
	current = NULL;
}

static unsigned long env_number(const char *name, unsigned long dflt)
{
	const char *v = getenv(name);
	if (!v || !*v)
		return dflt;
	char *end;
	errno = 0;
	unsigned long n = strtoul(v, &end, 0);
	if (errno || *end)
		die("%s=%s: not a number", name, v);
	return n;
}

static bool mode_wanted(const char *mode)
{
	const char *modes = getenv("BTRFSLAYER_CRASH_MODES");
	if (!modes || !*modes)
		return true;
	size_t len = strlen(mode);
	for (const char *p = modes; (p = strstr(p, mode)); p += len)
		if ((p == modes || p[-1] == ',') && (p[len] == ',' || !p[len]))
			return true;
	return false;
}

int main(void)
{
	static struct ctx ctxs[2];
	static const char *const modes[2] = { "simple", "qgroup" };
	setvbuf(stdout, NULL, _IOLBF, 0);
	harness_start();
	parent_pid = getpid();
	/* after the harness's: runs first at exit, so no child holds the
	 * mount when the harness unmounts it */
	atexit(kill_child);
	signal(SIGALRM, on_alarm);
	prctl(PR_SET_TIMERSLACK, 1UL);	/* delays of microseconds mean that */

	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	uint64_t seed = env_number("BTRFSLAYER_CRASH_SEED", (unsigned long)ts.tv_sec *
				   1000000000UL + (unsigned long)ts.tv_nsec);
	unsigned kills = (unsigned)env_number("BTRFSLAYER_CRASH_KILLS", DEFAULT_KILLS);
	printf("crash: seed=%" PRIu64 " kills per mode=%u (set BTRFSLAYER_CRASH_SEED=%" PRIu64
	       " to replay the same choices; kill timing still varies)\n", seed, kills, seed);

	int ran = 0;
	unsigned failed = 0;
	for (int i = 0; i < 2; i++) {
		struct ctx *c = &ctxs[i];
		*c = (struct ctx){ .mode = modes[i], .mnt = harness_btrfs(), .seed = seed,
				   .parent_pid = parent_pid };
		if (!mode_wanted(c->mode)) {
			printf("crash: mode=%s: not in BTRFSLAYER_CRASH_MODES, not run\n", c->mode);
			continue;
		}
		if (!strcmp(c->mode, "simple") &&
		    access("/sys/fs/btrfs/features/simple_quota", F_OK) < 0) {
			printf("crash: mode=simple: SKIPPED: this kernel has no simple quotas "
			       "(/sys/fs/btrfs/features/simple_quota is missing)\n");
			continue;
		}
		if (ran) {	/* a mode is chosen when quotas are turned on */
			const char *const off[] = { "btrfs", "quota", "disable", c->mnt, NULL };
			if (harness_run(off) != 0)
				die("btrfs quota disable %s failed", c->mnt);
		}
		run_mode(c, kills);
		failed += c->st.failed_rounds;
		ran++;
	}
	if (!ran)
		die("no quota mode ran");
	return failed ? 1 : 0;
}
