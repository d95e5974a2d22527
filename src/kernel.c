/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * What the running kernel's release says about what it does by itself.
 * Only for behaviour no call can probe (a feature an ioctl can ask about is
 * asked about, never inferred from a version).
 */
#define _GNU_SOURCE
#include <pthread.h>
#include <stdio.h>
#include <sys/utsname.h>

#include "internal.h"

static unsigned release_major, release_minor;
static pthread_once_t release_once = PTHREAD_ONCE_INIT;

static void read_release(void)
{
	struct utsname u;
	/* an unreadable release is taken for the oldest kernel: every
	 * behaviour it gates stays the library's own work */
	if (uname(&u) == 0 && sscanf(u.release, "%u.%u", &release_major, &release_minor) == 2)
		return;
	release_major = release_minor = 0;
}

bool bl_kernel_at_least(unsigned major, unsigned minor)
{
	pthread_once(&release_once, read_release);
	return release_major > major || (release_major == major && release_minor >= minor);
}
