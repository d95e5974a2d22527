/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* What a runtime shows about the store: library, home, filesystem, kernel. */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

#define STR2(x) #x
#define STR(x) STR2(x)

BTRFSLAYER_API const char *btrfslayer_version(void)
{
	return STR(BTRFSLAYER_VERSION_MAJOR) "." STR(BTRFSLAYER_VERSION_MINOR) "."
		STR(BTRFSLAYER_VERSION_PATCH);
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* The entries of a sysfs directory, sorted, comma-separated ("" if none). */
static char *sysfs_names(const char *dir_path)
{
	DIR *dir = opendir(dir_path);
	char **names = NULL, *joined = NULL;
	size_t n = 0, len = 1;
	struct dirent *d;
	if (!dir)
		return strdup("");
	while ((d = readdir(dir))) {
		if (d->d_name[0] == '.')
			continue;
		char **grown = reallocarray(names, n + 1, sizeof(*names));
		if (!grown || !(grown[n] = strdup(d->d_name))) {
			names = grown ? grown : names;
			goto out;
		}
		names = grown;
		len += strlen(names[n++]) + 1;
	}
	qsort(names, n, sizeof(*names), cmp_str);
	joined = malloc(len);
	if (joined) {
		char *p = joined;
		*p = '\0';
		for (size_t i = 0; i < n; i++)
			p += sprintf(p, "%s%s", i ? "," : "", names[i]);
	}
out:
	for (size_t i = 0; i < n; i++)
		free(names[i]);
	free(names);
	closedir(dir);
	return joined;
}

static int add_sysfs(btrfslayer_list *list, const char *key, const char *dir_path)
{
	char *names = sysfs_names(dir_path);
	if (!names)
		return -ENOMEM;
	int r = bl_list_add(list, key, names);
	free(names);
	return r;
}

static int add_quota(btrfslayer_list *list, int fd)
{
	enum bl_quota_mode mode;
	bool inconsistent;
	int r = bl_ioctl_quota_status(fd, &mode, &inconsistent);
	if (r < 0)	/* reading the quota tree takes CAP_SYS_ADMIN */
		return bl_list_addf(list, "quota_mode", "unknown (%s)", btrfslayer_strerror(r));
	r = bl_list_add(list, "quota_mode", bl_quota_mode_name(mode));
	if (r == 0 && mode != BL_QUOTA_OFF)
		r = bl_list_add(list, "quota_consistent", inconsistent ? "no" : "yes");
	return r;
}

/* What the recovery sweep of this handle's open did. */
static int add_sweep(btrfslayer_list *list, const struct bl_sweep_report *sweep)
{
	const struct {
		const char *key;
		unsigned count;
	} counts[] = {
		{ "sweep_tombstones", sweep->tombstones },
		{ "sweep_temporaries", sweep->temporaries },
		{ "sweep_quota_files", sweep->quota_files },
		{ "sweep_qgroups", sweep->qgroups },
		{ "sweep_limits", sweep->limits },
		{ "sweep_left", sweep->left },
	};
	int r = 0;
	for (size_t i = 0; r == 0 && i < sizeof(counts) / sizeof(counts[0]); i++)
		r = bl_list_addf(list, counts[i].key, "%u", counts[i].count);
	return r;
}

BTRFSLAYER_API int btrfslayer_status(btrfslayer *h, btrfslayer_list **out,
				     btrfslayer_error **err)
{
	bl_clear_error(err);
	if (!h || !out)
		return bl_fail_msg(err, -EINVAL, "status: NULL handle or result");
	*out = NULL;

	uint8_t u[16];
	char uuid[37], fs_features[128];
	int r = bl_ioctl_fs_uuid(h->home_fd, u);
	if (r < 0)
		return bl_fail(err, r, "status: read filesystem uuid: %s", h->home);
	snprintf(uuid, sizeof(uuid),
		 "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x",
		 u[0], u[1], u[2], u[3], u[4], u[5], u[6], u[7], u[8], u[9], u[10],
		 u[11], u[12], u[13], u[14], u[15]);
	snprintf(fs_features, sizeof(fs_features), "/sys/fs/btrfs/%s/features", uuid);

	btrfslayer_list *layers = NULL;
	r = btrfslayer_layers(h, &layers, err);
	if (r < 0)
		return r;
	size_t n_layers = btrfslayer_list_count(layers);
	btrfslayer_list_free(layers);

	btrfslayer_list *list = bl_list_new();
	r = list ? 0 : -ENOMEM;
	if (r == 0)
		r = bl_list_add(list, "library_version", btrfslayer_version());
	if (r == 0)
		r = bl_list_add(list, "home", h->home);
	if (r == 0)
		r = bl_list_add(list, "filesystem_uuid", uuid);
	if (r == 0)
		r = bl_list_addf(list, "layers", "%zu", n_layers);
	if (r == 0)
		r = add_quota(list, h->home_fd);
	if (r == 0)
		r = bl_list_addf(list, "min_space", "%" PRIu64, h->min_space);
	if (r == 0)
		r = add_sweep(list, &h->sweep);
	if (r == 0)
		r = add_sysfs(list, "filesystem_features", fs_features);
	if (r == 0)
		r = add_sysfs(list, "kernel_features", "/sys/fs/btrfs/features");
	if (r < 0) {
		btrfslayer_list_free(list);
		return bl_fail(err, r, "status: %s", h->home);
	}
	*out = list;
	return 0;
}
