/* SPDX-License-Identifier: LGPL-2.1-or-later */
#define _GNU_SOURCE
#include <dirent.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <btrfsutil.h>

#include "fsprobe.h"
#include "harness.h"

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return x < y ? -1 : x > y;
}

size_t probe_qgroups(const char *mnt, struct probe_qgroup **out)
{
	char cmd[PATH_MAX + 64], line[512];
	size_t n = 0, cap = 16;
	*out = calloc(cap, sizeof(**out));
	snprintf(cmd, sizeof(cmd), "btrfs qgroup show --raw -r '%s' 2>/dev/null", mnt);
	FILE *p = popen(cmd, "r");
	if (!p || !*out)
		abort();
	while (fgets(line, sizeof(line), p)) {
		unsigned long long id, rfer, excl;
		char max[64];
		if (sscanf(line, "0/%llu %llu %llu %63s", &id, &rfer, &excl, max) != 4)
			continue;
		if (n == cap) {
			cap *= 2;
			*out = realloc(*out, cap * sizeof(**out));
			if (!*out)
				abort();
		}
		(*out)[n].id = id;
		(*out)[n].max_referenced = strcmp(max, "none") ? strtoull(max, NULL, 10) : 0;
		n++;
	}
	pclose(p);
	/* the tool lists them by id already; the struct starts with the id */
	qsort(*out, n, sizeof(**out), cmp_u64);
	return n;
}

size_t probe_subvolumes(const char *mnt, uint64_t **out)
{
	struct btrfs_util_subvolume_iterator *iter;
	struct btrfs_util_subvolume_info info;
	char *path;
	size_t n = 1, cap = 64;
	*out = calloc(cap, sizeof(**out));
	if (!*out || btrfs_util_create_subvolume_iterator(mnt, 5, 0, &iter) != BTRFS_UTIL_OK)
		abort();
	(*out)[0] = 5;
	while (btrfs_util_subvolume_iterator_next_info(iter, &path, &info) == BTRFS_UTIL_OK) {
		free(path);
		if (n == cap) {
			cap *= 2;
			*out = realloc(*out, cap * sizeof(**out));
			if (!*out)
				abort();
		}
		(*out)[n++] = info.id;
	}
	btrfs_util_destroy_subvolume_iterator(iter);
	qsort(*out, n, sizeof(**out), cmp_u64);
	return n;
}

static char *words(void)
{
	char *s = calloc(1, 1);
	if (!s)
		abort();
	return s;
}

static char *append(char *s, const char *word)
{
	s = realloc(s, strlen(s) + strlen(word) + 1);
	if (!s)
		abort();
	return strcat(s, word);
}

char *probe_stale_qgroups(const char *mnt)
{
	struct probe_qgroup *q;
	uint64_t *ids;
	size_t nq = probe_qgroups(mnt, &q), ns = probe_subvolumes(mnt, &ids);
	char *s = words();
	for (size_t i = 0; i < nq; i++)
		if (!bsearch(&q[i].id, ids, ns, sizeof(*ids), cmp_u64)) {
			char word[32];
			snprintf(word, sizeof(word), "0/%" PRIu64 " ", q[i].id);
			s = append(s, word);
		}
	free(q);
	free(ids);
	return s;
}

char *probe_limits(const char *mnt, bool stale)
{
	struct probe_qgroup *q;
	uint64_t *ids;
	size_t nq = probe_qgroups(mnt, &q), ns = probe_subvolumes(mnt, &ids);
	char *s = words();
	for (size_t i = 0; i < nq; i++)
		if (q[i].max_referenced &&
		    !bsearch(&q[i].id, ids, ns, sizeof(*ids), cmp_u64) == stale) {
			char word[64];
			snprintf(word, sizeof(word), "0/%" PRIu64 "=%" PRIu64 " ", q[i].id,
				 q[i].max_referenced);
			s = append(s, word);
		}
	free(q);
	free(ids);
	return s;
}

void probe_settle(const char *mnt)
{
	const char *const sync_fs[] = { "btrfs", "filesystem", "sync", mnt, NULL };
	const char *const sync_cleaner[] = { "btrfs", "subvolume", "sync", mnt, NULL };
	harness_run(sync_fs);
	harness_run(sync_cleaner);
	harness_run(sync_fs);
}

char *probe_listing(const char *dir, const char *skip_prefix)
{
	struct dirent **names;
	int n = scandir(dir, &names, NULL, alphasort);
	if (n < 0)
		return NULL;
	size_t len = 1;
	for (int i = 0; i < n; i++)
		len += strlen(names[i]->d_name) + 1;
	char *out = calloc(1, len);
	if (!out)
		abort();
	for (int i = 0; i < n; i++) {
		const char *name = names[i]->d_name;
		if (strcmp(name, ".") && strcmp(name, "..") &&
		    (!skip_prefix || strncmp(name, skip_prefix, strlen(skip_prefix)))) {
			if (*out)
				strcat(out, " ");
			strcat(out, name);
		}
		free(names[i]);
	}
	free(names);
	return out;
}

bool probe_has_prefix(const char *listing, const char *prefix)
{
	size_t len = strlen(prefix);
	for (const char *p = listing; p && *p; p += strcspn(p, " "), p += *p == ' ')
		if (!strncmp(p, prefix, len))
			return true;
	return false;
}

int probe_read_only(const char *path)
{
	bool ro;
	if (btrfs_util_is_subvolume(path) != BTRFS_UTIL_OK ||
	    btrfs_util_get_subvolume_read_only(path, &ro) != BTRFS_UTIL_OK)
		return -1;
	return ro;
}

uint64_t probe_subvolume_id(const char *path)
{
	uint64_t id;
	if (btrfs_util_is_subvolume(path) != BTRFS_UTIL_OK ||
	    btrfs_util_subvolume_id(path, &id) != BTRFS_UTIL_OK)
		return 0;
	return id;
}

static uint64_t mount_id(int dirfd, const char *name)
{
	struct statx stx;
	if (statx(dirfd, name, AT_SYMLINK_NOFOLLOW | (*name ? 0 : AT_EMPTY_PATH), STATX_MNT_ID,
		  &stx) < 0)
		return 0;
	return stx.stx_mnt_id;
}

bool probe_is_mount_point(const char *path)
{
	char parent[PATH_MAX];
	snprintf(parent, sizeof(parent), "%s/..", path);
	uint64_t here = mount_id(AT_FDCWD, path), above = mount_id(AT_FDCWD, parent);
	return here && above && here != above;
}

char *probe_home_listing(const char *home, const char *dir, const char *skip_prefix)
{
	char path[PATH_MAX];
	snprintf(path, sizeof(path), "%s/%s", home, dir);
	char *top = probe_listing(path, skip_prefix);
	snprintf(path, sizeof(path), "%s/%s/.staging", home, dir);
	char *staged = probe_listing(path, skip_prefix);
	size_t len = (top ? strlen(top) : 0) + 1;
	for (const char *p = staged; p && *p; p += strcspn(p, " "), p += *p == ' ')
		len += strlen(".staging/") + strcspn(p, " ") + 1;
	char *out = calloc(1, len);
	if (!out)
		abort();
	for (const char *p = top; p && *p; p += strcspn(p, " "), p += *p == ' ') {
		size_t n = strcspn(p, " ");
		if (n == strlen(".staging") && !strncmp(p, ".staging", n))
			continue;
		if (*out)
			strcat(out, " ");
		strncat(out, p, n);
	}
	for (const char *p = staged; p && *p; p += strcspn(p, " "), p += *p == ' ') {
		if (*out)
			strcat(out, " ");
		strcat(out, ".staging/");
		strncat(out, p, strcspn(p, " "));
	}
	free(top);
	free(staged);
	return out;
}

bool probe_has_reserved(const char *listing)
{
	return strstr(listing, ".tmp-") || strstr(listing, ".tomb-");
}

void probe_reserved_dir(const char *home, const char *dir, char *buf, size_t len,
			bool *staged)
{
	struct stat st;
	snprintf(buf, len, "%s/%s/.staging", home, dir);
	*staged = lstat(buf, &st) == 0 && S_ISDIR(st.st_mode);
	if (!*staged)
		snprintf(buf, len, "%s/%s", home, dir);
}

char *probe_fs_state(const char *mnt, const char *home)
{
	char *buf = NULL, path[PATH_MAX];
	size_t len = 0;
	struct btrfs_util_subvolume_iterator *it;
	if (btrfs_util_create_subvolume_iterator(mnt, 5, 0, &it) != BTRFS_UTIL_OK)
		return NULL;
	FILE *out = open_memstream(&buf, &len);
	if (!out) {
		btrfs_util_destroy_subvolume_iterator(it);
		return NULL;
	}
	char *sub;
	uint64_t id;
	while (btrfs_util_subvolume_iterator_next(it, &sub, &id) == BTRFS_UTIL_OK) {
		bool ro = false;
		snprintf(path, sizeof(path), "%s/%s", mnt, sub);
		btrfs_util_get_subvolume_read_only(path, &ro);
		fprintf(out, "subvolume %s %d\n", sub, ro);
		free(sub);
	}
	btrfs_util_destroy_subvolume_iterator(it);
	bool ok = true;
	for (int i = 0; i < 2 && ok; i++) {
		snprintf(path, sizeof(path), "%s%s", home, i ? "/subvolumes" : "");
		struct dirent **names;
		int n = scandir(path, &names, NULL, alphasort);
		ok = n >= 0;
		for (int j = 0; j < n; j++) {
			char entry[PATH_MAX + NAME_MAX + 2];
			struct stat st = { 0 };
			snprintf(entry, sizeof(entry), "%s/%s", path, names[j]->d_name);
			lstat(entry, &st);
			fprintf(out, "%s %o\n", entry, (unsigned)st.st_mode);
			free(names[j]);
		}
		if (n >= 0)
			free(names);
	}
	fclose(out);
	if (!ok) {
		free(buf);
		return NULL;
	}
	return buf;
}
