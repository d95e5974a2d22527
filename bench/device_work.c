/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Counting what a call makes the kernel write.  Bytes written and flushes
 * come from the loop device's /sys/block/<dev>/stat, which counts a request
 * when it completes: a call that ends with syncfs has all of its writes
 * counted before it returns.  Commits and tree blocks come from two btrfs
 * tracepoints, btrfs_transaction_commit and btrfs_cow_block, in a tracing
 * instance of our own (so that nobody else's tracing is touched), read and
 * emptied around each call; only events of our filesystem's fsid count.
 */
#define _GNU_SOURCE
#include "device_work.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/btrfs.h>
#include <linux/btrfs_tree.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "timing.h"

/* fields of /sys/block/<dev>/stat (Documentation/block/stat.rst) */
enum { STAT_WRITE_SECTORS = 6, STAT_FLUSH_IOS = 15, N_STAT_FIELDS = 17 };

static char stat_path[128];
static char instance[256];	/* "" when the tree counts are off */
static char fsid_text[40];
static uint64_t home_tree_id;
static unsigned long long stat_before[N_STAT_FIELDS];

static int read_stat(unsigned long long v[N_STAT_FIELDS])
{
	FILE *f = fopen(stat_path, "re");
	if (!f)
		return -1;
	int n = 0;
	while (n < N_STAT_FIELDS && fscanf(f, "%llu", &v[n]) == 1)
		n++;
	fclose(f);
	for (int i = n; i < N_STAT_FIELDS; i++)
		v[i] = 0;	/* older kernels have no flush fields */
	return n >= 7 ? 0 : -1;
}

static int write_text(const char *dir, const char *file, const char *text)
{
	char path[512];
	snprintf(path, sizeof(path), "%s/%s", dir, file);
	int fd = open(path, O_WRONLY | O_TRUNC | O_CLOEXEC);
	if (fd < 0)
		return -1;
	ssize_t n = write(fd, text, strlen(text));
	close(fd);
	return n == (ssize_t)strlen(text) ? 0 : -1;
}

static const char *tracefs_root(void)
{
	static const char *const roots[] = { "/sys/kernel/tracing", "/sys/kernel/debug/tracing" };
	for (size_t i = 0; i < sizeof(roots) / sizeof(roots[0]); i++) {
		char path[128];
		struct stat st;
		snprintf(path, sizeof(path), "%s/instances", roots[i]);
		if (stat(path, &st) == 0 && S_ISDIR(st.st_mode))
			return roots[i];
	}
	return NULL;
}

static bool start_tracing(const char **why)
{
	const char *root = tracefs_root();
	if (!root) {
		*why = "tracefs is not mounted (mount -t tracefs nodev /sys/kernel/tracing)";
		return false;
	}
	snprintf(instance, sizeof(instance), "%s/instances/btrfslayer-bench-%d", root, (int)getpid());
	if (mkdir(instance, 0700) < 0) {
		*instance = '\0';
		*why = "cannot make a tracing instance";
		return false;
	}
	if (write_text(instance, "buffer_size_kb", "8192") < 0 ||
	    write_text(instance, "events/btrfs/btrfs_cow_block/enable", "1") < 0 ||
	    write_text(instance, "events/btrfs/btrfs_transaction_commit/enable", "1") < 0) {
		device_work_stop();
		*why = "this kernel has no btrfs tracepoints";
		return false;
	}
	return true;
}

int device_work_start(int fs_fd, const char *loopdev, uint64_t home_tree, const char **why)
{
	const char *base = strrchr(loopdev, '/');
	snprintf(stat_path, sizeof(stat_path), "/sys/block/%s/stat", base ? base + 1 : loopdev);
	unsigned long long v[N_STAT_FIELDS];
	if (read_stat(v) < 0) {
		*stat_path = '\0';
		*why = "the loop device has no statistics in /sys/block";
		return 0;
	}
	struct btrfs_ioctl_fs_info_args info;
	memset(&info, 0, sizeof(info));
	if (ioctl(fs_fd, BTRFS_IOC_FS_INFO, &info) < 0) {
		*why = "BTRFS_IOC_FS_INFO failed";
		return WORK_DEVICE_COUNTS;
	}
	const uint8_t *u = info.fsid;
	snprintf(fsid_text, sizeof(fsid_text),
		 "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x", u[0], u[1],
		 u[2], u[3], u[4], u[5], u[6], u[7], u[8], u[9], u[10], u[11], u[12], u[13], u[14],
		 u[15]);
	home_tree_id = home_tree;
	return WORK_DEVICE_COUNTS | (start_tracing(why) ? WORK_TREE_COUNTS : 0);
}

void device_work_stop(void)
{
	if (*instance) {
		write_text(instance, "events/enable", "0");
		rmdir(instance);
		*instance = '\0';
	}
}

void device_work_begin(void)
{
	if (*instance)
		write_text(instance, "trace", "");	/* an empty write empties it */
	if (*stat_path && read_stat(stat_before) < 0)
		memset(stat_before, 0, sizeof(stat_before));
}

static enum work_tree tree_of(uint64_t root)
{
	if (root == home_tree_id)
		return WORK_HOME;
	if (root == BTRFS_QUOTA_TREE_OBJECTID)
		return WORK_QUOTA;
	if (root >= BTRFS_FIRST_FREE_OBJECTID && root <= BTRFS_LAST_FREE_OBJECTID)
		return WORK_LAYERS;
	return WORK_OTHER;
}

static void count_trace(struct work_sample *s)
{
	char path[512];
	snprintf(path, sizeof(path), "%s/trace", instance);
	FILE *f = fopen(path, "re");
	if (!f)
		return;
	char *line = NULL;
	size_t cap = 0;
	while (getline(&line, &cap, f) > 0) {
		if (*line == '#' || !strstr(line, fsid_text))
			continue;
		const char *root = strstr(line, "root=");
		if (strstr(line, "btrfs_transaction_commit:"))
			s->commits++;
		else if (root && strstr(line, "btrfs_cow_block:"))
			s->blocks[tree_of(strtoull(root + 5, NULL, 10))]++;
	}
	free(line);
	fclose(f);
}

void device_work_end(struct work_samples *into)
{
	struct work_sample s;
	memset(&s, 0, sizeof(s));
	unsigned long long after[N_STAT_FIELDS];
	if (*stat_path && read_stat(after) == 0) {
		s.kib_written = (double)(after[STAT_WRITE_SECTORS] - stat_before[STAT_WRITE_SECTORS]) / 2;
		s.flushes = (double)(after[STAT_FLUSH_IOS] - stat_before[STAT_FLUSH_IOS]);
	}
	if (*instance)
		count_trace(&s);
	struct work_sample *v = realloc(into->v, (size_t)(into->n + 1) * sizeof(*v));
	if (!v)
		return;	/* one sample fewer; the medians stand */
	v[into->n++] = s;
	into->v = v;
}

void device_work_append(struct work_samples *into, const struct work_samples *from)
{
	if (!from->n)
		return;
	struct work_sample *v = realloc(into->v, (size_t)(into->n + from->n) * sizeof(*v));
	if (!v)
		return;	/* the row keeps the samples it had */
	memcpy(v + into->n, from->v, (size_t)from->n * sizeof(*v));
	into->v = v;
	into->n += from->n;
}

/* device_work_median() walks a sample as an array of doubles */
_Static_assert(sizeof(struct work_sample) == (3 + N_WORK_TREES) * sizeof(double),
	       "struct work_sample holds doubles only");

void device_work_median(const struct work_samples *s, struct work_sample *out)
{
	memset(out, 0, sizeof(*out));
	if (!s->n)
		return;
	double *column = malloc((size_t)s->n * sizeof(*column));
	if (!column)
		return;
	/* each field on its own: a struct of doubles, walked as an array */
	for (size_t field = 0; field < sizeof(*out) / sizeof(double); field++) {
		for (int i = 0; i < s->n; i++)
			column[i] = ((const double *)&s->v[i])[field];
		((double *)out)[field] = median_of(column, (size_t)s->n);
	}
	free(column);
}
