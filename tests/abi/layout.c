/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The layouts the header promises, checked where a binding would read them:
 * the size-carrying structs end their versions at the BTRFSLAYER_*_SIZE_V*
 * the header defines, and btrfslayer_idmap is the kernel's 3 x 32 bits.
 * Bindings that mirror these structs (ctypes, cgo) rely on exactly these
 * numbers; the build fails here if the header stops agreeing with itself.
 * Run, it prints the table, for a binding's author to compare with.
 */
#include <stddef.h>
#include <stdio.h>

#include "btrfslayer.h"

#define END_OF(type, member) (offsetof(type, member) + sizeof(((type *)0)->member))

_Static_assert(offsetof(btrfslayer_usage, exclusive_limit) == BTRFSLAYER_USAGE_SIZE_V1,
	       "btrfslayer_usage: V1 ends where exclusive_limit starts");
_Static_assert(END_OF(btrfslayer_usage, exclusive_limit) == BTRFSLAYER_USAGE_SIZE_V2,
	       "btrfslayer_usage: V2 ends after exclusive_limit");
_Static_assert(sizeof(btrfslayer_usage) == BTRFSLAYER_USAGE_SIZE_V3,
	       "btrfslayer_usage: V3 is the whole struct, without tail padding");
_Static_assert(sizeof(btrfslayer_info) == BTRFSLAYER_INFO_SIZE_V1,
	       "btrfslayer_info: V1 is the whole struct, without tail padding");
_Static_assert(sizeof(((btrfslayer_info *)0)->parent) == BTRFSLAYER_ID_MAX + 1,
	       "btrfslayer_info.parent holds any id and its NUL");
_Static_assert(sizeof(btrfslayer_idmap) == 12, "btrfslayer_idmap: three uint32_t, no padding");
_Static_assert(BTRFSLAYER_ENOTBTRFS > 4095 && BTRFSLAYER_ENOQUOTA > 4095,
	       "the library's own codes are above every errno");

int main(void)
{
	printf("btrfslayer_usage %zu (V1 %d, V2 %d, V3 %d)\n", sizeof(btrfslayer_usage),
	       BTRFSLAYER_USAGE_SIZE_V1, BTRFSLAYER_USAGE_SIZE_V2, BTRFSLAYER_USAGE_SIZE_V3);
	printf("btrfslayer_info %zu (V1 %d; parent at %zu)\n", sizeof(btrfslayer_info),
	       BTRFSLAYER_INFO_SIZE_V1, offsetof(btrfslayer_info, parent));
	printf("btrfslayer_idmap %zu\n", sizeof(btrfslayer_idmap));
	return 0;
}
