/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * bl_options_parse(): "key=value" lists.  The input is split at 0x1e into
 * option strings, each kept with any NUL it holds (the library sees the
 * string end there, as a C caller's would); a lone 0x1f is a NULL entry.
 */
#include <errno.h>
#include <string.h>

#include "fuzz.h"
#include "internal.h"

#define MAX_OPTS 64

static int is_space(char c)
{
	return c == ' ' || c == '\t' || c == '\n' || c == '\v' || c == '\f' || c == '\r';
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *strings[MAX_OPTS];
	const char *opts[MAX_OPTS];
	size_t n = 0, start = 0;

	for (size_t i = 0; i <= size && n < MAX_OPTS; i++) {
		if (i < size && data[i] != 0x1e)
			continue;
		size_t len = i - start;
		if (len == 1 && data[start] == 0x1f) {
			strings[n] = NULL;
		} else {
			strings[n] = malloc(len + 1);
			CHECK(strings[n]);
			memcpy(strings[n], data + start, len);
			strings[n][len] = '\0';
		}
		opts[n] = strings[n];
		n++;
		start = i + 1;
	}

	struct bl_option *parsed = NULL;
	btrfslayer_error *err = NULL;
	int r = bl_options_parse(opts, n, "option", &parsed, &err);
	if (r == 0) {
		CHECK(err == NULL);
		CHECK(n == 0 || parsed != NULL);
		for (size_t i = 0; i < n; i++) {
			const char *k = parsed[i].key, *v = parsed[i].value;
			size_t kl = strlen(k), vl = strlen(v);
			CHECK(opts[i] != NULL);
			CHECK(kl > 0 && vl > 0 && kl + vl < BL_OPTION_MAX);
			CHECK(strspn(k, "abcdefghijklmnopqrstuvwxyz0123456789._-") == kl);
			CHECK(!is_space(v[0]) && !is_space(v[vl - 1]));
			/* the value is a piece of the caller's string */
			CHECK(strstr(opts[i], v) != NULL);
			for (size_t j = 0; j < i; j++)
				CHECK(strcmp(parsed[j].key, k) != 0);
			/* what open does with a value it knows */
			uint64_t bytes;
			int s = bl_parse_size(v, &bytes);
			CHECK(s == 0 || s == -EINVAL || s == -ERANGE);
		}
		bl_options_free(parsed, n);
	} else {
		CHECK(r == -EINVAL || r == -ENOMEM);
		CHECK(err != NULL && btrfslayer_error_code(err) == r);
		CHECK(fuzz_printable(btrfslayer_error_message(err)));
		btrfslayer_error_free(err);
	}
	for (size_t i = 0; i < n; i++)
		free(strings[i]);
	return 0;
}
