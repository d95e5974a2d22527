/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* User-namespace id maps: which host ids own what container root creates. */
#include <errno.h>

#include "internal.h"

static bool overlap(uint64_t a, uint64_t a_len, uint64_t b, uint64_t b_len)
{
	return a < b + b_len && b < a + a_len;
}

int bl_idmap_root(const btrfslayer_idmap *map, size_t n, const char *what,
		  uint32_t *root, btrfslayer_error **err)
{
	bool found = false;

	if (n == 0) {
		*root = 0;
		return 0;
	}
	if (!map)
		return bl_fail_msg(err, -EINVAL, "%s: %zu entries but no array", what, n);
	for (size_t i = 0; i < n; i++) {
		const btrfslayer_idmap *m = &map[i];
		/* 64-bit sums: a range may end exactly at 2^32, not past it */
		if (m->size == 0 ||
		    (uint64_t)m->container_id + m->size > UINT64_C(1) << 32 ||
		    (uint64_t)m->host_id + m->size > UINT64_C(1) << 32)
			return bl_fail_msg(err, -EINVAL,
					   "%s: entry %zu (%u %u %u): empty or past 2^32",
					   what, i, m->container_id, m->host_id, m->size);
		for (size_t j = 0; j < i; j++) {
			const btrfslayer_idmap *o = &map[j];
			if (overlap(m->container_id, m->size, o->container_id, o->size) ||
			    overlap(m->host_id, m->size, o->host_id, o->size))
				return bl_fail_msg(err, -EINVAL,
						   "%s: entries %zu and %zu overlap",
						   what, j, i);
		}
		if (m->container_id == 0) {
			*root = m->host_id;
			found = true;
		}
	}
	if (!found)
		return bl_fail_msg(err, -EINVAL, "%s: container id 0 is not mapped", what);
	return 0;
}
