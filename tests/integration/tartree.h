/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Trees for the tar tests: compare two, make and mutate random ones. */
#ifndef TARTREE_H
#define TARTREE_H

#include <stdbool.h>
#include <stdint.h>

/* NULL when the trees at a and b hold the same entries with the same type,
 * mode, owner, device number, size, content, symlink target, xattrs (all
 * but security.selinux), link count and hard-link groups, and the same
 * mtime, in whole seconds as layer tars keep it, for everything but
 * directories (and directories too when dir_times); else a malloc()ed line saying the first difference.  The
 * top directories themselves are compared too. */
char *tree_diff(const char *a, const char *b, bool dir_times);

/* Fill the empty directory dir with a random tree from seed: nested
 * directories, regular files (some empty, some sparse), hard links,
 * symlinks, fifos, device nodes, owners, modes, user.* xattrs and file
 * capabilities.  About `n` entries.  0 or -errno. */
int tree_random(const char *dir, uint64_t seed, unsigned n);

/* Apply about `n` random mutations to the tree at dir: create, overwrite,
 * truncate, append, chmod, chown, utimes, rename across directories,
 * delete files and subtrees, replace a directory by a file and a file by
 * a directory, hard links, symlinks, fifos, devices, xattrs.  0 or -errno. */
int tree_mutate(const char *dir, uint64_t seed, unsigned n);

#endif
