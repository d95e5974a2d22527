/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The caller's log callback: the library's only voice besides return codes.
 *
 * Invariant: once btrfslayer_set_log_fn() returns, no call of the callback it
 * replaced is running or will start, so the caller may free its userdata.
 * Callbacks run without log_lock held (several threads may log at once), so
 * each one is counted from the moment it takes the callback to the moment it
 * returns; a change of callback moves the running ones to `old_running` and
 * waits until that is down to 0.  New callbacks count in `running`, never in
 * `old_running`, so a change waits only for those that started before it,
 * however busy the logging.  A change made from inside a callback (which the
 * header forbids) does not wait: it would wait for itself.
 */
#define _GNU_SOURCE
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

#include "internal.h"

static pthread_mutex_t log_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t log_idle = PTHREAD_COND_INITIALIZER;	/* old_running fell */
static btrfslayer_log_fn log_fn;
static void *log_userdata;
static unsigned long generation;	/* bumped at each change of callback */
static unsigned long running;		/* calls of the current callback */
static unsigned long old_running;	/* calls of replaced callbacks */
/* Callbacks this thread is inside: a callback that changes the callback must
 * not wait for itself. */
static __thread unsigned long callbacks_here;

BTRFSLAYER_API void btrfslayer_set_log_fn(btrfslayer_log_fn fn, void *userdata)
{
	pthread_mutex_lock(&log_lock);
	log_fn = fn;
	log_userdata = userdata;
	generation++;
	old_running += running;
	running = 0;
	/* From inside a callback, waiting could never end (that call is
	 * running, and another thread's callback may be waiting for ours). */
	while (!callbacks_here && old_running)
		pthread_cond_wait(&log_idle, &log_lock);
	pthread_mutex_unlock(&log_lock);
}

void bl_log(int level, const char *fmt, ...)
{
	pthread_mutex_lock(&log_lock);
	btrfslayer_log_fn fn = log_fn;
	void *userdata = log_userdata;
	unsigned long started = generation;
	if (fn)
		running++;
	pthread_mutex_unlock(&log_lock);
	if (!fn)
		return;

	char *message = NULL;
	va_list ap;
	va_start(ap, fmt);
	int n = vasprintf(&message, fmt, ap);
	va_end(ap);
	callbacks_here++;
	fn(level, n < 0 ? "out of memory while formatting a log message" : message,
	   userdata);
	callbacks_here--;
	if (n >= 0)
		free(message);

	pthread_mutex_lock(&log_lock);
	if (started == generation) {
		running--;
	} else if (--old_running == 0) {
		pthread_cond_broadcast(&log_idle);
	}
	pthread_mutex_unlock(&log_lock);
}
