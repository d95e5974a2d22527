/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Sizes in Docker's syntax (go-units RAMInBytes), i.e. the regular expression
 * ^(\d+(\.\d+)?) ?([kKmMgGtTpP])?[iI]?[bB]?$ with binary multipliers.
 *
 * Go parses the number as a float and truncates; we compute the same
 * truncated value exactly, in integers, so that large sizes do not lose
 * bytes to rounding.
 */
#include <errno.h>
#include <stdint.h>

#include "internal.h"

struct size_syntax {
	const char *int_digits;
	size_t n_int;
	const char *frac_digits;
	size_t n_frac;		/* 0 when there is no fraction */
	unsigned shift;		/* the unit as a power of two */
};

static int is_digit(char c)
{
	return c >= '0' && c <= '9';
}

static size_t count_digits(const char *s)
{
	size_t n = 0;
	while (is_digit(s[n]))
		n++;
	return n;
}

static int unit_shift(char c, unsigned *shift)
{
	switch (c) {
	case 'k': case 'K': *shift = 10; return 1;
	case 'm': case 'M': *shift = 20; return 1;
	case 'g': case 'G': *shift = 30; return 1;
	case 't': case 'T': *shift = 40; return 1;
	case 'p': case 'P': *shift = 50; return 1;
	}
	return 0;
}

/* Match the whole string against the syntax; no arithmetic yet, so that a
 * malformed string is -EINVAL even when its number would be too big. */
static int scan_size(const char *s, struct size_syntax *sx)
{
	sx->int_digits = s;
	sx->n_int = count_digits(s);
	if (!sx->n_int)
		return -EINVAL;
	s += sx->n_int;
	sx->frac_digits = NULL;
	sx->n_frac = 0;
	if (*s == '.') {
		sx->frac_digits = s + 1;
		sx->n_frac = count_digits(s + 1);
		if (!sx->n_frac)
			return -EINVAL;
		s += 1 + sx->n_frac;
	}
	if (*s == ' ')
		s++;
	sx->shift = 0;
	if (unit_shift(*s, &sx->shift))
		s++;
	if (*s == 'i' || *s == 'I')
		s++;
	if (*s == 'b' || *s == 'B')
		s++;
	return *s ? -EINVAL : 0;
}

static int parse_integer(const char *d, size_t n, uint64_t *out)
{
	uint64_t v = 0;
	for (size_t i = 0; i < n; i++) {
		unsigned digit = (unsigned)(d[i] - '0');
		if (v > (UINT64_MAX - digit) / 10)
			return -ERANGE;
		v = v * 10 + digit;
	}
	*out = v;
	return 0;
}

/*
 * floor(0.d1d2...dn * mul), exactly.  Going from the last digit, carry is
 * floor(0.dk...dn * mul); the next one is floor((d(k-1) * mul + carry) / 10)
 * because floor((a + floor(x)) / 10) = floor((a + x) / 10) for an integer a.
 * carry < mul throughout, so with mul <= 2^50 the sum stays below 10 * 2^50
 * however many digits there are.
 */
static uint64_t fraction_times(const char *d, size_t n, uint64_t mul)
{
	uint64_t carry = 0;
	for (size_t i = n; i > 0; i--) {
		uint64_t t = (uint64_t)(d[i - 1] - '0') * mul + carry;
		carry = t / 10;
	}
	return carry;
}

int bl_parse_size(const char *s, uint64_t *out)
{
	struct size_syntax sx;
	uint64_t whole;

	if (!s || !out)
		return -EINVAL;
	int r = scan_size(s, &sx);
	if (r < 0)
		return r;
	r = parse_integer(sx.int_digits, sx.n_int, &whole);
	if (r < 0)
		return r;

	uint64_t mul = UINT64_C(1) << sx.shift;
	if (whole > UINT64_MAX >> sx.shift)
		return -ERANGE;
	whole <<= sx.shift;
	uint64_t part = fraction_times(sx.frac_digits, sx.n_frac, mul);
	if (part > UINT64_MAX - whole)
		return -ERANGE;
	*out = whole + part;
	return 0;
}

BTRFSLAYER_API int btrfslayer_parse_size(const char *s, uint64_t *bytes)
{
	if (!s || !bytes)
		return -EINVAL;
	return bl_parse_size(s, bytes);
}
