/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* A real btrfs for integration tests: a loopback image made, mounted and
 * always torn down by the test program itself. */
#ifndef HARNESS_H
#define HARNESS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "btrfslayer.h"

/* Make and mount the filesystem, or end the program: exit 77 (skip) saying
 * why when root, btrfs or loop devices are missing, but exit 1 (fail) when
 * CI=true, where an integration test must run.  Teardown is registered with
 * atexit() and on SIGINT/SIGTERM. */
void harness_start(void);

/* Mount point of the btrfs, and a mounted tmpfs (a filesystem that is not
 * btrfs). */
const char *harness_btrfs(void);
const char *harness_tmpfs(void);

/* A path under the btrfs mount that does not exist yet: a fresh home. */
void harness_new_home(char *buf, size_t len);

/* Run a command (argv, NULL-terminated); its exit status, -1 if it could not
 * run. */
int harness_run(const char *const argv[]);

/* ---- sentinel trees: proof that nothing outside a home changed ---------- */

/* Make a sentinel tree at `dir` (which must not exist): files of several
 * modes, a nested directory, a relative and an absolute symlink and, when
 * dir is on btrfs, a writable and a read-only subvolume with files in them.
 * Returns 0 or an errno. */
int harness_sentinel_make(const char *dir);

/* Everything about the tree at `dir`, one line per entry, sorted by path:
 * path, type, mode, owner, size, mtime, inode, subvolume flags and a hash
 * of the content (of the target, for a symlink).  Never follows a symlink.
 * malloc()ed; NULL if the walk failed. */
char *harness_tree_snapshot(const char *dir);

/* Write up to `total` bytes of incompressible data to in/name with
 * write(2), then fsync.  Returns the bytes written; *error is the errno that
 * stopped it, the open's included (0 if none). */
uint64_t harness_write_data(const char *in, const char *name, uint64_t total, int *error);

/* Whether the kernel, with full qgroup accounting, destroys the level-0
 * qgroup of a deleted subvolume itself once its cleaner has dropped it
 * (Linux 6.11 and later): the library leaves no marker for those then. */
bool harness_kernel_drops_qgroups(void);

/* For such a kernel: whether qgroup 0/id of the btrfs at mnt is gone, or
 * is the kernel's to destroy still (its subvolume is deleted but not yet
 * dropped); a qgroup whose subvolume was dropped must go within a minute. */
bool harness_qgroup_left_to_kernel(const char *mnt, uint64_t id);

/* The library's empty template, subvolumes/.empty-<mode>-<uid>-<gid>, that
 * plain empty layers are snapshots of: a subvolume of the library's own
 * that stays when every layer is gone.  Whether a name (or the last
 * component of a path) is one. */
bool harness_is_template(const char *name_or_path);
/* The subvolume ids of the templates in HOME/subvolumes (up to max), and
 * their count. */
int harness_template_ids(const char *home, uint64_t *ids, int max);
/* NULL when the template at path is whole (a read-only, empty subvolume
 * with the mode and owner its name says), else what is wrong with it. */
const char *harness_template_flaw(const char *path);

/* The qgroups a home's markers name, up to max: the ids in the attribute
 * user.btrfslayer.qgroups of HOME/subvolumes and the files
 * quotas/.staging/.qgroup-<id> (where a marker goes when the list cannot
 * take it, and where versions before 1.1 put them all); their count. */
int harness_markers(const char *home, uint64_t *ids, int max);
/* Whether a marker of the home names qgroup 0/id. */
bool harness_marked(const char *home, uint64_t id);

/* A fresh home opened with no options: the cmocka setup and teardown most
 * layer tests share (*state is a struct harness_home). */
#define HARNESS_HOME_MAX 128
struct harness_home {
	char home[HARNESS_HOME_MAX];
	btrfslayer *h;
};
int harness_home_setup(void **state);
/* Closes the handle; a close that fails fails the test. */
int harness_home_teardown(void **state);

#endif
