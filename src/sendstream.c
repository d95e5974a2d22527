/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The btrfs send stream, parsed: no I/O, so that it can be fuzzed
 * (fuzz/fuzz_sendstream.c).
 *
 * The format (versions 1 to 3, as the kernel writes it): a header, the
 * magic "btrfs-stream\0" and a le32 version; then commands, each a header
 * (le32 length of what follows the header, le16 command, le32 crc32c) and
 * that many bytes of attributes, each a TLV (le16 type, le16 length, the
 * value).  From version 2 on, the data attribute has no length: it runs to
 * the end of its command.  The stream ends with the END command.
 *
 * The stream comes straight from the kernel through a pipe, so the crc is
 * not checked; the structure is, strictly: a length that runs past the
 * stream or its command, an attribute given twice, a path that is not a
 * clean relative path (empty components, ".", "..", a NUL, too long), a
 * missing END or bytes after it are -EBADMSG.  Paths are handed out as
 * NUL-terminated copies.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

#define MAGIC "btrfs-stream"
#define HEADER_LEN (sizeof(MAGIC) + 4)	/* magic with its NUL, le32 version */
#define CMD_HEADER_LEN 10		/* le32 len, le16 cmd, le32 crc */
#define TLV_HEADER_LEN 4		/* le16 type, le16 len */
#define MAX_VERSION 3
#define MAX_ATTR 64			/* above every attribute defined today */

static uint16_t le16(const uint8_t *p)
{
	return (uint16_t)(p[0] | p[1] << 8);
}

static uint32_t le32(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

int bl_send_path_check(const char *path)
{
	/* "" is the subvolume's root */
	const char *p = path;
	while (*p) {
		const char *slash = strchr(p, '/');
		size_t n = slash ? (size_t)(slash - p) : strlen(p);
		if (n == 0 || n > NAME_MAX || (n == 1 && p[0] == '.') ||
		    (n == 2 && p[0] == '.' && p[1] == '.'))
			return -EBADMSG;
		p += n;
		if (*p == '/' && !*++p)
			return -EBADMSG;	/* a trailing slash */
	}
	return 0;
}

/* Copy a path attribute into its slot: NUL-terminated, checked. */
static int take_path(char **slot, const uint8_t *value, uint16_t len)
{
	if (len >= PATH_MAX || memchr(value, '\0', len))
		return -EBADMSG;
	char *s = malloc((size_t)len + 1);
	if (!s)
		return -ENOMEM;
	memcpy(s, value, len);
	s[len] = '\0';
	int r = bl_send_path_check(s);
	if (r < 0) {
		free(s);
		return r;
	}
	*slot = s;
	return 0;
}

static void clear_cmd(struct bl_send_cmd *c)
{
	free(c->path);
	free(c->path_to);
	free(c->path_link);
	memset(c, 0, sizeof(*c));
}

/* The attributes a command of ours needs: -EBADMSG when one is missing. */
static int check_required(const struct bl_send_cmd *c)
{
	switch (c->cmd) {
	case BL_SEND_C_SUBVOL:
	case BL_SEND_C_SNAPSHOT:
	case BL_SEND_C_END:
		return 0;
	case BL_SEND_C_RENAME:
		return c->path && c->path_to ? 0 : -EBADMSG;
	case BL_SEND_C_LINK:
	case BL_SEND_C_SYMLINK:
		return c->path && c->path_link ? 0 : -EBADMSG;
	default:
		/* every other command, known or not, names a path */
		return c->path ? 0 : -EBADMSG;
	}
}

/* Decode the attributes of one command (len bytes at p) into c. */
static int parse_attrs(const uint8_t *p, size_t len, uint32_t version, struct bl_send_cmd *c)
{
	uint64_t seen = 0;
	while (len) {
		if (len < 2)
			return -EBADMSG;
		uint16_t type = le16(p);
		size_t vlen;
		const uint8_t *value;
		if (version >= 2 && type == BL_SEND_A_DATA) {
			/* no length: the rest of the command */
			value = p + 2;
			vlen = len - 2;
		} else {
			if (len < TLV_HEADER_LEN)
				return -EBADMSG;
			vlen = le16(p + 2);
			value = p + TLV_HEADER_LEN;
			if (vlen > len - TLV_HEADER_LEN)
				return -EBADMSG;
		}
		if (type >= MAX_ATTR || (seen & (UINT64_C(1) << type)))
			return -EBADMSG;
		seen |= UINT64_C(1) << type;
		int r = 0;
		switch (type) {
		case BL_SEND_A_PATH:
			/* the subvolume's name in SUBVOL and SNAPSHOT */
			r = take_path(&c->path, value, (uint16_t)vlen);
			break;
		case BL_SEND_A_PATH_TO:
			r = take_path(&c->path_to, value, (uint16_t)vlen);
			break;
		case BL_SEND_A_PATH_LINK:
			/* a symlink's target is no path of the tree: kept as
			 * given, only checked for NUL */
			if (c->cmd == BL_SEND_C_SYMLINK) {
				if (vlen >= PATH_MAX || memchr(value, '\0', vlen))
					return -EBADMSG;
				c->path_link = strndup((const char *)value, vlen);
				r = c->path_link ? 0 : -ENOMEM;
			} else {
				r = take_path(&c->path_link, value, (uint16_t)vlen);
			}
			break;
		default:
			break;	/* sizes, modes, times, data: not needed */
		}
		if (r < 0)
			return r;
		size_t used = (size_t)(value - p) + vlen;
		p += used;
		len -= used;
	}
	return 0;
}

int bl_sendstream_parse(const uint8_t *data, size_t len, bl_send_cmd_fn fn, void *userdata)
{
	if (len < HEADER_LEN || memcmp(data, MAGIC, sizeof(MAGIC)))
		return -EBADMSG;
	uint32_t version = le32(data + sizeof(MAGIC));
	if (version < 1 || version > MAX_VERSION)
		return -EPROTONOSUPPORT;
	size_t off = HEADER_LEN;
	bool ended = false;
	while (off < len) {
		if (ended || len - off < CMD_HEADER_LEN)
			return -EBADMSG;	/* bytes after END, or a cut header */
		uint32_t clen = le32(data + off);
		struct bl_send_cmd c = { .cmd = le16(data + off + 4), .version = version };
		off += CMD_HEADER_LEN;
		if (clen > len - off)
			return -EBADMSG;
		int r = parse_attrs(data + off, clen, version, &c);
		if (r == 0)
			r = check_required(&c);
		if (r == 0 && c.cmd == BL_SEND_C_UNSPEC)
			r = -EBADMSG;
		if (r == 0)
			r = fn(&c, userdata);
		ended = c.cmd == BL_SEND_C_END;
		clear_cmd(&c);
		if (r != 0)
			return r;
		off += clen;
	}
	return ended ? 0 : -EBADMSG;	/* cut short */
}
