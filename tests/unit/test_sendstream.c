/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The send-stream parser and its replay (sendstream.c, changes_send.c) on
 * real streams captured with `btrfs send --no-data` (fuzz/corpus/sendstream)
 * and on broken ones. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "internal.h"

static uint8_t *load(const char *name, size_t *len)
{
	char path[1024];
	snprintf(path, sizeof(path), "%s/%s", BL_CORPUS_DIR, name);
	FILE *f = fopen(path, "rb");
	assert_non_null(f);
	static uint8_t buf[1 << 16];
	*len = fread(buf, 1, sizeof(buf), f);
	fclose(f);
	uint8_t *copy = malloc(*len + 1);
	assert_non_null(copy);
	memcpy(copy, buf, *len);
	return copy;
}

static void expect_strings(char **v, size_t n, const char *const *want, size_t n_want)
{
	assert_int_equal(n, n_want);
	for (size_t i = 0; i < n; i++)
		assert_string_equal(v[i], want[i]);
}

/* Two directories swapped (through an orphan name), a subdirectory made
 * again, a symlink and a fifo added, an xattr set: the replay names where
 * each stood and stands. */
static void replay_orphans(const char *name)
{
	static const char *const roots[] = { "/a", "/b", "/b/x", "/ff", "/l" };
	static const char *const paths[] = { "/a", "/a/x", "/a/x/f", "/b" };
	size_t len, n_roots, n_paths;
	char **r, **p;
	uint8_t *s = load(name, &len);
	assert_int_equal(bl_send_replay(s, len, -1, &r, &n_roots, &p, &n_paths), 0);
	expect_strings(r, n_roots, roots, sizeof(roots) / sizeof(roots[0]));
	expect_strings(p, n_paths, paths, sizeof(paths) / sizeof(paths[0]));
	bl_strv_free(r, n_roots);
	bl_strv_free(p, n_paths);
	free(s);
}

static void test_orphans_v1(void **state)
{
	(void)state;
	replay_orphans("orphans-v1");
}

static void test_orphans_v2(void **state)
{
	(void)state;
	replay_orphans("orphans-v2");
}

static int ignore(const struct bl_send_cmd *c, void *userdata)
{
	(void)c;
	++*(size_t *)userdata;
	return 0;
}

/* Every cut of a real stream is refused, none read past its end (ASan),
 * and so is a byte after END. */
static void test_cut_and_trailing(void **state)
{
	(void)state;
	size_t len, n = 0;
	uint8_t *s = load("incremental-v1", &len);
	assert_int_equal(bl_sendstream_parse(s, len, ignore, &n), 0);
	assert_true(n > 10);
	for (size_t cut = 0; cut < len; cut++) {
		uint8_t *copy = malloc(cut ? cut : 1);
		memcpy(copy, s, cut);
		n = 0;
		assert_int_equal(bl_sendstream_parse(copy, cut, ignore, &n), -EBADMSG);
		free(copy);
	}
	uint8_t *longer = malloc(len + 1);
	memcpy(longer, s, len);
	longer[len] = 0;
	assert_int_equal(bl_sendstream_parse(longer, len + 1, ignore, &n), -EBADMSG);
	free(longer);
	free(s);
}

static void test_broken(void **state)
{
	(void)state;
	static const struct { const char *name; int code; } cases[] = {
		{ "header-only", -EBADMSG },		/* no END */
		{ "dotdot", -EBADMSG },			/* "a/../b" */
		{ "rename-into-itself", -EBADMSG },
		{ "version-9", -EPROTONOSUPPORT },
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		size_t len, n_roots, n_paths;
		char **r, **p;
		uint8_t *s = load(cases[i].name, &len);
		assert_int_equal(bl_send_replay(s, len, -1, &r, &n_roots, &p, &n_paths),
				 cases[i].code);
		free(s);
	}
}

static void test_path_check(void **state)
{
	(void)state;
	assert_int_equal(bl_send_path_check(""), 0);
	assert_int_equal(bl_send_path_check("a/b.c/..d"), 0);
	assert_int_equal(bl_send_path_check("/a"), -EBADMSG);
	assert_int_equal(bl_send_path_check("a//b"), -EBADMSG);
	assert_int_equal(bl_send_path_check("a/"), -EBADMSG);
	assert_int_equal(bl_send_path_check("a/./b"), -EBADMSG);
	assert_int_equal(bl_send_path_check(".."), -EBADMSG);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_orphans_v1),
		cmocka_unit_test(test_orphans_v2),
		cmocka_unit_test(test_cut_and_trailing),
		cmocka_unit_test(test_broken),
		cmocka_unit_test(test_path_check),
	};
	return cmocka_run_group_tests_name("sendstream", tests, NULL, NULL);
}
