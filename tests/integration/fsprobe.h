/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* What an operator checks on a btrfs after the library worked on it, through
 * the tools an operator uses (btrfs-progs, libbtrfsutil), never through the
 * library: subvolumes, level-0 qgroups and their limits, directory listings. */
#ifndef FSPROBE_H
#define FSPROBE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* A level-0 qgroup: 0/<id>, and its limit on referenced bytes (0: none). */
struct probe_qgroup {
	uint64_t id;
	uint64_t max_referenced;
};

/* The level-0 qgroups of the btrfs mounted at `mnt` (`btrfs qgroup show
 * --raw -r`), sorted by id, in a malloc()ed *out; their count, 0 when
 * quotas are off. */
size_t probe_qgroups(const char *mnt, struct probe_qgroup **out);

/* The ids of every subvolume of the btrfs at `mnt`, the top one (5)
 * included, sorted, in a malloc()ed *out; their count. */
size_t probe_subvolumes(const char *mnt, uint64_t **out);

/* The level-0 qgroups (but 0/5) whose subvolume no longer exists, as
 * "0/<id> " words in a malloc()ed string ("" when there is none). */
char *probe_stale_qgroups(const char *mnt);

/* Every subvolume of the btrfs at `mnt` with its read-only flag, and every
 * name in `home` and home/subvolumes with its mode, one per line, in a
 * malloc()ed string: what a call that fails must leave as it was.  NULL if
 * it cannot be read. */
char *probe_fs_state(const char *mnt, const char *home);

/* The level-0 qgroups that carry a limit, as "0/<id>=<bytes> " words,
 * malloc()ed: those of live subvolumes (stale false), or those whose
 * subvolume is gone (stale true). */
char *probe_limits(const char *mnt, bool stale);

/* Commit the filesystem and wait for the kernel's cleaner to drop every
 * deleted subvolume (btrfs filesystem sync; btrfs subvolume sync). */
void probe_settle(const char *mnt);

/* The names in directory `dir`, sorted, space-separated, "." and ".."
 * left out, and names starting with `skip_prefix` too (unless NULL);
 * malloc()ed, NULL when dir cannot be read. */
char *probe_listing(const char *dir, const char *skip_prefix);

/* Whether the space-separated `listing` has a word starting with
 * `prefix`. */
bool probe_has_prefix(const char *listing, const char *prefix);

/* What a home keeps in HOME/<dir>: its names, and as ".staging/<name>" the
 * names in HOME/<dir>/.staging (where libraries from 2026-12-02 on keep
 * their reserved names; absent before), as probe_listing() gives them,
 * names starting with `skip_prefix` left out.  malloc()ed. */
char *probe_home_listing(const char *home, const char *dir, const char *skip_prefix);

/* Whether such a listing holds a reserved name (.tmp-*, .tomb-*). */
bool probe_has_reserved(const char *listing);

/* The directory in which a library keeps the reserved names of HOME/<dir>:
 * HOME/<dir>/.staging when it exists, else HOME/<dir>; with a stand-in
 * for each reserved subvolume of subvolumes/ (staged is then set). */
void probe_reserved_dir(const char *home, const char *dir, char *buf, size_t len,
			bool *staged);

/* The subvolume at `path`: 1 read-only, 0 writable, -1 when it is not a
 * subvolume root or cannot be read. */
int probe_read_only(const char *path);

/* The subvolume id of the subvolume at `path`, 0 when it is none. */
uint64_t probe_subvolume_id(const char *path);

/* Whether `path` is a mount point in this process's mount namespace
 * (its mount id differs from its parent's). */
bool probe_is_mount_point(const char *path);

#endif
