/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* What the fuzz targets share: a check that survives NDEBUG. */
#ifndef BTRFSLAYER_FUZZ_H
#define BTRFSLAYER_FUZZ_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#define CHECK(cond)                                                              \
	do {                                                                     \
		if (!(cond)) {                                                   \
			fprintf(stderr, "%s:%d: invariant broken: %s\n", __FILE__,  \
				__LINE__, #cond);                                \
			abort();                                                 \
		}                                                                \
	} while (0)

/* The input as a C string: a copy of exactly size + 1 bytes (so that ASan
 * sees any read past it), ending at the first NUL the input holds. */
static inline char *fuzz_string(const uint8_t *data, size_t size)
{
	char *s = malloc(size + 1);
	CHECK(s);
	for (size_t i = 0; i < size; i++)
		s[i] = (char)data[i];
	s[size] = '\0';
	return s;
}

/* A message is one line of printable ASCII: bytes from the input are quoted. */
static inline int fuzz_printable(const char *message)
{
	for (const unsigned char *p = (const unsigned char *)message; *p; p++)
		if (*p < 0x20 || *p >= 0x7f)
			return 0;
	return 1;
}

#endif
