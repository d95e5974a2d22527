/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* "key=value" option strings, as Docker passes them to a graph driver. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

#define KEY_RULE "keys are [A-Za-z0-9._-], case-insensitive"
_Static_assert(BL_OPTION_MAX == 4096, "update the messages below");

/* ASCII only, like Go's strings.TrimSpace minus its two non-ASCII spaces:
 * the locale must not change what an option means. */
static int is_space(char c)
{
	return c == ' ' || c == '\t' || c == '\n' || c == '\v' || c == '\f' ||
	       c == '\r';
}

static char lower(char c)
{
	return c >= 'A' && c <= 'Z' ? (char)(c - 'A' + 'a') : c;
}

static int key_byte_ok(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '.' ||
	       c == '_' || c == '-';
}

static void trim(const char **begin, const char **end)
{
	while (*begin < *end && is_space(**begin))
		(*begin)++;
	while (*end > *begin && is_space((*end)[-1]))
		(*end)--;
}

static char *dup_range(const char *s, size_t n)
{
	char *d = malloc(n + 1);
	if (!d)
		return NULL;
	memcpy(d, s, n);
	d[n] = '\0';
	return d;
}

static int refuse(btrfslayer_error **err, const char *what, const char *opt,
		  const char *reason)
{
	char q[BL_QUOTE_MAX];

	return bl_fail_msg(err, -EINVAL, "invalid %s %s: %s", what,
			   bl_quote(q, sizeof(q), opt), reason);
}

static int refuse_key_byte(btrfslayer_error **err, const char *what,
			   const char *opt, char c)
{
	unsigned char u = (unsigned char)c;
	char reason[128];

	if (u > 0x20 && u < 0x7f && c != '\'' && c != '\\')
		snprintf(reason, sizeof(reason),
			 "'%c' is not allowed in a key (" KEY_RULE ")", c);
	else
		snprintf(reason, sizeof(reason),
			 "byte 0x%02x is not allowed in a key (" KEY_RULE ")", u);
	return refuse(err, what, opt, reason);
}

/* Fill *o (which starts empty) from opt, or leave it empty and fail. */
static int parse_one(const char *opt, size_t index, const char *what,
		     struct bl_option *o, btrfslayer_error **err)
{
	if (!opt)
		return bl_fail_msg(err, -EINVAL,
				   "invalid %s at index %zu: NULL, expected key=value",
				   what, index);
	/* Bounded: never read further than the longest string we accept. */
	size_t len = strnlen(opt, BL_OPTION_MAX + 1);
	if (len > BL_OPTION_MAX)
		return refuse(err, what, opt, "longer than 4096 bytes");
	const char *eq = memchr(opt, '=', len);
	if (!eq)
		return refuse(err, what, opt, "expected key=value");

	const char *kb = opt, *ke = eq, *vb = eq + 1, *ve = opt + len;
	trim(&kb, &ke);
	trim(&vb, &ve);
	if (kb == ke)
		return refuse(err, what, opt, "empty key, expected key=value");
	if (vb == ve)
		return refuse(err, what, opt, "empty value, expected key=value");
	for (const char *p = kb; p < ke; p++)
		if (!key_byte_ok(lower(*p)))
			return refuse_key_byte(err, what, opt, *p);

	o->key = dup_range(kb, (size_t)(ke - kb));
	o->value = dup_range(vb, (size_t)(ve - vb));
	if (!o->key || !o->value) {
		char q[BL_QUOTE_MAX];
		free(o->key);
		free(o->value);
		o->key = o->value = NULL;
		return bl_fail(err, -ENOMEM, "parsing %s %s", what,
			       bl_quote(q, sizeof(q), opt));
	}
	for (char *p = o->key; *p; p++)
		*p = lower(*p);
	return 0;
}

/* Option lists are a handful of entries: a quadratic check is fine. */
static int check_duplicate(const char *const *opts,
			   const struct bl_option *parsed, size_t i,
			   const char *what, btrfslayer_error **err)
{
	char q[BL_QUOTE_MAX], qkey[BL_QUOTE_MAX], qfirst[BL_QUOTE_MAX];

	for (size_t j = 0; j < i; j++) {
		if (strcmp(parsed[j].key, parsed[i].key))
			continue;
		return bl_fail_msg(err, -EINVAL,
				   "invalid %s %s: duplicate key %s (already given as %s)",
				   what, bl_quote(q, sizeof(q), opts[i]),
				   bl_quote(qkey, sizeof(qkey), parsed[i].key),
				   bl_quote(qfirst, sizeof(qfirst), opts[j]));
	}
	return 0;
}

int bl_options_parse(const char *const *opts, size_t n, const char *what,
		     struct bl_option **out, btrfslayer_error **err)
{
	if (!what)
		what = "option";
	if (n == 0) {
		*out = NULL;
		bl_clear_error(err);
		return 0;
	}
	if (!opts)
		return bl_fail_msg(err, -EINVAL,
				   "invalid %s list: NULL with %zu entries",
				   what, n);
	if (n > SIZE_MAX / sizeof(struct bl_option))
		return bl_fail(err, -ENOMEM, "parsing %zu %ss", n, what);

	struct bl_option *parsed = malloc(n * sizeof(*parsed));
	if (!parsed)
		return bl_fail(err, -ENOMEM, "parsing %zu %ss", n, what);
	for (size_t i = 0; i < n; i++) {
		parsed[i].key = parsed[i].value = NULL;
		int r = parse_one(opts[i], i, what, &parsed[i], err);
		if (r == 0)
			r = check_duplicate(opts, parsed, i, what, err);
		if (r < 0) {
			bl_options_free(parsed, i + 1);
			return r;
		}
	}
	*out = parsed;
	bl_clear_error(err);
	return 0;
}

void bl_options_free(struct bl_option *opts, size_t n)
{
	if (!opts)
		return;
	for (size_t i = 0; i < n; i++) {
		free(opts[i].key);
		free(opts[i].value);
	}
	free(opts);
}

/* ASCII and case-insensitive, for the same reason as is_space(). */
static bool same_word(const char *s, const char *word)
{
	for (; *s && *word; s++, word++)
		if (lower(*s) != *word)
			return false;
	return *s == *word;
}

int bl_parse_bool(const char *s, bool *out)
{
	static const char *const yes[] = { "true", "yes", "1" };
	static const char *const no[] = { "false", "no", "0" };
	for (size_t i = 0; i < sizeof(yes) / sizeof(yes[0]); i++) {
		if (same_word(s, yes[i])) {
			*out = true;
			return 0;
		}
		if (same_word(s, no[i])) {
			*out = false;
			return 0;
		}
	}
	return -EINVAL;
}
