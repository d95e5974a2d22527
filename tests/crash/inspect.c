/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The filesystem as it is: directory entries, quota files, subvolumes and
 * qgroups read from the kernel, never through the library under test. */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>
#include <btrfsutil.h>
#include <linux/btrfs.h>
#include <linux/btrfs_tree.h>

#include "crash.h"

int read_quota_file(const char *home, const char *name, bool *present, uint64_t *size)
{
	char path[PATH_MAX], buf[64];
	snprintf(path, sizeof(path), "%s/quotas/%s", home, name);
	*present = false;
	*size = 0;
	int fd = open(path, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
	if (fd < 0)
		return errno == ENOENT ? 0 : -1;
	*present = true;
	ssize_t n = read(fd, buf, sizeof(buf));
	close(fd);
	if (n > 0 && buf[n - 1] == '\n')
		n--;
	if (n <= 0 || n >= 21)
		return -1;
	for (ssize_t i = 0; i < n; i++) {
		if (buf[i] < '0' || buf[i] > '9')
			return -1;
		*size = *size * 10 + (uint64_t)(buf[i] - '0');
	}
	return 0;
}

/* Walk items of one key type in [min_objectid, max_objectid] of a tree;
 * fn gets each item's objectid and offset.  0, or -errno (-ENOENT: no such
 * tree, as the quota tree when quotas are off). */
static int tree_walk(const char *mnt, uint64_t tree, uint64_t min_objectid,
		     uint64_t max_objectid, uint32_t type,
		     int (*fn)(uint64_t objectid, uint64_t offset, void *data), void *data)
{
	struct btrfs_ioctl_search_args args;
	int fd = open(mnt, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	memset(&args, 0, sizeof(args));
	struct btrfs_ioctl_search_key *sk = &args.key;
	sk->tree_id = tree;
	sk->min_objectid = min_objectid;
	sk->max_objectid = max_objectid;
	sk->min_type = sk->max_type = type;
	sk->max_offset = UINT64_MAX;
	sk->max_transid = UINT64_MAX;
	int r = 0;
	for (;;) {
		sk->nr_items = 4096;
		if (ioctl(fd, BTRFS_IOC_TREE_SEARCH, &args) < 0) {
			r = -errno;
			break;
		}
		if (sk->nr_items == 0)
			break;
		size_t off = 0;
		struct btrfs_ioctl_search_header sh;
		for (uint32_t i = 0; i < sk->nr_items; i++) {
			memcpy(&sh, args.buf + off, sizeof(sh));
			off += sizeof(sh) + sh.len;
			if (sh.type == type && (r = fn(sh.objectid, sh.offset, data)) < 0)
				goto out;
		}
		/* continue after the last key seen */
		sk->min_objectid = sh.objectid;
		sk->min_offset = sh.offset + 1;
		if (sh.offset == UINT64_MAX) {
			if (sh.objectid == max_objectid)
				break;
			sk->min_objectid++;
			sk->min_offset = 0;
		}
		sk->min_type = type;
	}
out:
	close(fd);
	return r;
}

struct id_list {
	uint64_t *ids;
	size_t n, max;
};

static int add_level0(uint64_t objectid, uint64_t qgroupid, void *data)
{
	(void)objectid;
	struct id_list *l = data;
	if (qgroupid >> 48)	/* level above 0 */
		return 0;
	if (l->n == l->max)
		return -E2BIG;
	l->ids[l->n++] = qgroupid;
	return 0;
}

int list_qgroups(const char *mnt, uint64_t *ids, size_t max)
{
	struct id_list l = { ids, 0, max };
	int r = tree_walk(mnt, BTRFS_QUOTA_TREE_OBJECTID, 0, 0, BTRFS_QGROUP_INFO_KEY,
			  add_level0, &l);
	if (r == -ENOENT)
		return 0;	/* quotas off: no quota tree */
	return r < 0 ? r : (int)l.n;
}

static int found(uint64_t objectid, uint64_t offset, void *data)
{
	(void)objectid;
	(void)offset;
	*(int *)data = 1;
	return 0;
}

int root_item_exists(const char *mnt, uint64_t id)
{
	int seen = 0;
	int r = tree_walk(mnt, BTRFS_ROOT_TREE_OBJECTID, id, id, BTRFS_ROOT_ITEM_KEY, found,
			  &seen);
	return r < 0 ? r : seen;
}

int subvolume_read_only(const char *path)
{
	uint64_t flags = 0;
	int fd = open(path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	int r = ioctl(fd, BTRFS_IOC_SUBVOL_GETFLAGS, &flags) < 0 ? -errno : 0;
	close(fd);
	return r < 0 ? r : !!(flags & BTRFS_SUBVOL_RDONLY);
}

int list_subvolumes(const char *mnt, struct subvol **out)
{
	struct btrfs_util_subvolume_iterator *it;
	struct subvol *s = NULL;
	int n = 0;
	*out = NULL;
	if (btrfs_util_create_subvolume_iterator(mnt, BTRFS_FS_TREE_OBJECTID, 0, &it))
		return -EIO;
	for (;;) {
		char *path;
		uint64_t id;
		enum btrfs_util_error e = btrfs_util_subvolume_iterator_next(it, &path, &id);
		if (e == BTRFS_UTIL_ERROR_STOP_ITERATION)
			break;
		struct subvol *grown = e ? NULL : reallocarray(s, (size_t)n + 1, sizeof(*s));
		if (!grown) {
			if (!e)
				free(path);
			free_subvols(s, n);
			btrfs_util_destroy_subvolume_iterator(it);
			return -EIO;
		}
		s = grown;
		s[n++] = (struct subvol){ id, path };
	}
	btrfs_util_destroy_subvolume_iterator(it);
	*out = s;
	return n;
}

void free_subvols(struct subvol *s, int n)
{
	for (int i = 0; i < n; i++)
		free(s[i].path);
	free(s);
}

static int cmp_names(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Append the entries of directory `path` to names (n of them so far); the
 * entries of its .staging directory count as its own. */
static char **add_entries(char **names, size_t *n, const char *path, bool top)
{
	DIR *d = opendir(path);
	struct dirent *e;
	if (!d)
		return top ? NULL : names;
	while (names && (e = readdir(d))) {
		if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
			continue;
		if (top && !strcmp(e->d_name, ".staging")) {
			char staging[PATH_MAX];
			snprintf(staging, sizeof(staging), "%s/.staging", path);
			names = add_entries(names, n, staging, false);
			continue;
		}
		char **grown = reallocarray(names, *n + 2, sizeof(*names));
		if (!grown)
			break;
		names = grown;
		names[(*n)++] = strdup(e->d_name);
		names[*n] = NULL;
	}
	closedir(d);
	return names;
}

char **list_dir(const char *path)
{
	char **names = calloc(1, sizeof(*names));
	size_t n = 0;
	if (!names)
		return NULL;
	char **all = add_entries(names, &n, path, true);
	if (!all) {
		free(names);
		return NULL;
	}
	qsort(all, n, sizeof(*all), cmp_names);
	return all;
}

void free_names(char **names)
{
	for (size_t i = 0; names && names[i]; i++)
		free(names[i]);
	free(names);
}

static void dump_dir(const char *home, const char *sub)
{
	char path[PATH_MAX];
	snprintf(path, sizeof(path), "%s/%s", home, sub);
	char **names = list_dir(path);
	fprintf(stderr, "  %s/:", sub);
	for (size_t i = 0; names && names[i]; i++) {
		bool present;
		uint64_t size;
		if (!strcmp(sub, "quotas") && read_quota_file(home, names[i], &present, &size) == 0 &&
		    size)
			fprintf(stderr, " %s=%" PRIu64, names[i], size);
		else
			fprintf(stderr, " %s", names[i]);
	}
	fprintf(stderr, "%s\n", names ? "" : " (unreadable)");
	free_names(names);
}

void dump_disk(struct ctx *c)
{
	uint64_t q[1024];
	struct subvol *s;
	fprintf(stderr, "on disk (home %s):\n", c->home);
	dump_dir(c->home, "subvolumes");
	dump_dir(c->home, "quotas");
	int n = list_subvolumes(c->mnt, &s);
	fprintf(stderr, "  subvolumes of the filesystem:");
	for (int i = 0; i < n; i++)
		fprintf(stderr, " %" PRIu64 ":%s", s[i].id, s[i].path);
	fprintf(stderr, "%s\n", n < 0 ? " (cannot list)" : "");
	free_subvols(s, n > 0 ? n : 0);
	n = list_qgroups(c->mnt, q, sizeof(q) / sizeof(q[0]));
	fprintf(stderr, "  level-0 qgroups:");
	for (int i = 0; i < n; i++)
		fprintf(stderr, " 0/%" PRIu64 "%s", q[i],
			root_item_exists(c->mnt, q[i]) == 1 ? "" : "(no root item)");
	fprintf(stderr, "%s\n", n < 0 ? " (cannot list)" : "");
	char cmd[700];
	snprintf(cmd, sizeof(cmd), "btrfs qgroup show --raw '%s' 2>&1 | sed 's/^/    /' >&2",
		 c->mnt);
	fflush(stderr);
	if (system(cmd) != 0)
		fprintf(stderr, "    (btrfs qgroup show failed)\n");
}
