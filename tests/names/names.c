/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * When every reserved name a create draws is taken, create fails with
 * -EAGAIN, says why, leaks no error object and leaves nothing behind.
 * getrandom() is wrapped to return the same bytes every time, so the names
 * a handle draws are known, and planted first.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#include <btrfsutil.h>
#include <cmocka.h>

#include "btrfslayer.h"
#include "check.h"
#include "harness.h"

/* While set, getrandom() fills its buffer with this byte. */
static bool fixed;
#define FIXED_BYTE 0xab

ssize_t __real_getrandom(void *buf, size_t len, unsigned int flags);
ssize_t __wrap_getrandom(void *buf, size_t len, unsigned int flags)
{
	if (!fixed)
		return __real_getrandom(buf, len, flags);
	memset(buf, FIXED_BYTE, len);
	return (ssize_t)len;
}

static int count_entries(const char *dir)
{
	char cmd[PATH_MAX + 32];
	snprintf(cmd, sizeof(cmd), "ls -A '%s' | wc -l", dir);
	FILE *p = popen(cmd, "r");
	int n = -1;
	assert_non_null(p);
	assert_int_equal(fscanf(p, "%d", &n), 1);
	pclose(p);
	return n;
}

static void test_all_names_taken(void **state)
{
	(void)state;
	char home[PATH_MAX], path[PATH_MAX + 64];
	const char *opts[] = { "btrfs.mount_home=false" };
	btrfslayer *h = NULL;
	harness_new_home(home, sizeof(home));
	assert_ok(btrfslayer_open(home, opts, 1, NULL, 0, NULL, 0, &h, ERR));

	/* the one name the first handle (slot 0) draws: taken by a subvolume
	 * the library did not make */
	snprintf(path, sizeof(path), "%s/subvolumes/.tmp-0-%016llx", home,
		 0xababababababababULL);
	assert_int_equal(btrfs_util_create_subvolume(path, 0, NULL, NULL), BTRFS_UTIL_OK);
	snprintf(path, sizeof(path), "%s/subvolumes", home);
	int subvolumes_before = count_entries(path);

	fixed = true;
	expect_fail(btrfslayer_create(h, "layer", NULL, 0, NULL, NULL, 0, ERR), -EAGAIN,
		    "no free reserved name");
	fixed = false;
	assert_int_equal(btrfslayer_exists(h, "layer", NULL), 0);
	assert_int_equal(count_entries(path), subvolumes_before);

	/* with names free again, the same call works */
	assert_ok(btrfslayer_create(h, "layer", NULL, 0, NULL, NULL, 0, ERR));
	assert_ok(btrfslayer_remove(h, "layer", ERR));
	assert_ok(btrfslayer_close(h, ERR));
}

int main(void)
{
	harness_start();
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_all_names_taken),
	};
	return cmocka_run_group_tests_name("names", tests, NULL, NULL);
}
