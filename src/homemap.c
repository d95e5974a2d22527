/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * What home records about itself, next to HOME/.lock:
 *
 *   .idmap  the user-namespace maps home was laid out for (below);
 *   .mount  the bind mount the library made on home (mount.c).
 *
 * Both are written and read only under the home lock (session.c), so a
 * record is never seen half-written or by two writers at once: each is
 * written whole under "<name>.tmp", then renamed over the record.  A crash
 * can leave the temporary, which the next write replaces.
 *
 * The id-map record's invariant: a home that has one was laid out (owner,
 * group, mode of home, subvolumes/, quotas/) for exactly those maps, and
 * every layer the library made in it since belongs to their container root.
 * An open without maps adopts them; an open with other maps is refused.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "internal.h"

#define IDMAP_FILE ".idmap"
#define IDMAP_HEADER "# btrfslayer id maps: uid|gid CONTAINER HOST SIZE\n"
/* Far above the kernel's 340 lines of a uid_map, far below any harm. */
#define RECORD_MAX 65536

int bl_record_read(int dirfd, const char *name, char *buf, size_t size, const char *path,
		   btrfslayer_error **err)
{
	int fd = bl_open_file_beneath(dirfd, name, O_RDONLY | O_NONBLOCK);
	if (fd == -ENOENT)
		return fd;
	if (fd < 0)
		return bl_fail(err, fd, "read record: %s", path);
	struct stat st;
	int r = fstat(fd, &st) < 0 ? -errno : 0;
	if (r == 0 && !S_ISREG(st.st_mode))
		r = bl_fail_msg(err, -EINVAL, "read record: %s: not a regular file, "
				"refusing to use it", path);
	size_t len = 0;
	while (r == 0 && len < size) {
		ssize_t n = read(fd, buf + len, size - len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			r = -errno;
		else if (n == 0)
			break;
		else
			len += (size_t)n;
	}
	close(fd);
	if (r == 0 && len == size)
		r = bl_fail_msg(err, -EFBIG, "read record: %s: larger than %zu bytes, "
				"refusing to use it", path, size - 1);
	else if (r < 0 && err && !*err)
		bl_fail(err, r, "read record: %s", path);
	if (r < 0)
		return r;
	buf[len] = '\0';
	return (int)len;
}

int bl_record_write(int dirfd, const char *name, const char *text, bool durable,
		    const char *path, btrfslayer_error **err)
{
	char tmp[NAME_MAX + 1];
	snprintf(tmp, sizeof(tmp), "%s.tmp", name);
	if (unlinkat(dirfd, tmp, 0) < 0 && errno != ENOENT)
		return bl_fail(err, -errno, "write record: remove %s.tmp", path);
	int fd = openat(dirfd, tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (fd < 0)
		return bl_fail(err, -errno, "write record: %s.tmp", path);
	size_t len = strlen(text), done = 0;
	int r = 0;
	while (r == 0 && done < len) {
		ssize_t n = write(fd, text + done, len - done);
		if (n < 0 && errno != EINTR)
			r = -errno;
		else if (n > 0)
			done += (size_t)n;
	}
	if (r == 0 && durable && fsync(fd) < 0)
		r = -errno;
	if (close(fd) < 0 && r == 0)
		r = -errno;
	if (r == 0 && renameat(dirfd, tmp, dirfd, name) < 0)
		r = -errno;
	if (r < 0) {
		unlinkat(dirfd, tmp, 0);
		return bl_fail(err, r, "write record: %s", path);
	}
	/* the rename itself must survive a crash too */
	if (durable && fsync(dirfd) < 0)
		return bl_fail(err, -errno, "write record: sync the directory of %s", path);
	return 0;
}

void bl_record_remove(int dirfd, const char *name, const char *path)
{
	if (unlinkat(dirfd, name, 0) < 0 && errno != ENOENT)
		bl_log(BTRFSLAYER_LOG_WARNING, "remove record: %s: %s", path, strerror(errno));
}

/* ---- the id maps ------------------------------------------------------------ */

struct maps {
	btrfslayer_idmap *map[2];	/* [0] uid, [1] gid */
	size_t n[2];
};

static const char *const kinds[2] = { "uid", "gid" };

static void maps_free(struct maps *m)
{
	free(m->map[0]);
	free(m->map[1]);
}

static int by_container_id(const void *a, const void *b)
{
	const btrfslayer_idmap *x = a, *y = b;
	return x->container_id < y->container_id ? -1 : x->container_id > y->container_id;
}

/* A sorted copy: maps that differ only in order are the same maps. */
static int maps_copy(struct maps *m, int kind, const btrfslayer_idmap *map, size_t n)
{
	m->n[kind] = n;
	m->map[kind] = NULL;
	if (!n)
		return 0;
	m->map[kind] = malloc(n * sizeof(*map));
	if (!m->map[kind])
		return -ENOMEM;
	memcpy(m->map[kind], map, n * sizeof(*map));
	qsort(m->map[kind], n, sizeof(*map), by_container_id);
	return 0;
}

static bool maps_equal(const struct maps *a, const struct maps *b)
{
	/* btrfslayer_idmap is three uint32_t: no padding to differ in */
	for (int k = 0; k < 2; k++)
		if (a->n[k] != b->n[k] ||
		    (a->n[k] && memcmp(a->map[k], b->map[k], a->n[k] * sizeof(*a->map[k]))))
			return false;
	return true;
}

/* "uid map 0:100000:65536, gid map none", for messages; malloc()ed. */
static char *maps_describe(const struct maps *m)
{
	char *text = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&text, &len);
	if (!f)
		return NULL;
	for (int k = 0; k < 2; k++) {
		fprintf(f, "%s%s map ", k ? ", " : "", kinds[k]);
		if (!m->n[k])
			fputs("none", f);
		for (size_t i = 0; i < m->n[k]; i++)
			fprintf(f, "%s%" PRIu32 ":%" PRIu32 ":%" PRIu32, i ? "," : "",
				m->map[k][i].container_id, m->map[k][i].host_id,
				m->map[k][i].size);
	}
	if (fclose(f) != 0) {
		free(text);
		return NULL;
	}
	return text;
}

static char *maps_format(const struct maps *m)
{
	char *text = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&text, &len);
	if (!f)
		return NULL;
	fputs(IDMAP_HEADER, f);
	for (int k = 0; k < 2; k++)
		for (size_t i = 0; i < m->n[k]; i++)
			fprintf(f, "%s %" PRIu32 " %" PRIu32 " %" PRIu32 "\n", kinds[k],
				m->map[k][i].container_id, m->map[k][i].host_id,
				m->map[k][i].size);
	if (fclose(f) != 0) {
		free(text);
		return NULL;
	}
	return text;
}

static bool parse_u32(const char *s, uint32_t *out)
{
	char *end;
	if (*s < '0' || *s > '9')
		return false;
	errno = 0;
	unsigned long long v = strtoull(s, &end, 10);
	if (errno || *end || v > UINT32_MAX)
		return false;
	*out = (uint32_t)v;
	return true;
}

/* Parse the record's text into m (sorted, checked like the caller's maps);
 * 0 or -EINVAL/-ENOMEM. */
static int maps_parse(char *text, struct maps *m, const char *path, btrfslayer_error **err)
{
	size_t cap[2] = { 0, 0 }, line_no = 0;
	char *save = NULL;
	for (char *line = strtok_r(text, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		line_no++;
		if (line[0] == '#')
			continue;
		char kind[4], c[16], h[16], s[16], extra;
		btrfslayer_idmap e;
		int k = -1;
		if (sscanf(line, "%3s %15s %15s %15s %c", kind, c, h, s, &extra) == 4)
			k = !strcmp(kind, "uid") ? 0 : !strcmp(kind, "gid") ? 1 : -1;
		if (k < 0 || !parse_u32(c, &e.container_id) || !parse_u32(h, &e.host_id) ||
		    !parse_u32(s, &e.size))
			return bl_fail_msg(err, -EINVAL, "read id map record: %s: line %zu is not "
					   "\"uid|gid CONTAINER HOST SIZE\"", path, line_no);
		if (m->n[k] == cap[k]) {
			cap[k] = cap[k] ? 2 * cap[k] : 4;
			btrfslayer_idmap *grown = realloc(m->map[k], cap[k] * sizeof(e));
			if (!grown)
				return bl_fail(err, -ENOMEM, "read id map record: %s", path);
			m->map[k] = grown;
		}
		m->map[k][m->n[k]++] = e;
	}
	for (int k = 0; k < 2; k++) {
		btrfslayer_error *why = NULL;
		uint32_t root;
		int r = bl_idmap_root(m->map[k], m->n[k], k ? "gid map" : "uid map", &root, &why);
		if (r < 0) {
			bl_fail_msg(err, r, "read id map record: %s: %s", path,
				    btrfslayer_error_message(why));
			btrfslayer_error_free(why);
			return r;
		}
		if (m->n[k])
			qsort(m->map[k], m->n[k], sizeof(*m->map[k]), by_container_id);
	}
	return 0;
}

static int refuse(btrfslayer *h, const struct maps *recorded, const struct maps *given,
		  btrfslayer_error **err)
{
	char *was = maps_describe(recorded), *asked = maps_describe(given);
	int r = bl_fail_msg(err, -EBUSY, "check id maps: %s: home was laid out for %s, "
			    "this open asks for %s (every handle of a home uses its maps; "
			    "open without maps to adopt them)", h->home,
			    was ? was : "(out of memory)", asked ? asked : "(out of memory)");
	free(was);
	free(asked);
	return r;
}

/* The caller's maps, sorted, in m; 0 or -ENOMEM (error set). */
static int given_maps(btrfslayer *h, const btrfslayer_idmap *uid_map, size_t n_uid_map,
		      const btrfslayer_idmap *gid_map, size_t n_gid_map, struct maps *m,
		      btrfslayer_error **err)
{
	int r = maps_copy(m, 0, uid_map, n_uid_map);
	if (r == 0)
		r = maps_copy(m, 1, gid_map, n_gid_map);
	return r < 0 ? bl_fail(err, r, "check id maps: %s", h->home) : 0;
}

int bl_home_maps_check(btrfslayer *h, const btrfslayer_idmap *uid_map, size_t n_uid_map,
		       const btrfslayer_idmap *gid_map, size_t n_gid_map, bool home_made,
		       bool *lay_out, btrfslayer_error **err)
{
	char path[PATH_MAX], *text = malloc(RECORD_MAX);
	struct maps given = { { NULL, NULL }, { 0, 0 } }, recorded = given;
	bool explicit = n_uid_map || n_gid_map;
	*lay_out = false;
	snprintf(path, sizeof(path), "%s/" IDMAP_FILE, h->home);
	int r = text ? given_maps(h, uid_map, n_uid_map, gid_map, n_gid_map, &given, err)
		     : bl_fail(err, -ENOMEM, "check id maps: %s", h->home);
	if (r == 0)
		r = bl_record_read(h->home_fd, IDMAP_FILE, text, RECORD_MAX, path, err);
	if (r >= 0) {
		r = maps_parse(text, &recorded, path, err);
		if (r == 0 && explicit && !maps_equal(&recorded, &given))
			r = refuse(h, &recorded, &given, err);
		if (r == 0 && !explicit) {	/* adopt them */
			bl_idmap_root(recorded.map[0], recorded.n[0], "uid map", &h->root_uid, NULL);
			bl_idmap_root(recorded.map[1], recorded.n[1], "gid map", &h->root_gid, NULL);
		}
	} else if (r == -ENOENT) {
		/* without maps, a home found without a record is someone
		 * else's: it stays as it is */
		*lay_out = explicit || home_made;
		r = 0;
	}
	free(text);
	maps_free(&given);
	maps_free(&recorded);
	return r;
}

int bl_home_maps_write(btrfslayer *h, const btrfslayer_idmap *uid_map, size_t n_uid_map,
		       const btrfslayer_idmap *gid_map, size_t n_gid_map, btrfslayer_error **err)
{
	char path[PATH_MAX], *text = NULL;
	struct maps given = { { NULL, NULL }, { 0, 0 } };
	snprintf(path, sizeof(path), "%s/" IDMAP_FILE, h->home);
	int r = given_maps(h, uid_map, n_uid_map, gid_map, n_gid_map, &given, err);
	if (r == 0 && !(text = maps_format(&given)))
		r = bl_fail(err, -ENOMEM, "write record: %s", path);
	if (r == 0)
		r = bl_record_write(h->home_fd, IDMAP_FILE, text, true, path, err);
	if (r == 0)
		h->idmap_written = true;
	free(text);
	maps_free(&given);
	return r;
}

void bl_home_maps_undo(btrfslayer *h, int dirfd)
{
	char path[PATH_MAX];
	if (!h->idmap_written)
		return;
	snprintf(path, sizeof(path), "%s/" IDMAP_FILE, h->home);
	bl_record_remove(dirfd, IDMAP_FILE, path);
	h->idmap_written = false;
}
