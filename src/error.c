/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Error objects and messages. */
#define _GNU_SOURCE
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

struct btrfslayer_error {
	int code;
	char message[];
};

/* Fallback when the error itself cannot be allocated: a caller that asked
 * for an error always gets one. */
static struct {
	int code;
	char message[sizeof("out of memory while reporting an error")];
} oom_error = { -ENOMEM, "out of memory while reporting an error" };

static int set_error(btrfslayer_error **err, int code, const char *reason,
		     const char *fmt, va_list ap) BL_PRINTF(4, 0);
static int set_error(btrfslayer_error **err, int code, const char *reason,
		     const char *fmt, va_list ap)
{
	if (!err)
		return code;
	char *text = NULL;
	if (vasprintf(&text, fmt, ap) < 0)
		text = NULL;
	size_t len = text ? strlen(text) : 0;
	size_t extra = reason ? strlen(reason) + 2 : 0;
	struct btrfslayer_error *e = malloc(sizeof(*e) + len + extra + 1);
	if (!e || !text) {
		free(e);
		free(text);
		*err = (btrfslayer_error *)&oom_error;
		return code;
	}
	e->code = code;
	memcpy(e->message, text, len);
	if (reason) {
		memcpy(e->message + len, ": ", 2);
		memcpy(e->message + len + 2, reason, extra - 2);
	}
	e->message[len + extra] = '\0';
	free(text);
	*err = e;
	return code;
}

int bl_fail(btrfslayer_error **err, int code, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	set_error(err, code, btrfslayer_strerror(code), fmt, ap);
	va_end(ap);
	return code;
}

int bl_fail_msg(btrfslayer_error **err, int code, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	set_error(err, code, NULL, fmt, ap);
	va_end(ap);
	return code;
}

BTRFSLAYER_API int btrfslayer_error_code(const btrfslayer_error *err)
{
	return err ? err->code : 0;
}

BTRFSLAYER_API const char *btrfslayer_error_message(const btrfslayer_error *err)
{
	return err ? err->message : "";
}

BTRFSLAYER_API void btrfslayer_error_free(btrfslayer_error *err)
{
	if (err && err != (btrfslayer_error *)&oom_error)
		free(err);
}

BTRFSLAYER_API const char *btrfslayer_strerror(int code)
{
	if (code < 0)
		code = -code;
	if (code == BTRFSLAYER_ENOTBTRFS)
		return "Not on a btrfs filesystem (prerequisites not met)";
	if (code == BTRFSLAYER_ENOQUOTA)
		return "Quotas are not enabled on the filesystem";
	const char *desc = strerrordesc_np(code);
	return desc ? desc : "Unknown error";
}

char *bl_quote(char *buf, size_t len, const char *s)
{
	static const char hex[] = "0123456789abcdef";
	size_t o = 0;
	if (len < 8) {
		if (len)
			buf[0] = '\0';
		return buf;
	}
	buf[o++] = '"';
	for (; *s; s++) {
		unsigned char c = (unsigned char)*s;
		size_t need = (c < 0x20 || c >= 0x7f || c == '"' || c == '\\') ? 4 : 1;
		/* keep room for the escape, '"', "..." and NUL */
		if (o + need + 5 > len) {
			memcpy(buf + o, "...", 3);
			o += 3;
			break;
		}
		if (c == '"' || c == '\\') {
			buf[o++] = '\\';
			buf[o++] = (char)c;
		} else if (need == 4) {
			buf[o++] = '\\';
			buf[o++] = 'x';
			buf[o++] = hex[c >> 4];
			buf[o++] = hex[c & 15];
		} else {
			buf[o++] = (char)c;
		}
	}
	buf[o++] = '"';
	buf[o] = '\0';
	return buf;
}
