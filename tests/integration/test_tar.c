/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * OCI layer tars on a real btrfs, as a user checks them:
 * - apply of a tar GNU tar made (plain, gzip, zstd; xattrs, file
 *   capabilities, hard links, symlinks, devices, fifos, sparse files,
 *   owners) gives the tree GNU tar was given; the unpacked size is its
 *   bytes of file data;
 * - whiteouts delete, opaque markers empty a directory but keep what the
 *   same tar put there;
 * - hostile tars (path traversal, absolute names, a symlink then a write
 *   through it, hard links out of the layer, huge headers, truncated or
 *   garbage archives) are refused with an error naming the entry, and
 *   nothing outside the layer changes;
 * - apply needs a writable layer (-EROFS), checks its flags and fd;
 * - export then apply onto a snapshot of the parent gives a tree equal to
 *   the layer, over random trees and mutations (TAR_CASES, default 40);
 *   the same layer exports the same bytes; an exported tar unpacked by GNU
 *   tar over the parent's files equals the layer (whiteouts aside).
 * BTRFSLAYER_TEST_FILTER runs the tests whose name matches a pattern.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>
#include <time.h>
#include <unistd.h>

#include <archive.h>
#include <archive_entry.h>
#include <cmocka.h>

#include "btrfslayer.h"
#include "check.h"
#include "harness.h"
#include "tartree.h"

struct ctx {
	char home[PATH_MAX];
	char outside[PATH_MAX];	/* a sentinel tree next to home */
	char work[PATH_MAX];	/* scratch directory on the same btrfs */
	btrfslayer *h;
};

static int setup(void **state)
{
	struct ctx *c = calloc(1, sizeof(*c));
	harness_new_home(c->home, sizeof(c->home));
	snprintf(c->outside, sizeof(c->outside), "%s.outside", c->home);
	snprintf(c->work, sizeof(c->work), "%s.work", c->home);
	assert_int_equal(harness_sentinel_make(c->outside), 0);
	assert_int_equal(mkdir(c->work, 0755), 0);
	assert_ok(btrfslayer_open(c->home, NULL, 0, NULL, 0, NULL, 0, &c->h, ERR));
	*state = c;
	return 0;
}

static int teardown(void **state)
{
	struct ctx *c = *state;
	if (c->h)
		btrfslayer_close(c->h, NULL);
	free(c);
	return 0;
}

static void run(const char *cmd)
{
	const char *argv[] = { "sh", "-c", cmd, NULL };
	if (harness_run(argv) != 0)
		fail_msg("command failed: %s", cmd);
}

static void layer_path(struct ctx *c, const char *id, char *buf, size_t len)
{
	snprintf(buf, len, "%s/subvolumes/%s", c->home, id);
}

static void assert_same_tree(const char *a, const char *b, bool dir_times)
{
	char *d = tree_diff(a, b, dir_times);
	if (d) {
		print_error("trees %s and %s differ: %s\n", a, b, d);
		free(d);
		fail();
	}
}

/* ---- tars made here -------------------------------------------------------- */

/* One entry of a tar to build: type 0 ends a list. */
struct ent {
	mode_t type;		/* AE_IFREG, AE_IFDIR, AE_IFLNK, or 'h' (hard link) */
	const char *path;
	const char *data;	/* content; the target of a symlink or hard link */
};

/* A tar of the entries in a memfd, rewound. */
static int make_tar(const struct ent *e)
{
	int fd = memfd_create("tar", MFD_CLOEXEC);
	assert_true(fd >= 0);
	struct archive *a = archive_write_new();
	assert_int_equal(archive_write_set_format_pax_restricted(a), ARCHIVE_OK);
	assert_int_equal(archive_write_open_fd(a, fd), ARCHIVE_OK);
	for (; e->type; e++) {
		struct archive_entry *ae = archive_entry_new();
		archive_entry_set_pathname(ae, e->path);
		archive_entry_set_mtime(ae, 1700000000, 0);
		if (e->type == 'h') {
			archive_entry_set_filetype(ae, AE_IFREG);
			archive_entry_set_hardlink(ae, e->data);
			archive_entry_set_perm(ae, 0644);
		} else {
			archive_entry_set_filetype(ae, e->type);
			archive_entry_set_perm(ae, e->type == AE_IFDIR ? 0755 : 0644);
			if (e->type == AE_IFLNK)
				archive_entry_set_symlink(ae, e->data);
			if (e->type == AE_IFREG)
				archive_entry_set_size(ae, e->data ? (la_int64_t)strlen(e->data) : 0);
		}
		assert_int_equal(archive_write_header(a, ae), ARCHIVE_OK);
		if (e->type == AE_IFREG && e->data)
			assert_int_equal(archive_write_data(a, e->data, strlen(e->data)),
					 (la_ssize_t)strlen(e->data));
		archive_entry_free(ae);
	}
	assert_int_equal(archive_write_close(a), ARCHIVE_OK);
	archive_write_free(a);
	assert_int_equal(lseek(fd, 0, SEEK_SET), 0);
	return fd;
}

/* A raw ustar header block for `name` of type `type` and declared size. */
static void raw_header(unsigned char block[512], const char *name, char type, uint64_t size)
{
	memset(block, 0, 512);
	snprintf((char *)block, 100, "%s", name);
	memcpy(block + 100, "0000644", 8);
	memcpy(block + 108, "0000000", 8);
	memcpy(block + 116, "0000000", 8);
	/* base-256 (GNU): any size fits */
	block[124] = 0x80;
	for (int i = 0; i < 8; i++)
		block[135 - i] = (unsigned char)(size >> (8 * i));
	memcpy(block + 136, "14000000000", 12);
	block[156] = (unsigned char)type;
	memcpy(block + 257, "ustar", 6);
	memcpy(block + 263, "00", 2);
	memset(block + 148, ' ', 8);
	unsigned sum = 0;
	for (int i = 0; i < 512; i++)
		sum += block[i];
	snprintf((char *)block + 148, 8, "%06o", sum);
}

/* ---- apply of what GNU tar made -------------------------------------------- */

/* A source tree with one of everything. */
static void make_source(const char *dir)
{
	char cmd[4 * PATH_MAX];
	snprintf(cmd, sizeof(cmd),
		 "set -e; cd '%s'; mkdir -p src/d/e src/empty; cd src;"
		 "printf hello > d/f; ln d/f d/hl; ln -s ../x d/sl; ln -s /nonexistent/abs abs;"
		 "mkfifo fifo; mknod cdev c 1 3; mknod bdev b 7 200;"
		 "chown 1234:5678 d/f; chmod 4755 d/f; chown -h 42:43 d/sl;"
		 "printf x > d/e/cap; chmod 700 d/e;"
		 "python3 -c \"import os; os.setxattr('d/f', 'user.foo', b'bar');"
		 "os.setxattr('d/e/cap', 'security.capability',"
		 " bytes.fromhex('0000000200200000000000000000000000000000'));"
		 "os.setxattr('d', 'user.dir', b'on a dir')\";"
		 "truncate -s 64M sparse; printf tail >> sparse;"
		 "touch -h -d '2001-02-03 04:05:06.123456789' d/sl d/f empty d .",
		 dir);
	run(cmd);
}

/* Progress: never going back, the total as given (userdata: last done,
 * last total, calls). */
static int progress_fn(uint64_t done, uint64_t total, void *userdata)
{
	uint64_t *last = userdata;
	assert_true(done >= last[0]);
	last[0] = done;
	last[1] = total;
	last[2]++;
	return 0;
}

/* Asks to stop at its first call. */
static int stop_fn(uint64_t done, uint64_t total, void *userdata)
{
	(void)done;
	(void)total;
	++*(int *)userdata;
	return 1;
}

static void apply_tar_file(struct ctx *c, const char *id, const char *tar, uint64_t *unpacked)
{
	int fd = open(tar, O_RDONLY | O_CLOEXEC);
	assert_true(fd >= 0);
	uint64_t seen[3] = { 0, 0, 0 };
	struct stat st;
	assert_int_equal(fstat(fd, &st), 0);
	assert_ok(btrfslayer_apply(c->h, id, fd, 0, progress_fn, seen, unpacked, ERR));
	close(fd);
	/* told at the end at least, with the archive's size as the total */
	assert_true(seen[2] >= 1);
	assert_int_equal(seen[1], st.st_size);
	assert_true(seen[0] > 0 && seen[0] <= (uint64_t)st.st_size);
}

static void test_apply_gnu_tar(void **state)
{
	struct ctx *c = *state;
	char cmd[4 * PATH_MAX], tar[PATH_MAX], layer[PATH_MAX], src[PATH_MAX];
	make_source(c->work);
	snprintf(src, sizeof(src), "%s/src", c->work);
	static const char *const kinds[][2] = {
		{ "plain", "" }, { "gzip", "-z" }, { "zstd", "--zstd" },
	};
	for (size_t k = 0; k < 3; k++) {
		snprintf(tar, sizeof(tar), "%s/%s.tar", c->work, kinds[k][0]);
		snprintf(cmd, sizeof(cmd), "tar %s --sparse --xattrs --xattrs-include='*' "
			 "--numeric-owner -C '%s' -cf '%s' .", kinds[k][1], src, tar);
		run(cmd);
		assert_ok(btrfslayer_create(c->h, kinds[k][0], NULL, 0, NULL, NULL, 0, ERR));
		uint64_t unpacked = 0;
		apply_tar_file(c, kinds[k][0], tar, &unpacked);
		layer_path(c, kinds[k][0], layer, sizeof(layer));
		assert_same_tree(src, layer, true);
		/* "hello", "x", the sparse file's tail: holes are not data */
		assert_int_equal(unpacked, 5 + 1 + 4);
		struct stat st;
		assert_int_equal(stat(strcat(layer, "/sparse"), &st), 0);
		assert_true(st.st_blocks * 512 < (1 << 20));
	}
}

/* ---- whiteouts --------------------------------------------------------------- */

static bool exists(const char *dir, const char *rel)
{
	char p[PATH_MAX];
	struct stat st;
	snprintf(p, sizeof(p), "%s/%s", dir, rel);
	return lstat(p, &st) == 0;
}

static void test_apply_whiteouts(void **state)
{
	struct ctx *c = *state;
	char layer[PATH_MAX], cmd[2 * PATH_MAX];
	assert_ok(btrfslayer_create(c->h, "base", NULL, 0, NULL, NULL, 0, ERR));
	layer_path(c, "base", layer, sizeof(layer));
	snprintf(cmd, sizeof(cmd), "set -e; cd '%s'; mkdir -p gone/sub opq/old keep; "
		 "echo 1 > gone/sub/f; echo 2 > file; echo 3 > opq/old/f; echo 4 > opq/f; "
		 "echo 5 > keep/f", layer);
	run(cmd);
	assert_ok(btrfslayer_create(c->h, "top", "base", 0, NULL, NULL, 0, ERR));
	layer_path(c, "top", layer, sizeof(layer));
	const struct ent ents[] = {
		{ AE_IFREG, ".wh.file", NULL },
		{ AE_IFREG, "./.wh.gone", NULL },
		{ AE_IFDIR, "opq", NULL },
		{ AE_IFREG, "opq/new", "new" },		/* before its marker */
		{ AE_IFREG, "opq/.wh..wh..opq", NULL },
		{ AE_IFREG, "opq/after", "after" },
		{ AE_IFREG, "missing/.wh.x", NULL },	/* nothing to delete */
		{ 0, NULL, NULL },
	};
	int fd = make_tar(ents);
	assert_ok(btrfslayer_apply(c->h, "top", fd, 0, NULL, NULL, NULL, ERR));
	close(fd);
	assert_false(exists(layer, "file"));
	assert_false(exists(layer, "gone"));
	assert_false(exists(layer, "opq/old"));
	assert_false(exists(layer, "opq/f"));
	assert_true(exists(layer, "opq/new"));
	assert_true(exists(layer, "opq/after"));
	assert_true(exists(layer, "keep/f"));
	assert_false(exists(layer, "missing"));
	assert_false(exists(layer, ".wh.file"));
	assert_false(exists(layer, "opq/.wh..wh..opq"));
	/* the parent is untouched */
	layer_path(c, "base", layer, sizeof(layer));
	assert_true(exists(layer, "file") && exists(layer, "gone/sub/f") &&
		    exists(layer, "opq/old/f"));
}

/* ---- hostile tars ---------------------------------------------------------- */

/* Apply fd to a fresh layer: it must fail with code and a message that
 * holds needle, and the sentinel tree next to home must not change. */
static void expect_refused(struct ctx *c, const char *id, int fd, int code, const char *needle)
{
	char *before = harness_tree_snapshot(c->outside);
	assert_non_null(before);
	assert_ok(btrfslayer_create(c->h, id, NULL, 0, NULL, NULL, 0, ERR));
	expect_fail(btrfslayer_apply(c->h, id, fd, 0, NULL, NULL, NULL, ERR), code, needle);
	close(fd);
	char *after = harness_tree_snapshot(c->outside);
	assert_non_null(after);
	assert_string_equal(before, after);
	free(before);
	free(after);
}

static void test_apply_hostile(void **state)
{
	struct ctx *c = *state;
	char abs_file[PATH_MAX], up[PATH_MAX], escape_through[PATH_MAX];
	snprintf(abs_file, sizeof(abs_file), "%s/f644", c->outside);
	/* from subvolumes/<id>/ to the sentinel */
	const char *home_base = strrchr(c->home, '/') + 1;
	snprintf(up, sizeof(up), "../../../%s.outside", home_base);
	snprintf(escape_through, sizeof(escape_through), "%s", c->outside);

	const struct ent dotdot[] = { { AE_IFREG, "../../../escape", "x" }, { 0, 0, 0 } };
	expect_refused(c, "dotdot", make_tar(dotdot), -EINVAL, "\"../../../escape\"");
	const struct ent inner[] = { { AE_IFDIR, "a", NULL },
				     { AE_IFREG, "a/../../escape", "x" }, { 0, 0, 0 } };
	expect_refused(c, "inner", make_tar(inner), -EINVAL, "climbs out");
	const struct ent absolute[] = { { AE_IFREG, abs_file, "pwned" }, { 0, 0, 0 } };
	expect_refused(c, "absolute", make_tar(absolute), -EINVAL, "is absolute");
	/* a symlink, then a write through it: absolute and relative */
	const struct ent through_abs[] = { { AE_IFLNK, "a", escape_through },
					   { AE_IFREG, "a/pwned", "x" }, { 0, 0, 0 } };
	expect_refused(c, "through-abs", make_tar(through_abs), -ELOOP, "symbolic link");
	const struct ent through_rel[] = { { AE_IFLNK, "a", up },
					   { AE_IFREG, "a/pwned", "x" }, { 0, 0, 0 } };
	expect_refused(c, "through-rel", make_tar(through_rel), -ELOOP, "\"a/pwned\"");
	const struct ent dir_through[] = { { AE_IFLNK, "a", escape_through },
					   { AE_IFDIR, "a/newdir", NULL }, { 0, 0, 0 } };
	expect_refused(c, "dir-through", make_tar(dir_through), -ELOOP, "symbolic link");
	const struct ent wh_through[] = { { AE_IFLNK, "a", escape_through },
					  { AE_IFREG, "a/.wh.f644", NULL }, { 0, 0, 0 } };
	expect_refused(c, "wh-through", make_tar(wh_through), -ELOOP, "symbolic link");
	const struct ent opq_through[] = { { AE_IFLNK, "a", escape_through },
					   { AE_IFREG, "a/.wh..wh..opq", NULL }, { 0, 0, 0 } };
	expect_refused(c, "opq-through", make_tar(opq_through), -ELOOP, "symbolic link");
	/* hard links out of the layer */
	const struct ent link_up[] = { { 'h', "h", "../../../etc/passwd" }, { 0, 0, 0 } };
	expect_refused(c, "link-up", make_tar(link_up), -EINVAL, "hard link target");
	const struct ent link_abs[] = { { 'h', "h", abs_file }, { 0, 0, 0 } };
	expect_refused(c, "link-abs", make_tar(link_abs), -EINVAL, "is absolute");
	const struct ent link_via[] = { { AE_IFLNK, "a", escape_through },
					{ 'h', "h", "a/f644" }, { 0, 0, 0 } };
	expect_refused(c, "link-via", make_tar(link_via), -ELOOP, "symbolic link");
	/* whiteouts of "." and "..": the directory itself, its parent */
	const struct ent wh_dot[] = { { AE_IFDIR, "d", NULL }, { AE_IFREG, "d/.wh..", NULL },
				      { 0, 0, 0 } };
	expect_refused(c, "wh-dot", make_tar(wh_dot), -EINVAL, "whiteout of no name");
	const struct ent wh_dotdot[] = { { AE_IFDIR, "d", NULL }, { AE_IFREG, "d/.wh...", NULL },
					 { 0, 0, 0 } };
	expect_refused(c, "wh-dotdot", make_tar(wh_dotdot), -EINVAL, "\"d/.wh...\"");
	/* a name past PATH_MAX in a pax header */
	char *longname = malloc(8192);
	for (int i = 0; i < 8190; i++)
		longname[i] = i % 100 == 99 ? '/' : 'n';
	longname[8190] = '\0';
	const struct ent too_long[] = { { AE_IFREG, longname, "x" }, { 0, 0, 0 } };
	expect_refused(c, "too-long", make_tar(too_long), -ENAMETOOLONG, "too long");
	free(longname);

	/* a pax header that says it is 1 TiB long, then the end */
	int fd = memfd_create("tar", MFD_CLOEXEC);
	unsigned char block[512];
	raw_header(block, "PaxHeader/x", 'x', UINT64_C(1) << 40);
	assert_int_equal(write(fd, block, 512), 512);
	memset(block, 'a', 512);
	assert_int_equal(write(fd, block, 512), 512);
	lseek(fd, 0, SEEK_SET);
	expect_refused(c, "huge-pax", fd, -EINVAL, "bad or truncated archive");
	/* a GNU long name of 1 TiB */
	fd = memfd_create("tar", MFD_CLOEXEC);
	raw_header(block, "././@LongLink", 'L', UINT64_C(1) << 40);
	assert_int_equal(write(fd, block, 512), 512);
	lseek(fd, 0, SEEK_SET);
	expect_refused(c, "huge-longname", fd, -EINVAL, "bad or truncated archive");

	/* truncated in the middle of a file's data */
	char data[4096];
	memset(data, 'd', sizeof(data) - 1);
	data[sizeof(data) - 1] = '\0';
	const struct ent big[] = { { AE_IFREG, "first", "1" }, { AE_IFREG, "big", data },
				   { 0, 0, 0 } };
	fd = make_tar(big);
	assert_int_equal(ftruncate(fd, 512 * 4 + 1000), 0);
	expect_refused(c, "truncated", fd, -EIO, "\"big\"");
	/* truncated inside a header */
	fd = make_tar(big);
	assert_int_equal(ftruncate(fd, 512 * 2 + 100), 0);
	expect_refused(c, "truncated-header", fd, -EINVAL, "after \"first\"");
	/* not a tar at all */
	fd = memfd_create("tar", MFD_CLOEXEC);
	assert_int_equal(write(fd, "this is no tar archive\n", 23), 23);
	lseek(fd, 0, SEEK_SET);
	expect_refused(c, "garbage", fd, -EINVAL, "not a tar archive");
}

/* What may look hostile but stays inside the layer is applied. */
static void test_apply_replaces_symlinks(void **state)
{
	struct ctx *c = *state;
	char abs_file[PATH_MAX], layer[PATH_MAX];
	snprintf(abs_file, sizeof(abs_file), "%s/f644", c->outside);
	char *before = harness_tree_snapshot(c->outside);
	const struct ent ents[] = {
		{ AE_IFLNK, "f", abs_file },
		{ AE_IFREG, "f", "replaced, not written through" },
		{ AE_IFLNK, "d", c->outside },
		{ AE_IFDIR, "d", NULL },
		{ AE_IFLNK, "s", "../../../nonexistent" },
		{ 'h', "hs", "s" },	/* the symlink itself, inside */
		{ 0, 0, 0 },
	};
	int fd = make_tar(ents);
	assert_ok(btrfslayer_create(c->h, "l", NULL, 0, NULL, NULL, 0, ERR));
	assert_ok(btrfslayer_apply(c->h, "l", fd, 0, NULL, NULL, NULL, ERR));
	close(fd);
	char *after = harness_tree_snapshot(c->outside);
	assert_string_equal(before, after);
	free(before);
	free(after);
	layer_path(c, "l", layer, sizeof(layer));
	struct stat st;
	char p[PATH_MAX];
	snprintf(p, sizeof(p), "%s/f", layer);
	assert_int_equal(lstat(p, &st), 0);
	assert_true(S_ISREG(st.st_mode));
	snprintf(p, sizeof(p), "%s/d", layer);
	assert_int_equal(lstat(p, &st), 0);
	assert_true(S_ISDIR(st.st_mode));
	snprintf(p, sizeof(p), "%s/hs", layer);
	assert_int_equal(lstat(p, &st), 0);
	assert_true(S_ISLNK(st.st_mode));
}

static void test_apply_arguments(void **state)
{
	struct ctx *c = *state;
	const struct ent ents[] = { { AE_IFREG, "f", "x" }, { 0, 0, 0 } };
	int fd = make_tar(ents);
	assert_ok(btrfslayer_create(c->h, "sealed", NULL, BTRFSLAYER_CREATE_READ_ONLY, NULL,
				    NULL, 0, ERR));
	expect_fail(btrfslayer_apply(c->h, "sealed", fd, 0, NULL, NULL, NULL, ERR), -EROFS,
		    "read-only");
	expect_fail(btrfslayer_apply(c->h, "missing", fd, 0, NULL, NULL, NULL, ERR), -ENOENT,
		    "missing");
	assert_ok(btrfslayer_create(c->h, "l", NULL, 0, NULL, NULL, 0, ERR));
	expect_fail(btrfslayer_apply(c->h, "l", fd, 1u << 7, NULL, NULL, NULL, ERR), -EINVAL,
		    "flags");
	expect_fail(btrfslayer_apply(c->h, "l", -1, 0, NULL, NULL, NULL, ERR), -EBADF, "file "
		    "descriptor");
	expect_fail(btrfslayer_apply(c->h, "../x", fd, 0, NULL, NULL, NULL, ERR), -EINVAL, NULL);
	close(fd);
}

/* ---- export ------------------------------------------------------------------ */

/* Export id (against parent, or NULL) into a fresh memfd, rewound. */
static int export_to_memfd(struct ctx *c, const char *id, const char *parent)
{
	int fd = memfd_create("export", MFD_CLOEXEC);
	assert_true(fd >= 0);
	assert_ok(btrfslayer_export(c->h, id, parent, fd, 0, NULL, NULL, ERR));
	assert_int_equal(lseek(fd, 0, SEEK_SET), 0);
	return fd;
}

static bool same_bytes(int a, int b)
{
	struct stat sa, sb;
	assert_int_equal(fstat(a, &sa), 0);
	assert_int_equal(fstat(b, &sb), 0);
	if (sa.st_size != sb.st_size)
		return false;
	char *ma = malloc((size_t)sa.st_size + 1), *mb = malloc((size_t)sb.st_size + 1);
	assert_int_equal(pread(a, ma, (size_t)sa.st_size, 0), sa.st_size);
	assert_int_equal(pread(b, mb, (size_t)sb.st_size, 0), sb.st_size);
	bool same = !memcmp(ma, mb, (size_t)sa.st_size);
	free(ma);
	free(mb);
	return same;
}

/* GNU tar's extraction of the export over a copy of the parent's files,
 * whiteouts done by hand first (GNU tar knows none), must equal the
 * layer.  An opaque directory is removed whole beforehand (its entry comes
 * with the export): GNU tar would keep the old directory's xattrs. */
static void gnu_roundtrip(struct ctx *c, const char *parent_dir, const char *layer_dir,
			  int tar_fd, unsigned i)
{
	char tar[PATH_MAX], dir[PATH_MAX], cmd[6 * PATH_MAX];
	snprintf(tar, sizeof(tar), "%s/export-%u.tar", c->work, i);
	snprintf(dir, sizeof(dir), "%s/gnu-%u", c->work, i);
	int out = open(tar, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	assert_true(out >= 0);
	struct stat st;
	assert_int_equal(fstat(tar_fd, &st), 0);
	char *bytes = malloc((size_t)st.st_size + 1);
	assert_int_equal(pread(tar_fd, bytes, (size_t)st.st_size, 0), st.st_size);
	assert_int_equal(write(out, bytes, (size_t)st.st_size), st.st_size);
	free(bytes);
	close(out);
	snprintf(cmd, sizeof(cmd),
		 "set -e; cp -a --sparse=always '%s' '%s'; cd '%s';"
		 "tar -tf '%s' | while IFS= read -r p; do"
		 "  b=${p##*/}; d=${p%%\"$b\"};"
		 "  case $b in"
		 "  .wh..wh..opq) rm -rf \"./$d\";;"
		 "  .wh.*) rm -rf \"./$d${b#.wh.}\";;"
		 "  *) case $p in"
		 "     */) if [ -L \"./${p%%/}\" ] || [ -e \"./$p\" -a ! -d \"./$p\" ]; then"
		 "           rm -f \"./${p%%/}\"; fi;;"
		 "     *) if [ -d \"./$p\" ] && [ ! -L \"./$p\" ]; then rm -rf \"./$p\"; fi;;"
		 "     esac;;"
		 "  esac; done;"
		 "tar --xattrs --xattrs-include='*' --same-owner -p --numeric-owner "
		 "--exclude='.wh.*' -xf '%s'",
		 parent_dir, dir, dir, tar, tar);
	run(cmd);
	assert_same_tree(layer_dir, dir, false);
	snprintf(cmd, sizeof(cmd), "rm -rf '%s' '%s'", dir, tar);
	run(cmd);
}

/* Random trees, random mutations: export then apply onto a snapshot of the
 * parent is the layer; the export is the same bytes twice; GNU tar agrees
 * (every fourth case). */
static void test_export_roundtrip(void **state)
{
	struct ctx *c = *state;
	const char *env = getenv("TAR_CASES");
	unsigned cases = env ? (unsigned)strtoul(env, NULL, 10) : 40;
	for (unsigned i = 0; i < cases; i++) {
		char p[32], l[32], a[32], e[32];
		char pdir[PATH_MAX], ldir[PATH_MAX], adir[PATH_MAX], edir[PATH_MAX];
		snprintf(p, sizeof(p), "p%u", i);
		snprintf(l, sizeof(l), "l%u", i);
		snprintf(a, sizeof(a), "a%u", i);
		snprintf(e, sizeof(e), "e%u", i);
		layer_path(c, p, pdir, sizeof(pdir));
		layer_path(c, l, ldir, sizeof(ldir));
		layer_path(c, a, adir, sizeof(adir));
		layer_path(c, e, edir, sizeof(edir));
		assert_ok(btrfslayer_create(c->h, p, NULL, 0, NULL, NULL, 0, ERR));
		assert_int_equal(tree_random(pdir, i + 1, 30 + i % 40), 0);
		assert_ok(btrfslayer_create(c->h, l, p, 0, NULL, NULL, 0, ERR));
		assert_int_equal(tree_mutate(ldir, i + 1, 5 + i % 20), 0);

		int tar = export_to_memfd(c, l, p), again = export_to_memfd(c, l, p);
		if (!same_bytes(tar, again))
			fail_msg("case %u: two exports of the same layer differ", i);
		close(again);
		assert_ok(btrfslayer_create(c->h, a, p, 0, NULL, NULL, 0, ERR));
		assert_ok(btrfslayer_apply(c->h, a, tar, 0, NULL, NULL, NULL, ERR));
		char *d = tree_diff(ldir, adir, false);
		if (d) {
			print_error("case %u: layer and parent + export differ: %s\n", i, d);
			free(d);
			fail();
		}
		if (i % 4 == 0) {
			assert_int_equal(lseek(tar, 0, SEEK_SET), 0);
			gnu_roundtrip(c, pdir, ldir, tar, i);
		}
		close(tar);

		/* no parent: everything, onto an empty layer */
		tar = export_to_memfd(c, p, NULL);
		assert_ok(btrfslayer_create(c->h, e, NULL, 0, NULL, NULL, 0, ERR));
		assert_ok(btrfslayer_apply(c->h, e, tar, 0, NULL, NULL, NULL, ERR));
		close(tar);
		d = tree_diff(pdir, edir, false);
		if (d) {
			print_error("case %u: layer and its full export differ: %s\n", i, d);
			free(d);
			fail();
		}
		const char *ids[] = { a, e, l, p };
		for (size_t k = 0; k < 4; k++)
			assert_ok(btrfslayer_remove(c->h, ids[k], ERR));
	}
}

/* Progress is told, ends at its total, and export checks its arguments. */
static void test_export_arguments(void **state)
{
	struct ctx *c = *state;
	char dir[PATH_MAX], cmd[2 * PATH_MAX];
	assert_ok(btrfslayer_create(c->h, "l", NULL, 0, NULL, NULL, 0, ERR));
	layer_path(c, "l", dir, sizeof(dir));
	snprintf(cmd, sizeof(cmd), "head -c 3000000 /dev/urandom > '%s/big'", dir);
	run(cmd);
	int fd = memfd_create("export", MFD_CLOEXEC);
	uint64_t seen[3] = { 0, 0, 0 };
	assert_ok(btrfslayer_export(c->h, "l", NULL, fd, 0, progress_fn, seen, ERR));
	assert_true(seen[2] >= 2);
	assert_int_equal(seen[0], 3000000);
	assert_int_equal(seen[1], 3000000);
	/* a callback that asks to stop: -ECANCELED, named */
	int stops = 0;
	expect_fail(btrfslayer_export(c->h, "l", NULL, fd, 0, stop_fn, &stops, ERR), -ECANCELED,
		    "stopped by the progress callback");
	assert_int_equal(stops, 1);
	expect_fail(btrfslayer_export(c->h, "l", NULL, fd, 1u << 5, NULL, NULL, ERR), -EINVAL,
		    "flags");
	expect_fail(btrfslayer_export(c->h, "l", NULL, -1, 0, NULL, NULL, ERR), -EBADF, NULL);
	expect_fail(btrfslayer_export(c->h, "nope", NULL, fd, 0, NULL, NULL, ERR), -ENOENT, NULL);
	close(fd);
	/* applied, the unpacked size is the file's */
	fd = export_to_memfd(c, "l", NULL);
	uint64_t unpacked = 0;
	assert_ok(btrfslayer_create(c->h, "m", NULL, 0, NULL, NULL, 0, ERR));
	/* stopped by its callback, apply says so and reports nothing unpacked */
	stops = 0;
	expect_fail(btrfslayer_apply(c->h, "m", fd, 0, stop_fn, &stops, &unpacked, ERR),
		    -ECANCELED, "stopped by the progress callback");
	assert_int_equal(stops, 1);
	assert_int_equal(unpacked, 0);
	assert_int_equal(lseek(fd, 0, SEEK_SET), 0);
	assert_ok(btrfslayer_apply(c->h, "m", fd, 0, NULL, NULL, &unpacked, ERR));
	assert_int_equal(unpacked, 3000000);
	close(fd);
}

/* The entry names of the tar in fd, one a line. */
static char *tar_names(int fd)
{
	char *out = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&out, &len);
	struct archive *a = archive_read_new();
	archive_read_support_format_tar(a);
	assert_int_equal(lseek(fd, 0, SEEK_SET), 0);
	assert_int_equal(archive_read_open_fd(a, fd, 10240), ARCHIVE_OK);
	struct archive_entry *e;
	while (archive_read_next_header(a, &e) == ARCHIVE_OK)
		fprintf(f, "%s\n", archive_entry_pathname(e));
	archive_read_free(a);
	fclose(f);
	assert_int_equal(lseek(fd, 0, SEEK_SET), 0);
	return out;
}

/* A directory replaced by another: the opaque marker right after it, and
 * its whole content (an unchanged-looking file too); names that are not
 * UTF-8 go through. */
static void test_export_opaque(void **state)
{
	struct ctx *c = *state;
	char p[PATH_MAX], l[PATH_MAX], a[PATH_MAX], cmd[4 * PATH_MAX];
	assert_ok(btrfslayer_create(c->h, "p", NULL, 0, NULL, NULL, 0, ERR));
	layer_path(c, "p", p, sizeof(p));
	snprintf(cmd, sizeof(cmd), "set -e; cd '%s'; mkdir -p rep/old keep; echo a > rep/old/f;"
		 "echo b > rep/same; touch -d 2020-01-01 rep/same; printf x > \"$(printf 'lat\\351n')\"",
		 p);
	run(cmd);
	assert_ok(btrfslayer_create(c->h, "l", "p", 0, NULL, NULL, 0, ERR));
	layer_path(c, "l", l, sizeof(l));
	snprintf(cmd, sizeof(cmd), "set -e; cd '%s'; rm -rf rep; mkdir rep; echo b > rep/same;"
		 "touch -d 2020-01-01 rep/same; echo new > rep/new; rm \"$(printf 'lat\\351n')\";"
		 "printf y > \"$(printf 'lat\\351n2')\"", l);
	run(cmd);
	int fd = export_to_memfd(c, "l", "p");
	char *names = tar_names(fd);
	assert_string_equal(names, ".wh.lat\351n\nlat\351n2\nrep/\nrep/.wh..wh..opq\nrep/new\n"
			    "rep/same\n");
	free(names);
	assert_ok(btrfslayer_create(c->h, "a", "p", 0, NULL, NULL, 0, ERR));
	assert_ok(btrfslayer_apply(c->h, "a", fd, 0, NULL, NULL, NULL, ERR));
	close(fd);
	layer_path(c, "a", a, sizeof(a));
	assert_same_tree(l, a, false);
}

static int count_change(int kind, const char *path, void *userdata)
{
	(void)kind;
	(void)path;
	++*(int *)userdata;
	return 0;
}

/* Looking for changes changes nothing: the walk reads directories without
 * writing their atime (under relatime, the default, it would: an atime
 * older than the mtime), so a later send does not carry them either. */
static void test_changes_keeps_atime(void **state)
{
	struct ctx *c = *state;
	char p[PATH_MAX], l[PATH_MAX], cmd[2 * PATH_MAX];
	assert_ok(btrfslayer_create(c->h, "p", NULL, 0, NULL, NULL, 0, ERR));
	layer_path(c, "p", p, sizeof(p));
	snprintf(cmd, sizeof(cmd), "set -e; cd '%s'; mkdir -p d/e; echo a > d/e/f;"
		 "touch -a -d 2001-02-03 d d/e", p);
	run(cmd);
	assert_ok(btrfslayer_create(c->h, "l", "p", 0, NULL, NULL, 0, ERR));
	layer_path(c, "l", l, sizeof(l));
	const uint32_t ways[] = { 0, BTRFSLAYER_CHANGES_WALK };
	for (size_t i = 0; i < sizeof(ways) / sizeof(ways[0]); i++) {
		int n = 0;
		assert_ok(btrfslayer_changes(c->h, "l", "p", ways[i], count_change, &n, ERR));
		assert_int_equal(n, 0);
		n = 0;
		assert_ok(btrfslayer_changes(c->h, "l", NULL, ways[i], count_change, &n, ERR));
		assert_int_equal(n, 3);	/* d, d/e, d/e/f: all added */
	}
	const char *dirs[] = { "d", "d/e" };
	for (size_t i = 0; i < 2; i++) {
		char path[2 * PATH_MAX];
		struct stat st;
		snprintf(path, sizeof(path), "%s/%s", l, dirs[i]);
		assert_int_equal(lstat(path, &st), 0);
		struct tm tm;
		gmtime_r(&st.st_atime, &tm);
		assert_int_equal(tm.tm_year + 1900, 2001);
	}
}

int main(void)
{
	harness_start();
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_apply_gnu_tar, setup, teardown),
		cmocka_unit_test_setup_teardown(test_apply_whiteouts, setup, teardown),
		cmocka_unit_test_setup_teardown(test_apply_hostile, setup, teardown),
		cmocka_unit_test_setup_teardown(test_apply_replaces_symlinks, setup, teardown),
		cmocka_unit_test_setup_teardown(test_apply_arguments, setup, teardown),
		cmocka_unit_test_setup_teardown(test_export_roundtrip, setup, teardown),
		cmocka_unit_test_setup_teardown(test_export_arguments, setup, teardown),
		cmocka_unit_test_setup_teardown(test_export_opaque, setup, teardown),
		cmocka_unit_test_setup_teardown(test_changes_keeps_atime, setup, teardown),
	};
	if (getenv("BTRFSLAYER_TEST_FILTER"))
		cmocka_set_test_filter(getenv("BTRFSLAYER_TEST_FILTER"));
	return cmocka_run_group_tests_name("tar", tests, NULL, NULL);
}
