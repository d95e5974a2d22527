/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * A program built against the *installed* library, as a runtime would build
 * it: only <btrfslayer.h> and the link flags of pkg-config or CMake's
 * find_package (scripts/consumer-test.sh builds it both ways).  On a home it
 * is given (on a btrfs), it creates a layer, writes a file into it, seals
 * it, checks that it refuses writes, inspects it and a snapshot of it, and
 * removes both.
 *
 *     consumer HOME NAME        (NAME tells apart the layers of two builds)
 *
 * Plain C99 and POSIX, so the header is checked to serve such programs too.
 * Exit status 0 when every step did what a user would check, 1 otherwise.
 */
#define _POSIX_C_SOURCE 200809L
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <btrfslayer.h>

static const char *step = "start";

static int fail(const char *what)
{
	fprintf(stderr, "consumer: %s: %s\n", step, what);
	return 1;
}

/* A failed library call: its message, and the error object freed. */
static int lib_fail(int rc, btrfslayer_error *err)
{
	fprintf(stderr, "consumer: %s: %s (%d)\n", step,
		err ? btrfslayer_error_message(err) : btrfslayer_strerror(rc), rc);
	btrfslayer_error_free(err);
	return 1;
}

/* The library that was loaded is the one whose header this was built with
 * (same major at least: the SONAME promises no more). */
static int check_version(void)
{
	char want[64];

	step = "version";
	snprintf(want, sizeof(want), "%d.%d.%d", BTRFSLAYER_VERSION_MAJOR,
		 BTRFSLAYER_VERSION_MINOR, BTRFSLAYER_VERSION_PATCH);
	if (strcmp(btrfslayer_version(), want) != 0) {
		fprintf(stderr, "consumer: version: the library is %s, the header %s\n",
			btrfslayer_version(), want);
		return 1;
	}
	return 0;
}

/* Writing a new file into the layer at `path`: 0 when it worked, else the
 * errno. */
static int try_write(const char *path)
{
	char file[4096];
	int fd;

	snprintf(file, sizeof(file), "%s/hello", path);
	fd = open(file, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0)
		return errno;
	if (write(fd, "hello\n", 6) != 6) {
		int e = errno ? errno : EIO;
		close(fd);
		return e;
	}
	return close(fd) < 0 ? errno : 0;
}

static int run(btrfslayer *h, const char *layer, const char *child)
{
	btrfslayer_error *err = NULL;
	btrfslayer_info info;
	char *path = NULL;
	int rc, e;

	step = "create";
	rc = btrfslayer_create(h, layer, NULL, 0, NULL, NULL, 0, &err);
	if (rc < 0)
		return lib_fail(rc, err);

	step = "get";
	rc = btrfslayer_get(h, layer, NULL, &path, &err);
	if (rc < 0)
		return lib_fail(rc, err);
	step = "write into the new layer";
	e = try_write(path);
	if (e != 0) {
		free(path);
		return fail(strerror(e));
	}

	step = "seal (btrfslayer_set_read_only)";
	rc = btrfslayer_set_read_only(h, layer, 1, &err);
	if (rc < 0) {
		free(path);
		return lib_fail(rc, err);
	}
	step = "write into the sealed layer";
	e = try_write(path);
	free(path);
	if (e != EROFS)
		return fail(e ? strerror(e) : "it worked; want EROFS");

	step = "layer_info";
	memset(&info, 0xff, sizeof(info));
	rc = btrfslayer_layer_info(h, layer, &info, sizeof(info), &err);
	if (rc < 0)
		return lib_fail(rc, err);
	if (!(info.flags & BTRFSLAYER_INFO_READ_ONLY))
		return fail("not read-only after the seal");
	if (info.flags & BTRFSLAYER_INFO_HAS_NESTED)
		return fail("says it holds nested subvolumes; it holds none");
	if (info.subvolume_id < 256)	/* BTRFS_FIRST_FREE_OBJECTID */
		return fail("subvolume id below the first one btrfs gives a subvolume");
	if (info.parent[0] != '\0')
		return fail("a parent for a layer made empty");
	if (info.otime_sec <= 0 || info.otime_nsec >= 1000000000u)
		return fail("no creation time");

	step = "snapshot of the sealed layer";
	rc = btrfslayer_create(h, child, layer, 0, NULL, NULL, 0, &err);
	if (rc < 0)
		return lib_fail(rc, err);
	step = "layer_info of the snapshot";
	rc = btrfslayer_layer_info(h, child, &info, sizeof(info), &err);
	if (rc < 0)
		return lib_fail(rc, err);
	if (strcmp(info.parent, layer) != 0)
		return fail("its parent is not the layer it was made from");
	if (info.flags & BTRFSLAYER_INFO_READ_ONLY)
		return fail("a snapshot made without the read-only flag is read-only");

	step = "remove";
	rc = btrfslayer_remove(h, child, &err);
	if (rc >= 0)
		rc = btrfslayer_remove(h, layer, &err);
	if (rc < 0)
		return lib_fail(rc, err);
	step = "exists after remove";
	rc = btrfslayer_exists(h, layer, &err);
	if (rc < 0)
		return lib_fail(rc, err);
	if (rc != 0)
		return fail("the layer is still there");
	return 0;
}

int main(int argc, char **argv)
{
	btrfslayer_error *err = NULL;
	btrfslayer *h = NULL;
	char layer[BTRFSLAYER_ID_MAX + 1], child[BTRFSLAYER_ID_MAX + 1];
	int rc, status;

	if (argc != 3) {
		fprintf(stderr, "usage: consumer HOME NAME\n");
		return 2;
	}
	snprintf(layer, sizeof(layer), "consumer-%s", argv[2]);
	snprintf(child, sizeof(child), "consumer-%s-child", argv[2]);
	if (check_version() != 0)
		return 1;

	step = "open";
	rc = btrfslayer_open(argv[1], NULL, 0, NULL, 0, NULL, 0, &h, &err);
	if (rc < 0)
		return lib_fail(rc, err);
	status = run(h, layer, child);
	step = "close";
	rc = btrfslayer_close(h, &err);
	if (rc < 0)
		status = lib_fail(rc, err);
	if (status == 0)
		printf("consumer %s: created, sealed, inspected and removed a layer in %s\n",
		       argv[2], argv[1]);
	return status;
}
