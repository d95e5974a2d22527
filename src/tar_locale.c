/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * libarchive converts names between the pax headers' UTF-8 and the
 * current locale's charset.  In the C locale (a daemon's usual one) that
 * is ASCII, and a name such as "é" cannot be written ("Can't translate
 * pathname to UTF-8") nor read back.  A layer's names are bytes, and
 * nearly always UTF-8: apply and export run, on their own thread only
 * (uselocale), in C.UTF-8, so that UTF-8 names go through unchanged; a name
 * that is not UTF-8 is written raw, marked hdrcharset=BINARY (libarchive's
 * own fallback).  The caller's locale is never touched.
 */
#define _GNU_SOURCE
#include <locale.h>

#include "internal.h"

struct bl_tar_locale bl_tar_locale_enter(void)
{
	struct bl_tar_locale l = { (locale_t)0, (locale_t)0 };
	l.ours = newlocale(LC_CTYPE_MASK, "C.UTF-8", (locale_t)0);
	if (l.ours)
		l.old = uselocale(l.ours);
	return l;
}

void bl_tar_locale_leave(struct bl_tar_locale l)
{
	if (!l.ours)
		return;
	uselocale(l.old);
	freelocale(l.ours);
}
