/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* bl_id_check(): which layer ids are accepted, and what a refusal says. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "internal.h"

#define RULE "(ids are 1-255 bytes of [A-Za-z0-9_.-], not starting with '.')"

/* Check that id is refused with -EINVAL and a message holding each of the
 * NULL-terminated fragments. */
static void check_refused(const char *id, const char *what,
			  const char *const *frags)
{
	btrfslayer_error *err = NULL;

	assert_int_equal(bl_id_check(id, what, &err), -EINVAL);
	assert_non_null(err);
	assert_int_equal(btrfslayer_error_code(err), -EINVAL);
	const char *msg = btrfslayer_error_message(err);
	for (; *frags; frags++) {
		if (!strstr(msg, *frags))
			print_error("message %s lacks %s\n", msg, *frags);
		assert_non_null(strstr(msg, *frags));
	}
	btrfslayer_error_free(err);
}

#define expect_refused(id, what, ...) \
	check_refused(id, what, (const char *const[]){ __VA_ARGS__, NULL })

static void expect_ok(const char *id)
{
	btrfslayer_error *err = (btrfslayer_error *)&err; /* must be cleared */

	assert_int_equal(bl_id_check(id, "layer id", &err), 0);
	assert_null(err);
}

static void test_valid(void **state)
{
	static const char *const ids[] = {
		"a", "A", "0", "_", "-", "a.b", "a..b", "a.", "-rf", "_tmp",
		"abc123", "sha256-0123456789abcdef", "My_Layer-1.0",
		"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz_.-",
	};
	(void)state;
	for (size_t i = 0; i < sizeof(ids) / sizeof(ids[0]); i++)
		expect_ok(ids[i]);
}

static void test_message_example(void **state)
{
	(void)state;
	expect_refused("a/b", "layer id",
		       "invalid layer id \"a/b\": '/' is not allowed " RULE);
}

static void test_what_names_the_argument(void **state)
{
	(void)state;
	expect_refused("a/b", "parent id", "invalid parent id \"a/b\"");
	expect_refused("", "parent id", "invalid parent id \"\": empty");
}

static void test_empty_and_null(void **state)
{
	(void)state;
	expect_refused("", "layer id", "invalid layer id \"\": empty", RULE);
	expect_refused(NULL, "layer id", "invalid layer id: NULL", RULE);
}

static void test_leading_dot(void **state)
{
	(void)state;
	expect_refused(".", "layer id", "\".\"", "leading '.' is reserved");
	expect_refused("..", "layer id", "\"..\"", "leading '.' is reserved");
	expect_refused(".hidden", "layer id", "\".hidden\"",
		       "leading '.' is reserved");
	expect_refused(BL_TMP_PREFIX "x", "layer id", "leading '.' is reserved");
	expect_refused(BL_TOMB_PREFIX "x", "layer id",
		       "leading '.' is reserved");
}

static void test_length_limit(void **state)
{
	char id[BTRFSLAYER_ID_MAX + 2];
	(void)state;

	memset(id, 'a', sizeof(id) - 1);
	id[BTRFSLAYER_ID_MAX] = '\0';
	expect_ok(id);			/* 255 bytes */
	id[BTRFSLAYER_ID_MAX] = 'a';
	id[BTRFSLAYER_ID_MAX + 1] = '\0';
	expect_refused(id, "layer id", "longer than 255 bytes", RULE,
		       "\"aaaa", "...\"");	/* 256 bytes */
}

/* An id that is not NUL-terminated within 256 bytes must be refused without
 * reading past them (AddressSanitizer catches an overread of the heap). */
static void test_huge_unterminated(void **state)
{
	char *id = malloc(BTRFSLAYER_ID_MAX + 1);
	(void)state;

	assert_non_null(id);
	memset(id, 'x', BTRFSLAYER_ID_MAX + 1);
	expect_refused(id, "layer id", "longer than 255 bytes");
	free(id);

	/* a huge terminated one, too */
	size_t big = 1 << 20;
	id = malloc(big);
	assert_non_null(id);
	memset(id, 'x', big - 1);
	id[big - 1] = '\0';
	expect_refused(id, "layer id", "longer than 255 bytes");
	free(id);
}

static int allowed(unsigned c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
	       (c >= '0' && c <= '9') || c == '_' || c == '.' || c == '-';
}

/* Every byte value in the middle of an id, and at its start. */
static void test_every_byte(void **state)
{
	(void)state;
	for (unsigned c = 1; c <= 0xff; c++) {
		char mid[4] = { 'a', (char)c, 'b', '\0' };
		char first[3] = { (char)c, 'b', '\0' };
		char reason[32];

		if (c > 0x20 && c < 0x7f && c != '\'' && c != '\\')
			snprintf(reason, sizeof(reason), ": '%c' is not allowed", c);
		else
			snprintf(reason, sizeof(reason),
				 ": byte 0x%02x is not allowed", c);

		if (allowed(c)) {
			expect_ok(mid);
			if (c == '.')
				expect_refused(first, "layer id",
					       "leading '.' is reserved");
			else
				expect_ok(first);
		} else {
			expect_refused(mid, "layer id", reason, RULE);
			expect_refused(first, "layer id", reason, RULE);
		}
	}
}

/* The untrusted id is quoted: control bytes escaped, quotes escaped. */
static void test_quoting(void **state)
{
	(void)state;
	expect_refused("a\nb", "layer id", "\"a\\x0ab\"", "byte 0x0a");
	expect_refused("a\"b", "layer id", "\"a\\\"b\"", "'\"' is not allowed");
	expect_refused("a\x1b[31mb", "layer id", "\"a\\x1b[31mb\"",
		       "byte 0x1b");
	expect_refused("a b", "layer id", "\"a b\"", "byte 0x20");
	expect_refused("caf\xc3\xa9", "layer id", "\"caf\\xc3\\xa9\"",
		       "byte 0xc3");
}

/* The first offending byte is the one reported. */
static void test_first_bad_byte(void **state)
{
	(void)state;
	expect_refused("a/b c", "layer id", "'/' is not allowed");
	expect_refused("a b/c", "layer id", "byte 0x20 is not allowed");
}

static void test_err_may_be_null(void **state)
{
	(void)state;
	assert_int_equal(bl_id_check("ok", "layer id", NULL), 0);
	assert_int_equal(bl_id_check("a/b", "layer id", NULL), -EINVAL);
	assert_int_equal(bl_id_check(NULL, "layer id", NULL), -EINVAL);
	assert_int_equal(bl_id_check("", "layer id", NULL), -EINVAL);
}

static void test_id_not_modified(void **state)
{
	char id[] = "a/B";
	(void)state;

	expect_refused(id, "layer id", "'/' is not allowed");
	assert_string_equal(id, "a/B");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_valid),
		cmocka_unit_test(test_message_example),
		cmocka_unit_test(test_what_names_the_argument),
		cmocka_unit_test(test_empty_and_null),
		cmocka_unit_test(test_leading_dot),
		cmocka_unit_test(test_length_limit),
		cmocka_unit_test(test_huge_unterminated),
		cmocka_unit_test(test_every_byte),
		cmocka_unit_test(test_quoting),
		cmocka_unit_test(test_first_bad_byte),
		cmocka_unit_test(test_err_may_be_null),
		cmocka_unit_test(test_id_not_modified),
	};
	return cmocka_run_group_tests_name("id", tests, NULL, NULL);
}
