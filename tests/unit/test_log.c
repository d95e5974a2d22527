/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * btrfslayer_set_log_fn(): once it returns, the callback it replaced has
 * finished and is never called again, so its userdata may be freed.
 *
 * Threads log through bl_log() without a pause while the main thread swaps
 * the callback (and its userdata) again and again and, each time the swap
 * returns, poisons the userdata it just replaced.  A callback that sees
 * poison ran after the swap that retired it returned: the use-after-free a
 * caller that frees its userdata would have.  Under ThreadSanitizer the
 * plain writes of the poison also race with such a callback's reads.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "internal.h"

#define LOGGERS 2
#define SWAPS 2000
#define ALIVE UINT64_C(0x600dcafe600dcafe)
#define POISON UINT64_C(0xdeaddeaddeaddead)

struct userdata {
	uint64_t magic;		/* ALIVE while registered, POISON once retired */
};

static atomic_bool stop;
static atomic_ulong calls, late_calls;

/* Looks at its userdata on entry, gives a swap time to return, looks again. */
static void callback(int level, const char *message, void *userdata)
{
	struct userdata *u = userdata;
	(void)level;
	(void)message;
	atomic_fetch_add(&calls, 1);
	if (u->magic != ALIVE)
		atomic_fetch_add(&late_calls, 1);
	for (int i = 0; i < 4; i++)
		sched_yield();
	if (u->magic != ALIVE)
		atomic_fetch_add(&late_calls, 1);
}

static void *logger(void *arg)
{
	unsigned long n = 0;
	(void)arg;
	while (!atomic_load(&stop))
		bl_log(BTRFSLAYER_LOG_INFO, "message %lu", n++);
	return NULL;
}

static void run(bool through_null)
{
	pthread_t threads[LOGGERS];
	struct userdata *ud[2];
	atomic_store(&stop, false);
	atomic_store(&calls, 0);
	atomic_store(&late_calls, 0);
	for (int i = 0; i < 2; i++) {
		ud[i] = malloc(sizeof(*ud[i]));
		assert_non_null(ud[i]);
		ud[i]->magic = ALIVE;
	}
	btrfslayer_set_log_fn(callback, ud[0]);
	for (int i = 0; i < LOGGERS; i++)
		assert_int_equal(pthread_create(&threads[i], NULL, logger, NULL), 0);

	for (unsigned i = 0; i < SWAPS; i++) {
		struct userdata *old = ud[i % 2], *next = ud[(i + 1) % 2];
		/* a swap while callbacks run, not between bursts of them */
		unsigned long seen = atomic_load(&calls);
		while (atomic_load(&calls) == seen)
			sched_yield();
		next->magic = ALIVE;
		if (through_null)	/* unregister, then register anew */
			btrfslayer_set_log_fn(NULL, NULL);
		btrfslayer_set_log_fn(callback, next);
		old->magic = POISON;	/* as free() would, or worse */
	}
	btrfslayer_set_log_fn(NULL, NULL);
	ud[SWAPS % 2]->magic = POISON;
	atomic_store(&stop, true);
	for (int i = 0; i < LOGGERS; i++)
		assert_int_equal(pthread_join(threads[i], NULL), 0);

	print_message("%lu callbacks during %d swaps%s, %lu of them after their swap returned\n",
		      atomic_load(&calls), SWAPS, through_null ? " through NULL" : "",
		      atomic_load(&late_calls));
	assert_true(atomic_load(&calls) > 0);
	assert_int_equal(atomic_load(&late_calls), 0);
	free(ud[0]);
	free(ud[1]);
}

static void replaced_callback_never_runs_late(void **state)
{
	(void)state;
	run(false);
}

static void unregistered_callback_never_runs_late(void **state)
{
	(void)state;
	run(true);
}

/* A callback that, against the rule, changes the callback: the change
 * happens and does not wait for the callback making it (it would wait
 * forever). */
static int inner_calls;

static void inner(int level, const char *message, void *userdata)
{
	(void)level;
	(void)message;
	(void)userdata;
	inner_calls++;
}

static void reentrant(int level, const char *message, void *userdata)
{
	(void)level;
	(void)message;
	(void)userdata;
	btrfslayer_set_log_fn(inner, NULL);
}

static void change_from_a_callback_returns(void **state)
{
	(void)state;
	inner_calls = 0;
	btrfslayer_set_log_fn(reentrant, NULL);
	bl_log(BTRFSLAYER_LOG_INFO, "one");
	bl_log(BTRFSLAYER_LOG_INFO, "two");
	assert_int_equal(inner_calls, 1);
	btrfslayer_set_log_fn(NULL, NULL);	/* nothing left to wait for */
	bl_log(BTRFSLAYER_LOG_INFO, "three");
	assert_int_equal(inner_calls, 1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(replaced_callback_never_runs_late),
		cmocka_unit_test(unregistered_callback_never_runs_late),
		cmocka_unit_test(change_from_a_callback_returns),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
