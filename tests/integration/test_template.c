/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The empty template (src/template.c) on a real btrfs: a plain empty layer
 * is a snapshot of subvolumes/.empty-<mode>-<uid>-<gid>, made the first
 * time one is asked for; the layer is what an empty layer always was, and
 * a template someone changed, deleted or replaced is never used as it is.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>
#include <btrfsutil.h>

#include "btrfslayer.h"
#include "check.h"
#include "harness.h"

#define TEMPLATE "subvolumes/.empty-0755-0-0"

static void template_path(const struct harness_home *c, char *buf, size_t len)
{
	snprintf(buf, len, "%s/" TEMPLATE, c->home);
}

static char *layer(struct harness_home *c, const char *id)
{
	char *path = NULL;
	assert_ok(btrfslayer_get(c->h, id, NULL, &path, ERR));
	return path;
}

static void subvolume_info(const char *path, struct btrfs_util_subvolume_info *info)
{
	assert_int_equal(btrfs_util_subvolume_info(path, 0, info), BTRFS_UTIL_OK);
}

/* What every new empty layer is, however it was made: an empty, writable
 * subvolume root of mode 0755 owned by 0:0, with no parent layer. */
static void assert_fresh_empty_layer(struct harness_home *c, const char *id)
{
	char *path = layer(c, id), file[PATH_MAX + 8];
	struct stat st;
	assert_int_equal(btrfs_util_is_subvolume(path), BTRFS_UTIL_OK);
	assert_int_equal(stat(path, &st), 0);
	assert_int_equal(st.st_mode & 07777, 0755);
	assert_int_equal(st.st_uid, 0);
	assert_int_equal(st.st_gid, 0);
	assert_int_equal(st.st_size, 0);	/* no entries */
	bool read_only = true;
	assert_int_equal(btrfs_util_get_subvolume_read_only(path, &read_only), BTRFS_UTIL_OK);
	assert_false(read_only);
	snprintf(file, sizeof(file), "%s/f", path);
	int fd = open(file, O_WRONLY | O_CREAT | O_EXCL, 0644);
	assert_true(fd >= 0);
	close(fd);
	btrfslayer_info info;
	assert_ok(btrfslayer_layer_info(c->h, id, &info, sizeof(info), ERR));
	assert_string_equal(info.parent, "");
	free(path);
}

static void test_empty_layers_are_snapshots_of_the_template(void **state)
{
	struct harness_home *c = *state;
	char template[PATH_MAX + 32];
	template_path(c, template, sizeof(template));
	assert_int_equal(access(template, F_OK), -1);	/* open makes none */
	assert_ok(btrfslayer_create(c->h, "a", NULL, 0, NULL, NULL, 0, ERR));
	assert_null(harness_template_flaw(template));
	assert_ok(btrfslayer_create(c->h, "b", NULL, BTRFSLAYER_CREATE_READ_ONLY, NULL, NULL, 0,
				    ERR));
	assert_fresh_empty_layer(c, "a");

	/* both from the one template, which nothing written to "a" reached */
	struct btrfs_util_subvolume_info t, a, b;
	char *pa = layer(c, "a"), *pb = layer(c, "b");
	subvolume_info(template, &t);
	subvolume_info(pa, &a);
	subvolume_info(pb, &b);
	assert_memory_equal(a.parent_uuid, t.uuid, 16);
	assert_memory_equal(b.parent_uuid, t.uuid, 16);
	assert_null(harness_template_flaw(template));
	bool read_only = false;
	assert_int_equal(btrfs_util_get_subvolume_read_only(pb, &read_only), BTRFS_UTIL_OK);
	assert_true(read_only);
	free(pa);
	free(pb);

	/* never listed, never a layer */
	btrfslayer_list *list = NULL;
	assert_ok(btrfslayer_layers(c->h, &list, ERR));
	assert_int_equal(btrfslayer_list_count(list), 2);
	btrfslayer_list_free(list);
	/* every layer gone: the template stays, whole, for the next one */
	assert_ok(btrfslayer_remove(c->h, "a", ERR));
	assert_ok(btrfslayer_remove(c->h, "b", ERR));
	assert_null(harness_template_flaw(template));
	assert_ok(btrfslayer_create(c->h, "c", NULL, 0, NULL, NULL, 0, ERR));
	assert_fresh_empty_layer(c, "c");
}

/* Made writable and given a file, chowned, or replaced by a directory:
 * what sits at the name is left alone and layers are made the long way. */
static void test_changed_template_is_left_alone(void **state)
{
	struct harness_home *c = *state;
	char template[PATH_MAX + 32], file[PATH_MAX + 48];
	template_path(c, template, sizeof(template));
	assert_ok(btrfslayer_create(c->h, "first", NULL, 0, NULL, NULL, 0, ERR));

	assert_int_equal(btrfs_util_set_subvolume_read_only(template, false), BTRFS_UTIL_OK);
	snprintf(file, sizeof(file), "%s/planted", template);
	int fd = open(file, O_WRONLY | O_CREAT, 0644);
	assert_true(fd >= 0);
	close(fd);
	assert_ok(btrfslayer_create(c->h, "with-file", NULL, 0, NULL, NULL, 0, ERR));
	assert_fresh_empty_layer(c, "with-file");
	assert_int_equal(access(file, F_OK), 0);	/* left alone */
	assert_int_equal(unlink(file), 0);

	assert_int_equal(chown(template, 1000, 1000), 0);
	assert_ok(btrfslayer_create(c->h, "chowned", NULL, 0, NULL, NULL, 0, ERR));
	assert_fresh_empty_layer(c, "chowned");

	/* a plain directory in its place, for a handle opened after */
	assert_int_equal(btrfs_util_delete_subvolume(template, 0), BTRFS_UTIL_OK);
	assert_int_equal(mkdir(template, 0755), 0);
	btrfslayer *other = NULL;
	assert_ok(btrfslayer_open(c->home, NULL, 0, NULL, 0, NULL, 0, &other, ERR));
	assert_ok(btrfslayer_create(other, "dir", NULL, 0, NULL, NULL, 0, ERR));
	assert_ok(btrfslayer_close(other, ERR));
	assert_fresh_empty_layer(c, "dir");
	assert_int_equal(btrfs_util_is_subvolume(template), BTRFS_UTIL_ERROR_NOT_SUBVOLUME);
	assert_int_equal(rmdir(template), 0);
}

/* Deleted while a handle holds it open: the next create makes it again. */
static void test_deleted_template_is_made_again(void **state)
{
	struct harness_home *c = *state;
	char template[PATH_MAX + 32];
	template_path(c, template, sizeof(template));
	assert_ok(btrfslayer_create(c->h, "before", NULL, 0, NULL, NULL, 0, ERR));
	uint64_t old_id, new_id;
	assert_int_equal(btrfs_util_subvolume_id(template, &old_id), BTRFS_UTIL_OK);
	assert_int_equal(btrfs_util_delete_subvolume(template, 0), BTRFS_UTIL_OK);
	assert_ok(btrfslayer_create(c->h, "after", NULL, 0, NULL, NULL, 0, ERR));
	assert_fresh_empty_layer(c, "after");
	assert_null(harness_template_flaw(template));
	assert_int_equal(btrfs_util_subvolume_id(template, &new_id), BTRFS_UTIL_OK);
	assert_true(new_id != old_id);
}

/* A handle with an id map: the template is the mapped root's, and so are
 * the layers made of it. */
static void test_template_per_owner(void **state)
{
	(void)state;
	const btrfslayer_idmap map = { .container_id = 0, .host_id = 100000, .size = 65536 };
	btrfslayer *mapped = NULL;
	char home[PATH_MAX], template[PATH_MAX + 64], *path = NULL;
	harness_new_home(home, sizeof(home));	/* a home keeps the map it was made with */
	assert_ok(btrfslayer_open(home, NULL, 0, &map, 1, &map, 1, &mapped, ERR));
	assert_ok(btrfslayer_create(mapped, "m", NULL, 0, NULL, NULL, 0, ERR));
	snprintf(template, sizeof(template), "%s/subvolumes/.empty-0755-100000-100000", home);
	assert_null(harness_template_flaw(template));
	assert_ok(btrfslayer_get(mapped, "m", NULL, &path, ERR));
	struct stat st;
	assert_int_equal(stat(path, &st), 0);
	assert_int_equal(st.st_uid, 100000);
	assert_int_equal(st.st_gid, 100000);
	free(path);
	assert_ok(btrfslayer_close(mapped, ERR));
}

int main(void)
{
	harness_start();
#define T(f) cmocka_unit_test_setup_teardown(f, harness_home_setup, harness_home_teardown)
	const struct CMUnitTest tests[] = {
		T(test_empty_layers_are_snapshots_of_the_template),
		T(test_changed_template_is_left_alone),
		T(test_deleted_template_is_made_again),
		cmocka_unit_test(test_template_per_owner),
	};
	return cmocka_run_group_tests_name("template", tests, NULL, NULL);
}
