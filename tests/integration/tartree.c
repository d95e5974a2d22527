/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Trees for the tar tests (tartree.h). */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>
#include <unistd.h>

#include "tartree.h"

/* ---- comparison ------------------------------------------------------------ */

struct inode_group {
	dev_t dev;
	ino_t ino;
	char *first;	/* the first path (from the top) met with this inode */
};

struct walk {
	const char *top;
	struct inode_group *groups;
	size_t n, cap;
};

static const char *group_of(struct walk *w, const struct stat *st, const char *rel)
{
	for (size_t i = 0; i < w->n; i++)
		if (w->groups[i].dev == st->st_dev && w->groups[i].ino == st->st_ino)
			return w->groups[i].first;
	if (w->n == w->cap) {
		w->cap = w->cap ? w->cap * 2 : 16;
		w->groups = realloc(w->groups, w->cap * sizeof(*w->groups));
		if (!w->groups)
			abort();
	}
	w->groups[w->n] = (struct inode_group){ st->st_dev, st->st_ino, strdup(rel) };
	return w->groups[w->n++].first;
}

static char *fmt(const char *f, ...) __attribute__((format(printf, 1, 2)));
static char *fmt(const char *f, ...)
{
	char *s = NULL;
	va_list ap;
	va_start(ap, f);
	if (vasprintf(&s, f, ap) < 0)
		s = NULL;
	va_end(ap);
	return s ? s : strdup("(out of memory)");
}

static int cmp_names(const struct dirent **a, const struct dirent **b)
{
	return strcmp((*a)->d_name, (*b)->d_name);
}

static char *read_all(const char *path, size_t *len)
{
	FILE *f = fopen(path, "re");
	if (!f)
		return NULL;
	char *buf = NULL;
	size_t cap = 0, n = 0;
	for (;;) {
		if (n == cap) {
			cap = cap ? cap * 2 : 65536;
			buf = realloc(buf, cap);
			if (!buf)
				abort();
		}
		size_t got = fread(buf + n, 1, cap - n, f);
		n += got;
		if (got == 0)
			break;
	}
	fclose(f);
	*len = n;
	return buf;
}

/* The xattrs of path (not followed), "name=hexvalue\n" sorted by name. */
static char *xattrs_of(const char *path)
{
	char names[65536];
	ssize_t len = llistxattr(path, names, sizeof(names));
	if (len < 0)
		return fmt("(llistxattr: %s)", strerror(errno));
	const char *v[256] = { NULL };
	size_t n = 0;
	for (ssize_t i = 0; i < len && n < 256; i += (ssize_t)strlen(names + i) + 1)
		if (strcmp(names + i, "security.selinux"))
			v[n++] = names + i;
	qsort(v, n, sizeof(*v), (int (*)(const void *, const void *))strcmp);
	char *out = strdup("");
	for (size_t i = 0; i < n; i++) {
		unsigned char value[4096];
		ssize_t vl = lgetxattr(path, v[i], value, sizeof(value));
		char *next = fmt("%s%s=", out, v[i]);
		free(out);
		out = next;
		for (ssize_t j = 0; j < vl; j++) {
			next = fmt("%s%02x", out, value[j]);
			free(out);
			out = next;
		}
		next = fmt("%s\n", out);
		free(out);
		out = next;
	}
	return out;
}

static char *diff_entry(struct walk *wa, struct walk *wb, const char *rel, bool dir_times);

static char *diff_dir(struct walk *wa, struct walk *wb, const char *rel, bool dir_times)
{
	char pa[PATH_MAX], pb[PATH_MAX];
	snprintf(pa, sizeof(pa), "%s/%s", wa->top, rel);
	snprintf(pb, sizeof(pb), "%s/%s", wb->top, rel);
	struct dirent **la = NULL, **lb = NULL;
	int na = scandir(pa, &la, NULL, cmp_names), nb = scandir(pb, &lb, NULL, cmp_names);
	char *d = NULL;
	if (na < 0 || nb < 0)
		d = fmt("%s: scandir failed", rel);
	int i = 0, j = 0;
	while (!d && (i < na || j < nb)) {
		const char *a = i < na ? la[i]->d_name : NULL, *b = j < nb ? lb[j]->d_name : NULL;
		if (a && (!strcmp(a, ".") || !strcmp(a, ".."))) {
			i++;
			continue;
		}
		if (b && (!strcmp(b, ".") || !strcmp(b, ".."))) {
			j++;
			continue;
		}
		int c = !a ? 1 : !b ? -1 : strcmp(a, b);
		if (c < 0) {
			d = fmt("%s%s%s: only in the first tree", rel, *rel ? "/" : "", a);
		} else if (c > 0) {
			d = fmt("%s%s%s: only in the second tree", rel, *rel ? "/" : "", b);
		} else {
			char sub[PATH_MAX];
			snprintf(sub, sizeof(sub), "%s%s%s", rel, *rel ? "/" : "", a);
			d = diff_entry(wa, wb, sub, dir_times);
			i++;
			j++;
		}
	}
	for (int k = 0; k < na; k++)
		free(la[k]);
	for (int k = 0; k < nb; k++)
		free(lb[k]);
	free(la);
	free(lb);
	return d;
}

static char *diff_entry(struct walk *wa, struct walk *wb, const char *rel, bool dir_times)
{
	char pa[PATH_MAX], pb[PATH_MAX];
	const char *shown = *rel ? rel : ".";
	snprintf(pa, sizeof(pa), "%s/%s", wa->top, rel);
	snprintf(pb, sizeof(pb), "%s/%s", wb->top, rel);
	struct stat a, b;
	if (lstat(pa, &a) < 0 || lstat(pb, &b) < 0)
		return fmt("%s: lstat failed", shown);
	if ((a.st_mode & S_IFMT) != (b.st_mode & S_IFMT))
		return fmt("%s: type %o vs %o", shown, a.st_mode & S_IFMT, b.st_mode & S_IFMT);
	if (!S_ISLNK(a.st_mode) && a.st_mode != b.st_mode)
		return fmt("%s: mode %o vs %o", shown, a.st_mode, b.st_mode);
	if (a.st_uid != b.st_uid || a.st_gid != b.st_gid)
		return fmt("%s: owner %u:%u vs %u:%u", shown, a.st_uid, a.st_gid, b.st_uid,
			   b.st_gid);
	if ((S_ISCHR(a.st_mode) || S_ISBLK(a.st_mode)) && a.st_rdev != b.st_rdev)
		return fmt("%s: device %u:%u vs %u:%u", shown, major(a.st_rdev),
			   minor(a.st_rdev), major(b.st_rdev), minor(b.st_rdev));
	if ((!S_ISDIR(a.st_mode) || dir_times) &&
	    a.st_mtim.tv_sec != b.st_mtim.tv_sec)
		return fmt("%s: mtime %lld.%09ld vs %lld.%09ld", shown, (long long)a.st_mtim.tv_sec,
			   a.st_mtim.tv_nsec, (long long)b.st_mtim.tv_sec, b.st_mtim.tv_nsec);
	if (!S_ISDIR(a.st_mode) && a.st_nlink != b.st_nlink)
		return fmt("%s: %lu links vs %lu", shown, (unsigned long)a.st_nlink,
			   (unsigned long)b.st_nlink);
	if (!S_ISDIR(a.st_mode) && a.st_nlink > 1) {
		const char *ga = group_of(wa, &a, rel), *gb = group_of(wb, &b, rel);
		if (strcmp(ga, gb))
			return fmt("%s: hard link of %s vs of %s", shown, ga, gb);
	}
	if (S_ISREG(a.st_mode)) {
		if (a.st_size != b.st_size)
			return fmt("%s: size %lld vs %lld", shown, (long long)a.st_size,
				   (long long)b.st_size);
		size_t la, lb;
		char *ca = read_all(pa, &la), *cb = read_all(pb, &lb);
		bool same = ca && cb && la == lb && !memcmp(ca, cb, la);
		free(ca);
		free(cb);
		if (!same)
			return fmt("%s: content differs", shown);
	}
	if (S_ISLNK(a.st_mode)) {
		char ta[PATH_MAX] = "", tb[PATH_MAX] = "";
		if (readlink(pa, ta, sizeof(ta) - 1) < 0 || readlink(pb, tb, sizeof(tb) - 1) < 0 ||
		    strcmp(ta, tb))
			return fmt("%s: symlink to \"%s\" vs \"%s\"", shown, ta, tb);
	} else {
		char *xa = xattrs_of(pa), *xb = xattrs_of(pb);
		char *d = strcmp(xa, xb) ? fmt("%s: xattrs\n%svs\n%s", shown, xa, xb) : NULL;
		free(xa);
		free(xb);
		if (d)
			return d;
	}
	return S_ISDIR(a.st_mode) ? diff_dir(wa, wb, rel, dir_times) : NULL;
}

char *tree_diff(const char *a, const char *b, bool dir_times)
{
	struct walk wa = { .top = a }, wb = { .top = b };
	char *d = diff_entry(&wa, &wb, "", dir_times);
	for (size_t i = 0; i < wa.n; i++)
		free(wa.groups[i].first);
	for (size_t i = 0; i < wb.n; i++)
		free(wb.groups[i].first);
	free(wa.groups);
	free(wb.groups);
	return d;
}

/* ---- random trees ------------------------------------------------------------- */

static uint64_t rng;

static uint64_t rng_next(void)
{
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return rng;
}

static unsigned pick(unsigned n)
{
	return n ? (unsigned)(rng_next() % n) : 0;
}

/* The paths (relative) of the tree at top: dirs and others apart. */
struct paths {
	char **v;
	size_t n;
};
static struct paths all_dirs, all_files;
static size_t top_len;

static void paths_free(struct paths *p)
{
	for (size_t i = 0; i < p->n; i++)
		free(p->v[i]);
	free(p->v);
	p->v = NULL;
	p->n = 0;
}

static void paths_add(struct paths *p, const char *s)
{
	p->v = realloc(p->v, (p->n + 1) * sizeof(*p->v));
	if (!p->v)
		abort();
	p->v[p->n++] = strdup(s);
}

static int collect(const char *path, const struct stat *st, int type, struct FTW *ftw)
{
	(void)ftw;
	const char *rel = path + top_len;
	rel += *rel == '/';
	if (type == FTW_D || type == FTW_DP)
		paths_add(&all_dirs, rel);	/* "" is the top */
	else
		paths_add(&all_files, rel);
	(void)st;
	return 0;
}

static void scan(const char *dir)
{
	paths_free(&all_dirs);
	paths_free(&all_files);
	top_len = strlen(dir);
	nftw(dir, collect, 64, FTW_PHYS);
}

static void join(char *out, const char *top, const char *rel, const char *name)
{
	snprintf(out, PATH_MAX, "%s%s%s%s%s", top, *rel ? "/" : "", rel, name ? "/" : "",
		 name ? name : "");
}

static void fresh_name(char *buf, size_t len)
{
	static const char *const stems[] = { "a", "b", "file", "dir", "x.txt", "lib", "usr",
					     "é", "name with space", "z" };
	snprintf(buf, len, "%s%u", stems[pick(10)], pick(50));
}

static void random_times(const char *path)
{
	struct timespec t[2] = {
		{ 1600000000 + (time_t)pick(100000000), (long)pick(1000000000) },
		{ 1600000000 + (time_t)pick(100000000), pick(2) ? 0 : (long)pick(1000000000) },
	};
	utimensat(AT_FDCWD, path, t, AT_SYMLINK_NOFOLLOW);
}

/* Whether path is missing or a regular file: never open a device node
 * or fifo of the tree for writing (a node is a real device). */
static bool writable(const char *path)
{
	struct stat st;
	return lstat(path, &st) < 0 ? errno == ENOENT : S_ISREG(st.st_mode);
}

static void write_random(const char *path, bool append)
{
	if (!writable(path))
		return;
	int fd = open(path, O_WRONLY | O_CREAT | (append ? O_APPEND : O_TRUNC) | O_NOFOLLOW |
			    O_NONBLOCK | O_CLOEXEC, 0644);
	if (fd < 0)
		return;
	unsigned kind = pick(8);
	char buf[8192];
	size_t n = kind == 0 ? 0 : kind < 6 ? pick(200) : pick(sizeof(buf));
	for (size_t i = 0; i < n; i++)
		buf[i] = (char)('a' + pick(26));
	if (write(fd, buf, n) < 0) {
		/* nothing to do: the tree is only random */
	}
	if (kind == 7 && !append) {
		/* sparse: a hole, then a tail */
		if (pwrite(fd, "tail", 4, (off_t)(1 << 20) + (off_t)pick(1 << 20)) < 0) {
		}
	}
	close(fd);
}

static void make_one(const char *top, const char *rel_dir)
{
	char name[64], path[PATH_MAX];
	fresh_name(name, sizeof(name));
	join(path, top, rel_dir, name);
	switch (pick(12)) {
	case 0:
	case 1:
	case 2:
		mkdir(path, pick(4) ? 0755 : 0700);
		break;
	case 3:
		if (all_files.n) {
			char target[PATH_MAX];
			struct stat st;
			join(target, top, all_files.v[pick((unsigned)all_files.n)], NULL);
			if (lstat(target, &st) == 0 && S_ISREG(st.st_mode))
				link(target, path);
		}
		break;
	case 4: {
		/* never a file outside the tree: a mutation that followed a
		 * link by mistake could only miss */
		static const char *const targets[] = { "../a", "/nonexistent/abs", "b", "x/y/z",
						       "." };
		symlink(targets[pick(5)], path);
		break;
	}
	case 5:
		if (pick(2))
			mkfifo(path, 0644);
		else
			/* memory devices (null, zero, full) and block devices of
			 * major 0, which none has: nothing real behind them */
			mknod(path, (pick(2) ? S_IFCHR : S_IFBLK) | 0640,
			      pick(2) ? makedev(1, 3 + pick(3) * 2) : makedev(0, 1 + pick(200)));
		break;
	default:
		write_random(path, false);
		break;
	}
	struct stat st;
	if (lstat(path, &st) < 0)
		return;
	if (!S_ISLNK(st.st_mode)) {
		if (pick(4) == 0)
			lchown(path, pick(3) * 1000 + pick(3), pick(3) * 1000 + pick(2));
		if (pick(4) == 0)
			chmod(path, (mode_t)(pick(2) ? 0600 : 0755) | (pick(6) ? 0 : S_ISGID));
		if ((S_ISREG(st.st_mode) || S_ISDIR(st.st_mode)) && pick(4) == 0) {
			char value[32];
			int n = snprintf(value, sizeof(value), "v%u", pick(1000));
			setxattr(path, pick(2) ? "user.one" : "user.two", value, (size_t)n, 0);
		}
		if (S_ISREG(st.st_mode) && pick(8) == 0) {
			/* VFS_CAP_REVISION_2, permitted cap_net_raw (13) */
			uint32_t cap[5] = { 0x02000000, 1u << 13, 0, 0, 0 };
			setxattr(path, "security.capability", cap, sizeof(cap), 0);
		}
	} else if (pick(3) == 0) {
		lchown(path, 1000, 1000);
	}
	random_times(path);
}

int tree_random(const char *dir, uint64_t seed, unsigned n)
{
	rng = seed * UINT64_C(0x9E3779B97F4A7C15) + 1;
	for (unsigned i = 0; i < n; i++) {
		if (i % 8 == 0)
			scan(dir);
		make_one(dir, all_dirs.n ? all_dirs.v[pick((unsigned)all_dirs.n)] : "");
	}
	scan(dir);
	for (size_t i = 0; i < all_dirs.n; i++) {
		char path[PATH_MAX];
		join(path, dir, all_dirs.v[i], NULL);
		random_times(path);
	}
	paths_free(&all_dirs);
	paths_free(&all_files);
	return 0;
}

static void remove_tree(const char *path)
{
	struct stat st;
	if (lstat(path, &st) < 0)
		return;
	if (!S_ISDIR(st.st_mode)) {
		unlink(path);
		return;
	}
	DIR *d = opendir(path);
	if (d) {
		struct dirent *de;
		while ((de = readdir(d))) {
			if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
				continue;
			char sub[PATH_MAX];
			snprintf(sub, sizeof(sub), "%s/%s", path, de->d_name);
			remove_tree(sub);
		}
		closedir(d);
	}
	rmdir(path);
}

int tree_mutate(const char *dir, uint64_t seed, unsigned n)
{
	rng = seed * UINT64_C(0xD1B54A32D192ED03) + 7;
	for (unsigned i = 0; i < n; i++) {
		scan(dir);
		char path[PATH_MAX], other[PATH_MAX];
		const char *file = all_files.n ? all_files.v[pick((unsigned)all_files.n)] : NULL;
		/* a directory other than the top, when there is one */
		const char *sub = all_dirs.n > 1 ? all_dirs.v[1 + pick((unsigned)all_dirs.n - 1)]
						 : NULL;
		const char *any_dir = all_dirs.v[pick((unsigned)all_dirs.n)];
		switch (pick(14)) {
		case 0:
		case 1:
			make_one(dir, any_dir);
			break;
		case 2:	/* overwrite, truncate or append */
			if (file) {
				join(path, dir, file, NULL);
				unsigned k = pick(3);
				if (k == 0)
					write_random(path, false);
				else if (k == 1 && writable(path))
					truncate(path, pick(50));
				else
					write_random(path, true);
			}
			break;
		case 3:	/* chmod, chown */
			if (file) {
				join(path, dir, file, NULL);
				struct stat st;
				if (lstat(path, &st) < 0 || S_ISLNK(st.st_mode))
					break;	/* chmod would follow it */
				if (pick(2))
					fchmodat(AT_FDCWD, path, pick(2) ? 0640 : 0751, 0);
				else
					lchown(path, pick(5), pick(5));
			}
			break;
		case 4:	/* utimes */
			join(path, dir, file && pick(2) ? file : any_dir, NULL);
			random_times(path);
			break;
		case 5:	/* rename across directories */
			if (file) {
				char name[64];
				fresh_name(name, sizeof(name));
				join(path, dir, file, NULL);
				join(other, dir, any_dir, name);
				rename(path, other);
			}
			break;
		case 6:	/* delete a file */
			if (file) {
				join(path, dir, file, NULL);
				unlink(path);
			}
			break;
		case 7:	/* delete a subtree */
			if (sub && pick(2)) {
				join(path, dir, sub, NULL);
				remove_tree(path);
			}
			break;
		case 8:	/* a directory replaced by a file */
			if (sub) {
				join(path, dir, sub, NULL);
				remove_tree(path);
				write_random(path, false);
			}
			break;
		case 9:	/* a file replaced by a directory, with something in it */
			if (file) {
				join(path, dir, file, NULL);
				unlink(path);
				mkdir(path, 0755);
				make_one(dir, file);
			}
			break;
		case 10:	/* a directory replaced by a new one */
			if (sub) {
				join(path, dir, sub, NULL);
				remove_tree(path);
				mkdir(path, 0750);
				make_one(dir, sub);
			}
			break;
		case 11:	/* xattrs */
			if (file) {
				join(path, dir, file, NULL);
				if (pick(2))
					lsetxattr(path, "user.one", "changed", 7, 0);
				else
					lremovexattr(path, "user.one");
				/* Docker's change detection sees no user.* xattr
				 * (only security.capability): the file is touched
				 * too, as the tool that set it would have */
				random_times(path);
			}
			break;
		case 12:	/* deep nesting */
			snprintf(other, sizeof(other), "%s", any_dir);
			for (unsigned d = 0; d < 6; d++) {
				char name[64];
				fresh_name(name, sizeof(name));
				join(path, dir, other, name);
				mkdir(path, 0755);
				size_t l = strlen(other);
				snprintf(other + l, sizeof(other) - l, "%s%s", l ? "/" : "", name);
			}
			make_one(dir, other);
			break;
		default:	/* a hard link to an existing file */
			if (file) {
				char name[64];
				fresh_name(name, sizeof(name));
				join(path, dir, file, NULL);
				join(other, dir, any_dir, name);
				struct stat st;
				if (lstat(path, &st) == 0 && S_ISREG(st.st_mode))
					link(path, other);
			}
			break;
		}
	}
	paths_free(&all_dirs);
	paths_free(&all_files);
	return 0;
}
