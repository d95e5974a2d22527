/* SPDX-License-Identifier: LGPL-2.1-or-later */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>
#include <linux/btrfs.h>

#include "model.h"

const char *const pc_op_names[PC_OP_COUNT] = {
	[PC_OP_OPEN] = "open",
	[PC_OP_CREATE] = "create",
	[PC_OP_SNAPSHOT] = "snapshot",
	[PC_OP_SET_QUOTA] = "set_quota",
	[PC_OP_CLEAR_QUOTA] = "clear_quota",
	[PC_OP_REMOVE] = "remove",
	[PC_OP_NEST] = "nest",
	[PC_OP_WRITE] = "write",
};

void pc_id_name(int i, char buf[PC_ID_LEN])
{
	snprintf(buf, PC_ID_LEN, "l%d", i);
}

void pc_call_describe(const struct pc_call *c, char *buf, size_t len)
{
	char id[PC_ID_LEN], parent[PC_ID_LEN], size[40] = "";
	pc_id_name(c->id, id);
	pc_id_name(c->parent, parent);
	if (c->size)
		snprintf(size, sizeof(size), " size=%" PRIu64, c->size);
	snprintf(buf, len, "%s%s%s%s%s%s%s", pc_op_names[c->op], c->id >= 0 ? " " : "",
		 c->id >= 0 ? id : "", c->parent >= 0 ? " from " : "",
		 c->parent >= 0 ? parent : "", c->ro ? " ro" : "", size);
}

void pc_model_apply(struct pc_layer l[PC_POOL], const struct pc_call *c, int index)
{
	if (c->rc != 0 || c->id < 0 || c->id >= PC_POOL)
		return;
	struct pc_layer *t = &l[c->id];
	switch (c->op) {
	case PC_OP_CREATE:
	case PC_OP_SNAPSHOT:
		/* a snapshot has only the limit it is given (README) */
		*t = (struct pc_layer){ true, c->ro, c->size, index, index, { 0 } };
		memcpy(t->uuid, c->uuid, sizeof(t->uuid));
		break;
	case PC_OP_SET_QUOTA:
		t->limit = c->size;
		t->by = index;
		break;
	case PC_OP_CLEAR_QUOTA:
		t->limit = 0;
		t->by = index;
		break;
	case PC_OP_REMOVE:
		*t = (struct pc_layer){ false, false, 0, index, -1, { 0 } };
		break;
	default:
		break;
	}
}

static int parse_op(const char *name)
{
	for (int i = 0; i < PC_OP_COUNT; i++)
		if (!strcmp(name, pc_op_names[i]))
			return i;
	return -1;
}

int pc_subvolume_uuid(const char *path, uint8_t uuid[16])
{
	struct btrfs_ioctl_get_subvol_info_args info;
	int fd = open(path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	int r = ioctl(fd, BTRFS_IOC_GET_SUBVOL_INFO, &info) < 0 ? -errno : 0;
	close(fd);
	if (r == 0)
		memcpy(uuid, info.uuid, 16);
	return r;
}

int pc_results_write(int fd, const struct pc_call *c)
{
	char uuid[33] = "-";
	static const uint8_t zero[16];
	if (memcmp(c->uuid, zero, sizeof(zero)))
		for (int i = 0; i < 16; i++)
			snprintf(uuid + 2 * i, 3, "%02x", c->uuid[i]);
	return dprintf(fd, "%s %d %d %d %" PRIu64 " %d %" PRIu64 " %" PRIu64 " %s\n",
		       pc_op_names[c->op], c->id, c->parent, c->ro, c->size, c->rc, c->start,
		       c->end, uuid) < 0 ? -1 : 0;
}

static int parse_uuid(const char *hex, uint8_t uuid[16])
{
	memset(uuid, 0, 16);
	if (!strcmp(hex, "-"))
		return 0;
	if (strlen(hex) != 32)
		return -1;
	for (int i = 0; i < 16; i++) {
		unsigned v;
		if (sscanf(hex + 2 * i, "%2x", &v) != 1)
			return -1;
		uuid[i] = (uint8_t)v;
	}
	return 0;
}

int pc_results_load(const char *path, struct pc_call **out)
{
	FILE *f = fopen(path, "re");
	char line[256], name[32], uuid[40];
	struct pc_call *calls = NULL;
	int n = 0;
	*out = NULL;
	if (!f)
		return -errno;
	while (fgets(line, sizeof(line), f)) {
		struct pc_call c;
		int ro;
		if (sscanf(line, "%31s %d %d %d %" SCNu64 " %d %" SCNu64 " %" SCNu64 " %39s", name,
			   &c.id, &c.parent, &ro, &c.size, &c.rc, &c.start, &c.end, uuid) != 9 ||
		    parse_op(name) < 0 || c.start > c.end || parse_uuid(uuid, c.uuid) < 0) {
			fclose(f);
			free(calls);
			return -EBADMSG;
		}
		c.op = (enum pc_op)parse_op(name);
		c.ro = ro != 0;
		struct pc_call *grown = reallocarray(calls, (size_t)n + 1, sizeof(*calls));
		if (!grown) {
			fclose(f);
			free(calls);
			return -ENOMEM;
		}
		calls = grown;
		calls[n++] = c;
	}
	fclose(f);
	*out = calls;
	return n;
}
