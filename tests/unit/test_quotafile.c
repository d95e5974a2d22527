/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* bl_quota_file_parse(): the content of HOME/quotas/<id>, read strictly. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "internal.h"

#define SENTINEL UINT64_C(0xdeadbeefcafef00d)

static int parse(const char *buf, size_t len, uint64_t *out)
{
	*out = SENTINEL;
	return bl_quota_file_parse(buf, len, out);
}

static void accepts_what_create_writes(void **state)
{
	(void)state;
	uint64_t v;
	char buf[BL_QUOTA_FILE_MAX];
	const uint64_t sizes[] = {1, 1024, UINT64_C(10) << 30, UINT64_MAX - 1};
	for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
		int len = bl_quota_file_format(sizes[i], buf);
		assert_int_equal(parse(buf, (size_t)len, &v), 0);
		assert_true(v == sizes[i]);
	}
	assert_int_equal(parse("1073741824\n", 11, &v), 0);
	assert_true(v == UINT64_C(1073741824));
}

static void refuses_garbage(void **state)
{
	(void)state;
	static const char *const bad[] = {
		"", "\n", "\n\n", "0", "00", "0\n", "-1", "+1", " 1", "1 ", "1\n\n",
		"1G", "1.5", "0x10", "1e9", "abc", "12a", "\r\n", "1\r\n", "\t1",
	};
	uint64_t v;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		assert_int_equal(parse(bad[i], strlen(bad[i]), &v), -EINVAL);
		assert_true(v == SENTINEL);
	}
	/* an embedded NUL is garbage, not the end of the number */
	assert_int_equal(parse("12\0" "34", 5, &v), -EINVAL);
	assert_true(v == SENTINEL);
	/* longer than any uint64_t ever written */
	assert_int_equal(parse("0000000000000000000000001", 25, &v), -EINVAL);
}

static void refuses_overflow(void **state)
{
	(void)state;
	uint64_t v;
	assert_int_equal(parse("18446744073709551614", 20, &v), 0);
	assert_true(v == UINT64_MAX - 1);
	assert_int_equal(parse("18446744073709551616", 20, &v), -ERANGE);
	assert_true(v == SENTINEL);
	assert_int_equal(parse("99999999999999999999", 20, &v), -ERANGE);
	assert_true(v == SENTINEL);
}

/* 2^64-1 is "no limit" to the kernel (QGROUP_LIMIT clears a limit given
 * it): a quota file holding it was not written by the library, which never
 * takes it for a limit.  Garbage, however it is spelled. */
static void refuses_the_kernels_no_limit(void **state)
{
	(void)state;
	static const char *const max[] = {
		"18446744073709551615", "18446744073709551615\n", "018446744073709551615",
		"0018446744073709551615\n",
	};
	uint64_t v;
	for (size_t i = 0; i < sizeof(max) / sizeof(max[0]); i++) {
		assert_int_equal(parse(max[i], strlen(max[i]), &v), -ERANGE);
		assert_true(v == SENTINEL);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(accepts_what_create_writes),
		cmocka_unit_test(refuses_garbage),
		cmocka_unit_test(refuses_overflow),
		cmocka_unit_test(refuses_the_kernels_no_limit),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
