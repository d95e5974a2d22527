/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* bl_parse_size(): Docker's size syntax, computed exactly. */
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

#define KiB (UINT64_C(1) << 10)
#define MiB (UINT64_C(1) << 20)
#define GiB (UINT64_C(1) << 30)
#define TiB (UINT64_C(1) << 40)
#define PiB (UINT64_C(1) << 50)
#define SENTINEL UINT64_C(0xdeadbeefcafef00d)

#define N(a) (sizeof(a) / sizeof((a)[0]))

static void expect_size(const char *s, uint64_t want)
{
	uint64_t got = SENTINEL;
	int r = bl_parse_size(s, &got);

	if (r != 0 || got != want)
		print_error("\"%s\": got %d, %llu; want 0, %llu\n", s, r,
			    (unsigned long long)got, (unsigned long long)want);
	assert_int_equal(r, 0);
	assert_true(got == want);
}

/* A refused size leaves *out as it was. */
static void expect_error(const char *s, int code)
{
	uint64_t got = SENTINEL;
	int r = bl_parse_size(s, &got);

	if (r != code)
		print_error("\"%s\": got %d, want %d\n", s ? s : "(null)", r,
			    code);
	assert_int_equal(r, code);
	assert_true(got == SENTINEL);
}

struct valid {
	const char *s;
	uint64_t want;
};

static void test_examples(void **state)
{
	static const struct valid cases[] = {
		{ "100", 100 },
		{ "10G", 10 * GiB },
		{ "10 G", 10 * GiB },
		{ "512mb", 512 * MiB },
		{ "1.5GiB", 3 * GiB / 2 },
		{ "10k", 10 * KiB },
		{ "10KiB", 10 * KiB },
		{ "10i", 10 },
		{ "10b", 10 },
		{ "10ib", 10 },
		{ "10 ", 10 },
		{ "0", 0 },
		{ "000", 0 },
		{ "0k", 0 },
		{ "1", 1 },
		{ "0000000000000000000000000000000001k", KiB },
	};
	(void)state;
	for (size_t i = 0; i < N(cases); i++)
		expect_size(cases[i].s, cases[i].want);
}

/* Every unit letter in both cases, with each optional suffix. */
static void test_units_and_suffixes(void **state)
{
	static const struct {
		char unit;
		uint64_t mul;
	} units[] = {
		{ 'k', KiB }, { 'm', MiB }, { 'g', GiB }, { 't', TiB },
		{ 'p', PiB },
	};
	static const char *const suffixes[] = {
		"", "i", "I", "b", "B", "ib", "iB", "Ib", "IB",
	};
	(void)state;
	for (size_t u = 0; u < N(units); u++) {
		for (int upper = 0; upper < 2; upper++) {
			for (size_t x = 0; x < N(suffixes); x++) {
				char s[32];
				char c = upper ? (char)(units[u].unit - 32)
					       : units[u].unit;
				snprintf(s, sizeof(s), "3%c%s", c, suffixes[x]);
				expect_size(s, 3 * units[u].mul);
				snprintf(s, sizeof(s), "3 %c%s", c, suffixes[x]);
				expect_size(s, 3 * units[u].mul);
			}
		}
	}
}

/* Truncated towards zero like Go's int64(float64), but exact. */
static void test_fractions(void **state)
{
	static const struct valid cases[] = {
		{ "1.5k", 1536 },
		{ "0.5m", 524288 },
		{ "0.1", 0 },
		{ "1.9", 1 },
		{ "1.99999b", 1 },
		{ "0.0009k", 0 },	/* 0.9216 bytes */
		{ "0.001k", 1 },	/* 1.024 bytes */
		{ "2.5 PiB", 2814749767106560 },
		{ "123.456m", 129452998 },
		{ "1.1T", 1209462790553 },
		{ "1.000", 1 },
		{ "1.0k", KiB },
		/* 2^30 * 1e-10 is 0.107 bytes: truncated away */
		{ "1.0000000001G", GiB },
		/* 2^50 * 1e-10 = 112589.99...: floating point rounds up */
		{ "1.0000000001P", UINT64_C(1125899906955213) },
		{ "0.000000000000001P", 1 },	/* 1.1259 bytes */
		{ "3.14159265358979323846264338327950288T",
		  UINT64_C(3454217652357) },
		/* 2^53 + 1 is not a double */
		{ "9007199254740993", UINT64_C(9007199254740993) },
		{ "9007199254740993.0", UINT64_C(9007199254740993) },
	};
	(void)state;
	for (size_t i = 0; i < N(cases); i++)
		expect_size(cases[i].s, cases[i].want);
}

/* Hundreds of fraction digits: still exact, nothing overflows. */
static void test_long_fractions(void **state)
{
	char s[512];
	(void)state;

	/* 0.999...9 (300 nines) PiB is one byte short of 1 PiB */
	strcpy(s, "0.");
	memset(s + 2, '9', 300);
	strcpy(s + 302, "p");
	expect_size(s, PiB - 1);
	strcpy(s + 302, "");
	expect_size(s, 0);

	/* 0.111...1 (400 ones) PiB = floor(2^50 / 9) */
	strcpy(s, "0.");
	memset(s + 2, '1', 400);
	strcpy(s + 402, "P");
	expect_size(s, PiB / 9);

	/* trailing zeros change nothing */
	strcpy(s, "1.5");
	memset(s + 3, '0', 450);
	strcpy(s + 453, "k");
	expect_size(s, 1536);
}

static void test_limits(void **state)
{
	static const struct valid cases[] = {
		{ "18446744073709551615", UINT64_MAX },
		{ "18446744073709551615b", UINT64_MAX },
		/* the fraction is truncated away before any overflow */
		{ "18446744073709551615.999999", UINT64_MAX },
		{ "00018446744073709551615", UINT64_MAX },
		{ "16383P", 16383 * PiB },
		{ "16383.999999999999999999999P", UINT64_MAX },
		{ "17179869183.99999999999G", UINT64_MAX },
		{ "17179869183G", 17179869183 * GiB },
		{ "18014398509481983k", UINT64_MAX - 1023 },
	};
	(void)state;
	for (size_t i = 0; i < N(cases); i++)
		expect_size(cases[i].s, cases[i].want);
}

static void test_out_of_range(void **state)
{
	static const char *const cases[] = {
		"18446744073709551616",		/* UINT64_MAX + 1 */
		"18446744073709551616b",
		"18446744073709551616.0",
		"18446744073709551620",
		"99999999999999999999999",
		"99999999999999999999999999999999999999999999999999",
		"16384P",			/* exactly 2^64 */
		"16384.0P",
		"16384 PiB",
		"17179869184G",
		"17179869184.5G",
		"18014398509481984k",
	};
	(void)state;
	for (size_t i = 0; i < N(cases); i++)
		expect_error(cases[i], -ERANGE);
}

static void test_malformed(void **state)
{
	static const char *const cases[] = {
		"", " 10", "-1G", "+1G", "abc", "1.", ".5", "1.2.3", "10x",
		"10GG", "10 G B", "1e3", "0x10", "10  ", "10  G", "10\tG",
		"10\n", "\n10", "G", "k10", "10bi", "10Gbb", "10Gii", "10 G ",
		"1,5G", "1 000", "10kB ", "1. 5", "1 .5", "10K i", "\xef\xbc\x91",
		"10e", "10 e", "nan", "inf", "0b101", "10.5.", "1..5", "10G\x01",
		/* malformed AND too big: malformedness wins */
		"99999999999999999999999x",
	};
	(void)state;
	for (size_t i = 0; i < N(cases); i++)
		expect_error(cases[i], -EINVAL);
	expect_error(NULL, -EINVAL);
}

/* Strings in buffers of their exact size: ASan reports any read past the
 * NUL, e.g. from looking ahead for a suffix. */
static void test_no_overread(void **state)
{
	static const struct {
		const char *s;
		int code;
	} cases[] = {
		{ "7", 0 }, { "7.", -EINVAL }, { "7.5", 0 }, { "7 ", 0 },
		{ "7k", 0 }, { "7ki", 0 }, { "7kib", 0 }, { "7x", -EINVAL },
		{ "", -EINVAL },
	};
	(void)state;
	for (size_t i = 0; i < N(cases); i++) {
		size_t len = strlen(cases[i].s) + 1;
		char *s = malloc(len);
		uint64_t got = SENTINEL;

		assert_non_null(s);
		memcpy(s, cases[i].s, len);
		assert_int_equal(bl_parse_size(s, &got), cases[i].code);
		free(s);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_examples),
		cmocka_unit_test(test_units_and_suffixes),
		cmocka_unit_test(test_fractions),
		cmocka_unit_test(test_long_fractions),
		cmocka_unit_test(test_limits),
		cmocka_unit_test(test_out_of_range),
		cmocka_unit_test(test_malformed),
		cmocka_unit_test(test_no_overread),
	};
	return cmocka_run_group_tests_name("units", tests, NULL, NULL);
}
