/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* bl_options_parse(): "key=value" strings, and what a refusal says. */
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

#define N(a) (sizeof(a) / sizeof((a)[0]))

/*
 * Allocation failures.  Linked with -Wl,--wrap=malloc, every malloc() in the
 * library's objects comes here; without that flag __real_malloc stays NULL
 * and the allocation-failure test skips.
 */
extern void *__real_malloc(size_t size) __attribute__((weak));
void *__wrap_malloc(size_t size);

static long fail_after = -1;	/* allocations to let through; -1: all */
static int fail_sticky;		/* keep failing once failed */
static int failed;

void *__wrap_malloc(size_t size)
{
	if (fail_after == 0) {
		failed = 1;
		if (!fail_sticky)
			fail_after = -1;
		return NULL;
	}
	if (fail_after > 0)
		fail_after--;
	return __real_malloc(size);
}

/* A value the parser must leave alone when it fails. */
static struct bl_option untouched;

/* Check that parsing fails with code and a message holding each of the
 * NULL-terminated fragments, and touches neither *out nor the input. */
static void check_refused(const char *const *opts, size_t n, const char *what,
			  int code, const char *const *frags)
{
	struct bl_option *out = &untouched;
	btrfslayer_error *err = NULL;

	assert_int_equal(bl_options_parse(opts, n, what, &out, &err), code);
	assert_ptr_equal(out, &untouched);
	assert_non_null(err);
	assert_int_equal(btrfslayer_error_code(err), code);
	const char *msg = btrfslayer_error_message(err);
	for (; *frags; frags++) {
		if (!strstr(msg, *frags))
			print_error("message %s lacks %s\n", msg, *frags);
		assert_non_null(strstr(msg, *frags));
	}
	btrfslayer_error_free(err);
	/* and the same without an error object */
	assert_int_equal(bl_options_parse(opts, n, what, &out, NULL), code);
	assert_ptr_equal(out, &untouched);
}

#define expect_refused(opts, n, what, ...) \
	check_refused(opts, n, what, -EINVAL, \
		      (const char *const[]){ __VA_ARGS__, NULL })

static void expect_one_refused(const char *opt, const char *what,
			       const char *frag1, const char *frag2)
{
	const char *opts[] = { opt };
	check_refused(opts, 1, what, -EINVAL,
		      (const char *const[]){ frag1, frag2, NULL });
}

static struct bl_option *parse_ok(const char *const *opts, size_t n)
{
	struct bl_option *out = &untouched;
	btrfslayer_error *err = (btrfslayer_error *)&err; /* must be cleared */

	int r = bl_options_parse(opts, n, "option", &out, &err);
	if (r != 0)
		print_error("%s\n", btrfslayer_error_message(err));
	assert_int_equal(r, 0);
	assert_null(err);
	assert_ptr_not_equal(out, &untouched);
	return out;
}

static void expect_pair(const char *opt, const char *key, const char *value)
{
	struct bl_option *o = parse_ok(&opt, 1);
	assert_string_equal(o[0].key, key);
	assert_string_equal(o[0].value, value);
	bl_options_free(o, 1);
}

static void test_valid(void **state)
{
	static const struct {
		const char *opt, *key, *value;
	} cases[] = {
		{ "size=10G", "size", "10G" },
		{ "btrfs.min_space=1G", "btrfs.min_space", "1G" },
		{ "a-b_c.d9=x", "a-b_c.d9", "x" },
		/* keys lower-cased, values kept as given */
		{ "SIZE=10G", "size", "10G" },
		{ "BtrFS.Min_Space=AbC", "btrfs.min_space", "AbC" },
		/* ASCII whitespace trimmed on both sides of both halves */
		{ " size =10G", "size", "10G" },
		{ "\t\n\v\f\r size \t\n\v\f\r=\t\n\v\f\r 10G \t\n\v\f\r",
		  "size", "10G" },
		/* spaces inside the value are kept */
		{ "label= a b  c ", "label", "a b  c" },
		/* split at the first '=' only */
		{ "a=b=c", "a", "b=c" },
		{ "a==", "a", "=" },
		{ "a= =", "a", "=" },
		/* any byte in a value */
		{ "k=\xc3\xa9\x01/\"", "k", "\xc3\xa9\x01/\"" },
		/* non-ASCII spaces are not trimmed (U+00A0 in UTF-8) */
		{ "k=\xc2\xa0v\xc2\xa0", "k", "\xc2\xa0v\xc2\xa0" },
	};
	(void)state;
	for (size_t i = 0; i < N(cases); i++)
		expect_pair(cases[i].opt, cases[i].key, cases[i].value);
}

static void test_several(void **state)
{
	const char *opts[] = { "a=1", "B=2", " c = 3 ", "d=4=4" };
	const char *keys[] = { "a", "b", "c", "d" };
	const char *values[] = { "1", "2", "3", "4=4" };
	(void)state;

	struct bl_option *o = parse_ok(opts, N(opts));
	for (size_t i = 0; i < N(opts); i++) {
		assert_string_equal(o[i].key, keys[i]);
		assert_string_equal(o[i].value, values[i]);
	}
	/* the input is left as it was */
	assert_string_equal(opts[2], " c = 3 ");
	bl_options_free(o, N(opts));
}

static void test_empty_list(void **state)
{
	const char *opts[] = { "ignored" };
	struct bl_option *out = &untouched;
	btrfslayer_error *err = (btrfslayer_error *)&err;
	(void)state;

	assert_int_equal(bl_options_parse(NULL, 0, "option", &out, &err), 0);
	assert_null(out);
	assert_null(err);
	out = &untouched;
	assert_int_equal(bl_options_parse(opts, 0, "option", &out, NULL), 0);
	assert_null(out);
	bl_options_free(NULL, 0);
}

static void test_null_list(void **state)
{
	(void)state;
	expect_refused(NULL, 2, "option", "invalid option list: NULL");
}

static void test_malformed(void **state)
{
	(void)state;
	expect_one_refused("size", "storage option",
			   "invalid storage option \"size\": expected key=value",
			   NULL);
	expect_one_refused("", "option", "invalid option \"\"",
			   "expected key=value");
	expect_one_refused("   ", "option", "\"   \"", "expected key=value");
	expect_one_refused("=1", "option", "\"=1\"", "empty key");
	expect_one_refused(" \t=1", "option", "\" \\x09=1\"", "empty key");
	expect_one_refused("=", "option", "\"=\"", "empty key");
	expect_one_refused("size=", "option", "\"size=\"", "empty value");
	expect_one_refused("size=  \t", "option", "\"size=  \\x09\"",
			   "empty value");
	expect_one_refused("si ze=1", "option", "\"si ze=1\"",
			   "byte 0x20 is not allowed in a key");
	expect_one_refused("a/b=1", "option", "\"a/b=1\"",
			   "'/' is not allowed in a key");
	expect_one_refused("a:b=1", "option", "\"a:b=1\"",
			   "':' is not allowed in a key");
	expect_one_refused("caf\xc3\xa9=1", "option", "\"caf\\xc3\\xa9=1\"",
			   "byte 0xc3 is not allowed in a key");
	/* U+00A0 around a key is not whitespace to us, so it is refused */
	expect_one_refused("\xc2\xa0size=1", "option", "\\xc2\\xa0size=1",
			   "byte 0xc2 is not allowed in a key");
}

static int key_byte(unsigned c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
	       (c >= '0' && c <= '9') || c == '_' || c == '.' || c == '-';
}

/* Every byte value inside a key. */
static void test_every_key_byte(void **state)
{
	(void)state;
	for (unsigned c = 1; c <= 0xff; c++) {
		char opt[] = { 'a', (char)c, 'b', '=', 'v', '\0' };
		char key[] = { 'a', (char)c, 'b', '\0' };
		char reason[48];

		if (c == '=') {
			expect_pair(opt, "a", "b=v");
			continue;
		}
		if (key_byte(c)) {
			if (c >= 'A' && c <= 'Z')
				key[1] = (char)(c - 'A' + 'a');
			expect_pair(opt, key, "v");
			continue;
		}
		if (c > 0x20 && c < 0x7f && c != '\'' && c != '\\')
			snprintf(reason, sizeof(reason),
				 ": '%c' is not allowed in a key", c);
		else
			snprintf(reason, sizeof(reason),
				 ": byte 0x%02x is not allowed in a key", c);
		expect_one_refused(opt, "option", reason, "[A-Za-z0-9._-]");
	}
}

static void test_null_entry(void **state)
{
	const char *first[] = { NULL, "a=1" };
	const char *later[] = { "a=1", "b=2", NULL, "c=3" };
	(void)state;

	expect_refused(first, 2, "option", "invalid option at index 0: NULL");
	/* the entries parsed before it are freed (LeakSanitizer checks) */
	expect_refused(later, 4, "storage option",
		       "invalid storage option at index 2: NULL");
}

static void test_duplicates(void **state)
{
	const char *same[] = { "size=1", "size=2" };
	const char *cased[] = { "Size=1", "size=2" };
	const char *spaced[] = { "a=1", " SIZE =1", "b=2", "size\t=2" };
	(void)state;

	expect_refused(same, 2, "option",
		       "invalid option \"size=2\": duplicate key \"size\" "
		       "(already given as \"size=1\")");
	expect_refused(cased, 2, "storage option",
		       "invalid storage option \"size=2\": duplicate key \"size\"",
		       "\"Size=1\"");
	expect_refused(spaced, 4, "option", "\"size\\x09=2\"",
		       "duplicate key \"size\"", "\" SIZE =1\"");
}

/* A later bad entry frees the good ones before it. */
static void test_error_after_good_entries(void **state)
{
	const char *opts[] = { "a=1", "b=2", "c" };
	(void)state;
	expect_refused(opts, 3, "option", "\"c\": expected key=value");
}

static void test_length_limit(void **state)
{
	char *s = malloc(BL_OPTION_MAX + 2);
	(void)state;

	assert_non_null(s);
	memset(s, 'v', BL_OPTION_MAX + 1);
	memcpy(s, "k=", 2);
	s[BL_OPTION_MAX] = '\0';			/* 4096 bytes */
	struct bl_option *o = parse_ok((const char *const *)&s, 1);
	assert_string_equal(o[0].key, "k");
	assert_int_equal(strlen(o[0].value), BL_OPTION_MAX - 2);
	bl_options_free(o, 1);

	s[BL_OPTION_MAX] = 'v';
	s[BL_OPTION_MAX + 1] = '\0';			/* 4097 bytes */
	expect_one_refused(s, "option", "longer than 4096 bytes",
			   "\"k=vvvv");
	free(s);
}

/* An unterminated 4097-byte buffer: refused without reading past it. */
static void test_no_overread(void **state)
{
	char *s = malloc(BL_OPTION_MAX + 1);
	(void)state;

	assert_non_null(s);
	memset(s, 'x', BL_OPTION_MAX + 1);
	expect_one_refused(s, "option", "longer than 4096 bytes", "...\"");
	s[1] = '=';
	expect_one_refused(s, "option", "longer than 4096 bytes", "\"x=xx");
	free(s);
}

static void test_err_may_be_null(void **state)
{
	const char *good[] = { "a=1" };
	const char *bad[] = { "a" };
	struct bl_option *out = NULL;
	(void)state;

	assert_int_equal(bl_options_parse(good, 1, "option", &out, NULL), 0);
	assert_non_null(out);
	bl_options_free(out, 1);
	out = &untouched;
	assert_int_equal(bl_options_parse(bad, 1, "option", &out, NULL),
			 -EINVAL);
	assert_ptr_equal(out, &untouched);
}

/* Fail each allocation in turn, once and then for good: every outcome is
 * success or -ENOMEM with nothing leaked and *out untouched. */
static void run_with_failures(const char *const *opts, size_t n, int expect,
			      int sticky)
{
	for (long k = 0;; k++) {
		struct bl_option *out = &untouched;
		btrfslayer_error *err = NULL;

		failed = 0;
		fail_sticky = sticky;
		fail_after = k;
		int r = bl_options_parse(opts, n, "option", &out, &err);
		fail_after = -1;
		if (!failed) {
			/* k is past the last allocation */
			assert_int_equal(r, expect);
			if (r == 0)
				bl_options_free(out, n);
			btrfslayer_error_free(err);
			break;
		}
		assert_true(r == -ENOMEM || r == expect);
		if (r == 0) {
			bl_options_free(out, n);
			continue;
		}
		assert_ptr_equal(out, &untouched);
		assert_non_null(err);
		const char *msg = btrfslayer_error_message(err);
		if (btrfslayer_error_code(err) != r) {
			/* error.c's fallback when the error object itself
			 * could not be allocated */
			assert_int_equal(btrfslayer_error_code(err), -ENOMEM);
			assert_non_null(strstr(msg, "out of memory"));
		} else if (r == -ENOMEM) {
			assert_non_null(strstr(msg, "memory"));
		}
		btrfslayer_error_free(err);
	}
}

static void test_out_of_memory(void **state)
{
	const char *good[] = { "a=1", "B = 2", "c=3" };
	const char *dup[] = { "a=1", "b=2", "A=3" };
	const char *bad[] = { "a=1", "b=2", "c" };
	(void)state;

	if (!__real_malloc)
		skip();
	for (int sticky = 0; sticky < 2; sticky++) {
		run_with_failures(good, N(good), 0, sticky);
		run_with_failures(dup, N(dup), -EINVAL, sticky);
		run_with_failures(bad, N(bad), -EINVAL, sticky);
	}
}

/* Option values that are switches: a small, closed, case-insensitive set. */
static void test_bool(void **state)
{
	static const char *const yes[] = { "true", "TRUE", "True", "yes", "YES", "1" };
	static const char *const no[] = { "false", "FALSE", "no", "No", "0" };
	static const char *const bad[] = { "", "t", "f", "2", "on", "off", "truee", "tru",
					   "yes ", "01", "\xc4\xb0", "-1" };
	(void)state;

	for (size_t i = 0; i < N(yes); i++) {
		bool b = false;
		assert_int_equal(bl_parse_bool(yes[i], &b), 0);
		assert_true(b);
	}
	for (size_t i = 0; i < N(no); i++) {
		bool b = true;
		assert_int_equal(bl_parse_bool(no[i], &b), 0);
		assert_false(b);
	}
	for (size_t i = 0; i < N(bad); i++) {
		bool b = true;
		if (bl_parse_bool(bad[i], &b) != -EINVAL)
			fail_msg("\"%s\" was accepted", bad[i]);
		assert_true(b);	/* untouched */
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_valid),
		cmocka_unit_test(test_several),
		cmocka_unit_test(test_empty_list),
		cmocka_unit_test(test_null_list),
		cmocka_unit_test(test_malformed),
		cmocka_unit_test(test_every_key_byte),
		cmocka_unit_test(test_null_entry),
		cmocka_unit_test(test_duplicates),
		cmocka_unit_test(test_error_after_good_entries),
		cmocka_unit_test(test_length_limit),
		cmocka_unit_test(test_no_overread),
		cmocka_unit_test(test_err_may_be_null),
		cmocka_unit_test(test_out_of_memory),
		cmocka_unit_test(test_bool),
	};
	return cmocka_run_group_tests_name("options", tests, NULL, NULL);
}
