/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* bl_parse_size(): Docker's size syntax, from raw bytes (NULs included). */
#include <errno.h>
#include <string.h>

#include "fuzz.h"
#include "internal.h"

#define UNTOUCHED UINT64_C(0x5a5a5a5a5a5a5a5a)

static unsigned shift_of(char c)
{
	switch (c) {
	case 'k': case 'K': return 10;
	case 'm': case 'M': return 20;
	case 'g': case 'G': return 30;
	case 't': case 'T': return 40;
	case 'p': case 'P': return 50;
	}
	return 0;
}

/* An independent answer for the simple shapes "<digits>" and "<digits><unit>":
 * 1 with *value, 0 when it does not fit in 64 bits, -1 for other shapes. */
static int simple(const char *s, uint64_t *value)
{
	size_t n = strspn(s, "0123456789");
	if (n == 0)
		return -1;
	unsigned shift = 0;
	if (s[n] && (s[n + 1] || !(shift = shift_of(s[n]))))
		return -1;
	unsigned __int128 v = 0;
	for (size_t i = 0; i < n; i++) {
		v = v * 10 + (unsigned)(s[i] - '0');
		if (v > UINT64_MAX)
			return 0;
	}
	v <<= shift;
	if (v > UINT64_MAX)
		return 0;
	*value = (uint64_t)v;
	return 1;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *s = fuzz_string(data, size);
	uint64_t a = UNTOUCHED, b = UNTOUCHED, expected;
	int r = bl_parse_size(s, &a);

	CHECK(r == 0 || r == -EINVAL || r == -ERANGE);
	if (r < 0) {
		CHECK(a == UNTOUCHED);	/* a refused size sets nothing */
	} else {
		/* accepted: it starts with a digit, holds only the syntax's
		 * bytes, and parses to the same value again */
		CHECK(s[0] >= '0' && s[0] <= '9');
		CHECK(strspn(s, "0123456789. kKmMgGtTpPiIbB") == strlen(s));
		CHECK(bl_parse_size(s, &b) == 0 && a == b);
	}
	int k = simple(s, &expected);
	if (k == 1)
		CHECK(r == 0 && a == expected);
	else if (k == 0)
		CHECK(r == -ERANGE);
	free(s);
	return 0;
}
