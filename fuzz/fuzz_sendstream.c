/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The send stream: bl_sendstream_parse() and its replay on the sparse model
 * of changes_send.c (bl_send_replay()), from raw bytes. */
#include <errno.h>
#include <string.h>

#include "fuzz.h"
#include "internal.h"

struct seen {
	size_t commands;
	int ended;
};

static int count(const struct bl_send_cmd *c, void *userdata)
{
	struct seen *s = userdata;
	/* what the parser hands out is checked and NUL-terminated */
	CHECK(!s->ended);
	if (c->path && c->cmd != BL_SEND_C_SYMLINK)
		CHECK(bl_send_path_check(c->path) == 0);
	if (c->path_to)
		CHECK(bl_send_path_check(c->path_to) == 0);
	s->commands++;
	s->ended = c->cmd == BL_SEND_C_END;
	return 0;
}

/* A path the replay returns: "/" or "/" and a clean relative path. */
static void check_paths(char **v, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		CHECK(v[i][0] == '/');
		CHECK(bl_send_path_check(v[i] + 1) == 0);
		if (i)
			CHECK(strcmp(v[i - 1], v[i]) < 0);	/* sorted, no duplicate */
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct seen s = { 0 };
	int r = bl_sendstream_parse(data, size, count, &s);
	CHECK(r == 0 || r == -EBADMSG || r == -EPROTONOSUPPORT || r == -ENOMEM);
	if (r == 0)
		CHECK(s.ended);		/* a whole stream ends with END */

	char **roots = NULL, **paths = NULL;
	size_t n_roots = 0, n_paths = 0;
	int k = bl_send_replay(data, size, -1, &roots, &n_roots, &paths, &n_paths);
	CHECK(k == 0 || k == -EBADMSG || k == -EPROTONOSUPPORT || k == -ENOMEM ||
	      k == -ENAMETOOLONG);
	if (r < 0)
		CHECK(k < 0);		/* a stream the parser refuses is not replayed */
	if (k == 0) {
		check_paths(roots, n_roots);
		check_paths(paths, n_paths);
		bl_strv_free(roots, n_roots);
		bl_strv_free(paths, n_paths);
	}
	return 0;
}
