/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* SELinux labels of layer roots, through libselinux. */
#include <errno.h>
#include <string.h>

#include <selinux/selinux.h>

#include "internal.h"

#define LABEL_MAX 4096

/* SELinux user, role and type names. */
static size_t name_span(const char *s)
{
	return strspn(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.-");
}

/* user:role:type[:level], where level ("s0", "s0-s0:c0.c1023") may itself
 * hold ':' and ','. */
static bool shape_ok(const char *label)
{
	const char *p = label;
	for (int field = 0; field < 3; field++) {
		size_t len = name_span(p);
		if (len == 0)
			return false;
		p += len;
		if (field < 2) {
			if (*p != ':')
				return false;
			p++;
		}
	}
	if (*p == '\0')
		return true;
	if (*p++ != ':' || *p == '\0')
		return false;
	return strspn(p, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.-:,") ==
	       strlen(p);
}

int bl_label_check(const char *label, btrfslayer_error **err)
{
	char quoted[BL_QUOTE_MAX];
	if (strnlen(label, LABEL_MAX + 1) > LABEL_MAX || !shape_ok(label))
		return bl_fail_msg(err, -EINVAL,
				   "invalid mount label %s: expected user:role:type[:level]",
				   bl_quote(quoted, sizeof(quoted), label));
	if (is_selinux_enabled() > 0 && security_check_context(label) < 0)
		return bl_fail_msg(err, -EINVAL,
				   "invalid mount label %s: not a valid context in the loaded policy",
				   bl_quote(quoted, sizeof(quoted), label));
	return 0;
}

int bl_label_apply(int fd, const char *label, const char *path,
		   btrfslayer_error **err)
{
	if (fsetfilecon(fd, label) < 0)
		return bl_fail(err, -errno, "set SELinux label: %s", path);
	return 0;
}
