/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Ordered key/value string lists: status and the layer listing. */
#define _GNU_SOURCE
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

struct entry {
	char *key;
	char *value;
};

struct btrfslayer_list {
	struct entry *entries;
	size_t count;
	size_t cap;
};

btrfslayer_list *bl_list_new(void)
{
	return calloc(1, sizeof(btrfslayer_list));
}

/* Takes ownership of key and value, even on failure. */
static int add_owned(btrfslayer_list *list, char *key, char *value)
{
	if (!key || !value)
		goto oom;
	if (list->count == list->cap) {
		size_t ncap = list->cap ? 2 * list->cap : 16;
		struct entry *grown = reallocarray(list->entries, ncap, sizeof(*grown));
		if (!grown)
			goto oom;
		list->entries = grown;
		list->cap = ncap;
	}
	list->entries[list->count++] = (struct entry){ key, value };
	return 0;
oom:
	free(key);
	free(value);
	return -ENOMEM;
}

int bl_list_add(btrfslayer_list *list, const char *key, const char *value)
{
	return add_owned(list, strdup(key), strdup(value));
}

int bl_list_addf(btrfslayer_list *list, const char *key, const char *fmt, ...)
{
	char *value;
	va_list ap;
	va_start(ap, fmt);
	if (vasprintf(&value, fmt, ap) < 0)
		value = NULL;
	va_end(ap);
	return add_owned(list, strdup(key), value);
}

static int by_key(const void *a, const void *b)
{
	return strcmp(((const struct entry *)a)->key, ((const struct entry *)b)->key);
}

void bl_list_sort_by_key(btrfslayer_list *list)
{
	if (list->count > 1)
		qsort(list->entries, list->count, sizeof(struct entry), by_key);
}

BTRFSLAYER_API size_t btrfslayer_list_count(const btrfslayer_list *list)
{
	return list ? list->count : 0;
}

BTRFSLAYER_API const char *btrfslayer_list_key(const btrfslayer_list *list, size_t i)
{
	return list && i < list->count ? list->entries[i].key : NULL;
}

BTRFSLAYER_API const char *btrfslayer_list_value(const btrfslayer_list *list, size_t i)
{
	return list && i < list->count ? list->entries[i].value : NULL;
}

BTRFSLAYER_API void btrfslayer_list_free(btrfslayer_list *list)
{
	if (!list)
		return;
	for (size_t i = 0; i < list->count; i++) {
		free(list->entries[i].key);
		free(list->entries[i].value);
	}
	free(list->entries);
	free(list);
}
