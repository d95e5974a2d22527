/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Export of a layer's changes as an OCI layer tar: waits for the change
 * list (changes.c). */
#define _GNU_SOURCE
#include <errno.h>

#include "internal.h"

int btrfslayer_export(btrfslayer *h, const char *id, const char *parent, int fd,
		      uint32_t flags, btrfslayer_progress_fn progress, void *userdata,
		      btrfslayer_error **err)
{
	(void)parent, (void)fd, (void)flags, (void)progress, (void)userdata;
	int r = bl_check_handle_and_id(h, id, err);
	if (r < 0)
		return r;
	return bl_fail(err, -ENOSYS, "export: %s", id);
}
