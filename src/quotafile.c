/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * HOME/quotas/<id>: the size limit a layer was given, as the reference driver
 * writes it: the decimal byte count, nothing else.  The file comes from disk,
 * where anything may have been written, so it is parsed strictly.
 */
#include <errno.h>
#include <stdint.h>
#include <inttypes.h>
#include <stdio.h>

#include "internal.h"

int bl_quota_file_parse(const char *buf, size_t len, uint64_t *bytes)
{
	uint64_t v = 0;
	size_t i = 0;

	/* one trailing newline, as an editor leaves it, is not garbage */
	if (len > 0 && buf[len - 1] == '\n')
		len--;
	if (len == 0 || len > BL_QUOTA_FILE_MAX - 1)
		return -EINVAL;
	for (; i < len; i++) {
		if (buf[i] < '0' || buf[i] > '9')
			return -EINVAL;
		unsigned digit = (unsigned)(buf[i] - '0');
		if (v > (UINT64_MAX - digit) / 10)
			return -ERANGE;
		v = v * 10 + digit;
	}
	/* size=0 is refused at create, so a 0 on disk was not written by us */
	if (v == 0)
		return -EINVAL;
	/* nor was 2^64-1, which the kernel would take for "no limit" */
	if (v == UINT64_MAX)
		return -ERANGE;
	*bytes = v;
	return 0;
}

int bl_quota_file_format(uint64_t bytes, char buf[BL_QUOTA_FILE_MAX])
{
	return snprintf(buf, BL_QUOTA_FILE_MAX, "%" PRIu64, bytes);
}
