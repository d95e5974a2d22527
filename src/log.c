/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The caller's log callback: the library's only voice besides return codes. */
#define _GNU_SOURCE
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

#include "internal.h"

static pthread_mutex_t log_lock = PTHREAD_MUTEX_INITIALIZER;
static btrfslayer_log_fn log_fn;
static void *log_userdata;

BTRFSLAYER_API void btrfslayer_set_log_fn(btrfslayer_log_fn fn, void *userdata)
{
	pthread_mutex_lock(&log_lock);
	log_fn = fn;
	log_userdata = userdata;
	pthread_mutex_unlock(&log_lock);
}

void bl_log(int level, const char *fmt, ...)
{
	pthread_mutex_lock(&log_lock);
	btrfslayer_log_fn fn = log_fn;
	void *userdata = log_userdata;
	pthread_mutex_unlock(&log_lock);
	if (!fn)
		return;

	char *message = NULL;
	va_list ap;
	va_start(ap, fmt);
	int n = vasprintf(&message, fmt, ap);
	va_end(ap);
	fn(level, n < 0 ? "out of memory while formatting a log message" : message,
	   userdata);
	if (n >= 0)
		free(message);
}
