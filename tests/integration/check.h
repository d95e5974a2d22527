/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Assertions on library calls, for the cmocka integration tests: include
 * after <cmocka.h>. */
#ifndef CHECK_H
#define CHECK_H

#include <string.h>

#include "btrfslayer.h"

/* The call succeeded, or print the library's message and fail.  Pass ERR as
 * the call's error argument. */
#define assert_ok(call)                                                          \
	do {                                                                     \
		btrfslayer_error *e_ = NULL;                                     \
		int r_ = (call);                                                 \
		if (r_ < 0)                                                      \
			fail_msg("%s = %d: %s", #call, r_,                       \
				 e_ ? btrfslayer_error_message(e_) : "no error");\
	} while (0)
#define ERR (&e_)

/* A call returned r and err: it must have failed with `code`, with an error
 * object of that code whose message contains `needle` (unless NULL).  Frees
 * err. */
static inline void check_fail(int r, btrfslayer_error *err, int code, const char *needle)
{
	if (r != code)
		fail_msg("expected %d, got %d (%s)", code, r,
			 err ? btrfslayer_error_message(err) : "no error object");
	assert_non_null(err);
	assert_int_equal(btrfslayer_error_code(err), code);
	if (needle && !strstr(btrfslayer_error_message(err), needle))
		fail_msg("message \"%s\" lacks \"%s\"", btrfslayer_error_message(err), needle);
	btrfslayer_error_free(err);
}

/* The same for a call made here, with ERR as its error argument. */
#define expect_fail(call, code, needle)                                          \
	do {                                                                     \
		btrfslayer_error *e_ = NULL;                                     \
		int r_ = (call);                                                 \
		check_fail(r_, e_, (code), (needle));                            \
	} while (0)

#endif
