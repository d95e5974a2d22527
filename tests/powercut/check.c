/* SPDX-License-Identifier: LGPL-2.1-or-later */
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
#include <linux/btrfs.h>

#include "btrfslayer.h"
#include "check.h"

/* What is on disk for one layer, read past the library where it can be:
 * the read-only flag from btrfs, the record from its file.  The kernel's
 * limit comes from get_usage(), which reads the quota tree. */
struct actual {
	bool exists, ro, record_present;
	uint64_t record, kernel;
	uint8_t uuid[16];
};

static int read_record(const char *home, const char *id, struct actual *a)
{
	char path[PATH_MAX], buf[32];
	snprintf(path, sizeof(path), "%s/quotas/%s", home, id);
	int fd = open(path, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
	if (fd < 0)
		return errno == ENOENT ? 0 : -errno;
	a->record_present = true;
	ssize_t n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return -EBADMSG;
	buf[n] = '\0';
	char *end;
	a->record = strtoull(buf, &end, 10);
	return end == buf || (*end && *end != '\n') ? -EBADMSG : 0;
}

static int read_ro(const char *home, const char *id, struct actual *a)
{
	char path[PATH_MAX];
	uint64_t flags = 0;
	snprintf(path, sizeof(path), "%s/subvolumes/%s", home, id);
	int fd = open(path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	int r = ioctl(fd, BTRFS_IOC_SUBVOL_GETFLAGS, &flags) < 0 ? -errno : 0;
	close(fd);
	a->ro = flags & BTRFS_SUBVOL_RDONLY;
	return r;
}

static void say(char *buf, size_t len, bool exists, bool ro, uint64_t limit,
		const uint8_t uuid[16])
{
	if (!exists)
		snprintf(buf, len, "absent");
	else
		snprintf(buf, len, "present (subvolume %02x%02x%02x%02x...)%s, limit %" PRIu64,
			 uuid[0], uuid[1], uuid[2], uuid[3], ro ? ", read-only" : "", limit);
}

/* The UUID tells the layer a create made from an older one under the id. */
static bool matches(const struct actual *a, const struct pc_layer *s)
{
	return a->exists == s->exists &&
	       (!s->exists || (a->ro == s->ro && a->record == s->limit &&
			       !memcmp(a->uuid, s->uuid, sizeof(a->uuid))));
}

static void expected_from(const struct pc_layer *s, const struct pc_call *calls, char *buf,
			  size_t len)
{
	char state[96], desc[128], made[128];
	say(state, sizeof(state), s->exists, s->ro, s->limit, s->uuid);
	if (s->by < 0) {
		snprintf(buf, len, "%s (no call on it had returned)", state);
		return;
	}
	pc_call_describe(&calls[s->by], desc, sizeof(desc));
	if (s->made < 0 || s->made == s->by) {
		snprintf(buf, len, "%s (call #%d %s returned at position %" PRIu64 ")", state,
			 s->by, desc, calls[s->by].end);
		return;
	}
	pc_call_describe(&calls[s->made], made, sizeof(made));
	snprintf(buf, len, "%s (call #%d %s returned at position %" PRIu64
		 ", then call #%d %s at %" PRIu64 ")", state, s->made, made,
		 calls[s->made].end, s->by, desc, calls[s->by].end);
}

static unsigned long check_layer(btrfslayer *h, const char *home, int i,
				 const struct pc_expect *x, const struct pc_call *calls,
				 const char *label, struct pc_tally *t)
{
	char id[PC_ID_LEN], got[96], want[640], alt[640];
	struct actual a = { 0 };
	btrfslayer_error *err = NULL;
	unsigned long problems = 0;
	pc_id_name(i, id);
	t->layers++;
	int r = btrfslayer_exists(h, id, &err);
	if (r < 0) {
		printf("%s: %s: violation: btrfslayer_exists = %d: %s\n", label, id, r,
		       btrfslayer_error_message(err));
		btrfslayer_error_free(err);
		t->violations++;
		return 1;
	}
	a.exists = r == 1;
	if ((r = read_record(home, id, &a)) < 0) {
		printf("%s: %s: violation: read %s/quotas/%s: %s\n", label, id, home, id,
		       strerror(-r));
		t->violations++;
		problems++;
	}
	if (a.exists && (r = read_ro(home, id, &a)) < 0) {
		printf("%s: %s: violation: read-only flag of %s/subvolumes/%s: %s\n", label, id,
		       home, id, strerror(-r));
		t->violations++;
		problems++;
	}
	char path[PATH_MAX];
	snprintf(path, sizeof(path), "%s/subvolumes/%s", home, id);
	if (a.exists && (r = pc_subvolume_uuid(path, a.uuid)) < 0) {
		printf("%s: %s: violation: subvolume UUID of %s: %s\n", label, id, path,
		       strerror(-r));
		t->violations++;
		problems++;
	}
	if (a.exists) {
		btrfslayer_usage u;
		r = btrfslayer_get_usage(h, id, 0, &u, sizeof(u), &err);
		if (r == 0) {
			a.kernel = u.limit;
		} else if (r != -BTRFSLAYER_ENOQUOTA) {
			printf("%s: %s: violation: btrfslayer_get_usage = %d: %s\n", label, id, r,
			       btrfslayer_error_message(err));
			t->violations++;
			problems++;
		}
		btrfslayer_error_free(err);
		if (r == 0 || r == -BTRFSLAYER_ENOQUOTA) {
			if (a.kernel != a.record) {
				printf("%s: %s: violation: the kernel's limit is %" PRIu64
				       ", the record %s/quotas/%s says %" PRIu64 "\n",
				       label, id, a.kernel, home, id, a.record);
				t->violations++;
				problems++;
			}
		}
	} else if (a.record_present) {
		printf("%s: %s: violation: the layer is absent but %s/quotas/%s is there\n",
		       label, id, home, id);
		t->violations++;
		problems++;
	}
	const struct pc_layer *before = &x->before[i], *after = &x->after[i];
	if (!matches(&a, before) && !matches(&a, after)) {
		say(got, sizeof(got), a.exists, a.ro, a.record, a.uuid);
		expected_from(before, calls, want, sizeof(want));
		if (memcmp(before, after, sizeof(*before)) == 0) {
			printf("%s: %s: LOST: found %s; expected %s\n", label, id, got, want);
		} else {
			expected_from(after, calls, alt, sizeof(alt));
			printf("%s: %s: LOST: found %s; expected %s, or, with the call in "
			       "flight done, %s\n", label, id, got, want, alt);
		}
		t->lost++;
		if (before->by >= 0)
			t->lost_by[calls[before->by].op]++;
		problems++;
	}
	return problems;
}

/* After the open's sweep, no reserved name may be left. */
static unsigned long check_leftovers(const char *home, const char *sub, const char *label,
				     struct pc_tally *t)
{
	char path[PATH_MAX];
	unsigned long problems = 0;
	snprintf(path, sizeof(path), "%s/%s", home, sub);
	DIR *d = opendir(path);
	if (!d) {
		printf("%s: violation: list %s: %s\n", label, path, strerror(errno));
		t->violations++;
		return 1;
	}
	struct dirent *e;
	while ((e = readdir(d))) {
		if (strncmp(e->d_name, ".tmp-", 5) && strncmp(e->d_name, ".tomb-", 6))
			continue;
		printf("%s: violation: %s/%s left after the open's sweep\n", label, path,
		       e->d_name);
		t->violations++;
		problems++;
	}
	closedir(d);
	return problems;
}

unsigned long pc_check(const char *home, const char *const *opts, size_t n_opts,
		       const struct pc_expect *x, const struct pc_call *calls,
		       const char *label, struct pc_tally *t)
{
	btrfslayer *h = NULL;
	btrfslayer_error *err = NULL;
	int r = btrfslayer_open(home, opts, n_opts, NULL, 0, NULL, 0, &h, &err);
	if (r < 0) {
		printf("%s: violation: btrfslayer_open %s = %d: %s\n", label, home, r,
		       btrfslayer_error_message(err));
		btrfslayer_error_free(err);
		t->violations++;
		return 1;
	}
	unsigned long problems = 0;
	for (int i = 0; i < PC_POOL; i++)
		problems += check_layer(h, home, i, x, calls, label, t);
	/* the library keeps its reserved names in the staging directories;
	 * the directories themselves are checked too, in case of an old
	 * layout */
	problems += check_leftovers(home, "subvolumes", label, t);
	problems += check_leftovers(home, "quotas", label, t);
	problems += check_leftovers(home, "subvolumes/.staging", label, t);
	problems += check_leftovers(home, "quotas/.staging", label, t);
	if ((r = btrfslayer_close(h, &err)) < 0) {
		printf("%s: violation: btrfslayer_close %s = %d: %s\n", label, home, r,
		       btrfslayer_error_message(err));
		t->violations++;
		problems++;
	}
	btrfslayer_error_free(err);
	return problems;
}

void pc_tally_lost_by(const struct pc_tally *t, char *buf, size_t len)
{
	size_t at = 0;
	buf[0] = '\0';
	for (int op = 0; op < PC_OP_COUNT && at < len; op++)
		if (t->lost_by[op])
			at += (size_t)snprintf(buf + at, len - at, "%s%s %lu", at ? ", " : " (after ",
					       pc_op_names[op], t->lost_by[op]);
	if (at && at + 1 < len)
		strcat(buf, ")");
}
