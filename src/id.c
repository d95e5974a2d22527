/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Layer ids: one path component, safe to use as a name under subvolumes/. */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "internal.h"

#define ID_RULE "ids are 1-255 bytes of [A-Za-z0-9_.-], not starting with '.'"
_Static_assert(BTRFSLAYER_ID_MAX == 255, "update the messages below");

static int id_byte_ok(unsigned char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
	       (c >= '0' && c <= '9') || c == '_' || c == '.' || c == '-';
}

/* Name a refused byte so that the reason reads well and stays printable. */
static void bad_byte_reason(char *buf, size_t len, unsigned char c)
{
	if (c > 0x20 && c < 0x7f && c != '\'' && c != '\\')
		snprintf(buf, len, "'%c' is not allowed", c);
	else
		snprintf(buf, len, "byte 0x%02x is not allowed", c);
}

static int refuse(btrfslayer_error **err, const char *what, const char *id,
		  const char *reason)
{
	char q[BL_QUOTE_MAX];

	return bl_fail_msg(err, -EINVAL, "invalid %s %s: %s (" ID_RULE ")",
			   what, bl_quote(q, sizeof(q), id), reason);
}

int bl_id_check(const char *id, const char *what, btrfslayer_error **err)
{
	char reason[48];

	if (!what)
		what = "layer id";
	if (!id)
		return bl_fail_msg(err, -EINVAL,
				   "invalid %s: NULL (" ID_RULE ")", what);

	/* Bounded: the id may be huge or come from anywhere. */
	size_t len = strnlen(id, BTRFSLAYER_ID_MAX + 1);
	if (len == 0)
		return refuse(err, what, id, "empty");
	if (len > BTRFSLAYER_ID_MAX)
		return refuse(err, what, id, "longer than 255 bytes");
	/* Also refuses "." and "..", and keeps .tmp-/.tomb- names ours. */
	if (id[0] == '.')
		return refuse(err, what, id,
			      "a leading '.' is reserved for the library");
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)id[i];
		if (id_byte_ok(c))
			continue;
		bad_byte_reason(reason, sizeof(reason), c);
		return refuse(err, what, id, reason);
	}
	bl_clear_error(err);
	return 0;
}
