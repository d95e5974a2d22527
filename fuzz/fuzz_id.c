/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* bl_id_check(): the door every layer id goes through. */
#include <errno.h>
#include <string.h>

#include "fuzz.h"
#include "internal.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *id = fuzz_string(data, size);
	btrfslayer_error *err = (btrfslayer_error *)1;
	int r = bl_id_check(id, "layer id", &err);

	if (r == 0) {
		size_t len = strlen(id);
		CHECK(err == NULL);
		CHECK(len >= 1 && len <= BTRFSLAYER_ID_MAX);
		CHECK(id[0] != '.');
		CHECK(!strchr(id, '/'));
		CHECK(strspn(id, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
				 "0123456789_.-") == len);
		/* an accepted id is also one path component the ioctls take */
		CHECK(bl_check_component(id) == 0);
	} else {
		CHECK(r == -EINVAL);
		CHECK(err != NULL && btrfslayer_error_code(err) == -EINVAL);
		const char *message = btrfslayer_error_message(err);
		CHECK(!strncmp(message, "invalid layer id", 16));
		CHECK(fuzz_printable(message));
		btrfslayer_error_free(err);
	}
	/* without an error object it says the same */
	CHECK(bl_id_check(id, NULL, NULL) == r);
	free(id);
	return 0;
}
