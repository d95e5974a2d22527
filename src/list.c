/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Ordered key/value string lists: status and the layer listing. */
#define _GNU_SOURCE
#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

struct entry {
	char *key;	/* its own allocation, or the end of value's */
	char *value;
	bool key_in_value;	/* bl_list_add_path(): one allocation */
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
/* Room for one more entry. */
static int grow(btrfslayer_list *list)
{
	if (list->count < list->cap)
		return 0;
	size_t ncap = list->cap ? 2 * list->cap : 16;
	struct entry *grown = reallocarray(list->entries, ncap, sizeof(*grown));
	if (!grown)
		return -ENOMEM;
	list->entries = grown;
	list->cap = ncap;
	return 0;
}

static int add_owned(btrfslayer_list *list, char *key, char *value)
{
	if (!key || !value || grow(list) < 0) {
		free(key);
		free(value);
		return -ENOMEM;
	}
	list->entries[list->count++] = (struct entry){ key, value, false };
	return 0;
}

int bl_list_add_path(btrfslayer_list *list, const char *prefix, size_t prefix_len,
		     const char *key)
{
	size_t len = strlen(key);
	char *value = malloc(prefix_len + len + 1);	/* value, then key at its end */
	if (!value)
		return -ENOMEM;
	memcpy(value, prefix, prefix_len);
	memcpy(value + prefix_len, key, len + 1);
	if (grow(list) < 0) {
		free(value);
		return -ENOMEM;
	}
	struct entry *e = &list->entries[list->count++];
	e->value = value;	/* owned by the list from here */
	e->key = value + prefix_len;
	e->key_in_value = true;
	return 0;
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
		if (!list->entries[i].key_in_value)
			free(list->entries[i].key);
		free(list->entries[i].value);
	}
	free(list->entries);
	free(list);
}
