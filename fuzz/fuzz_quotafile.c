/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* bl_quota_file_parse(): HOME/quotas/<id> as read from disk, raw bytes. */
#include <errno.h>
#include <string.h>

#include "fuzz.h"
#include "internal.h"

#define UNTOUCHED UINT64_C(0xa5a5a5a5a5a5a5a5)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	/* exactly size bytes, not NUL-terminated, as read() leaves them */
	char *buf = malloc(size ? size : 1);
	CHECK(buf);
	memcpy(buf, data, size);
	uint64_t v = UNTOUCHED;
	int r = bl_quota_file_parse(buf, size, &v);

	if (r < 0) {
		CHECK(r == -EINVAL || r == -ERANGE);
		CHECK(v == UNTOUCHED);
	} else {
		/* 2^64-1 is the kernel's "no limit", never a limit */
		CHECK(r == 0 && v > 0 && v < UINT64_MAX);
		/* digits, then at most one newline */
		size_t len = size && buf[size - 1] == '\n' ? size - 1 : size;
		CHECK(len > 0);
		for (size_t i = 0; i < len; i++)
			CHECK(buf[i] >= '0' && buf[i] <= '9');
		/* what format writes for it parses back to it, and is the
		 * input without its leading zeros and newline */
		char out[BL_QUOTA_FILE_MAX];
		int n = bl_quota_file_format(v, out);
		CHECK(n > 0 && n < BL_QUOTA_FILE_MAX);
		uint64_t again = 0;
		CHECK(bl_quota_file_parse(out, (size_t)n, &again) == 0 && again == v);
		size_t zeros = 0;
		while (zeros < len && buf[zeros] == '0')
			zeros++;
		CHECK(len - zeros == (size_t)n && !memcmp(buf + zeros, out, (size_t)n));
	}
	free(buf);
	return 0;
}
