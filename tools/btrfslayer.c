/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * btrfslayer: command-line front end to libbtrfslayer.
 *
 * Uses only the public header, so it is also a worked example of the API.
 * Exit status: 0 success, 1 a library call failed, 2 the command line is
 * wrong.  `exists` answers with 0/1 and prints nothing.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "btrfslayer.h"

#define PROG "btrfslayer"
#define DEFAULT_HOME "/var/lib/btrfslayer"

enum { EXIT_OK = 0, EXIT_FAIL = 1, EXIT_USAGE = 2 };

/* Long-only options get values past any char so that they never alias a
 * short option in getopt's results. */
enum { OPT_HOME = 256, OPT_JSON, OPT_PARENT, OPT_READ_ONLY, OPT_LABEL,
       OPT_STORAGE_OPT, OPT_SYNC, OPT_UIDMAP, OPT_GIDMAP, OPT_WALK };

/* --read-only before the command: the store is opened read-only. */
#define READ_ONLY_OPTION "btrfs.read_only=true"

/* A list of borrowed argv strings; sized for the whole argv up front, so
 * adding never reallocates. */
struct strv {
	const char **v;
	size_t n;
};

struct ctx {
	const char *home;
	struct strv options;	/* -o KEY=VALUE, for btrfslayer_open() */
	btrfslayer_idmap *maps[2];	/* --uidmap, --gidmap; sized for argv */
	size_t n_maps[2];
	int json;
	int verbose;
	btrfslayer *h;		/* opened by a command once its args are OK */
};

struct command {
	const char *name;
	const char *args;	/* shown by help */
	const char *summary;
	int (*run)(struct ctx *c, int argc, char **argv);
};

/* ---- messages ------------------------------------------------------------ */

__attribute__((format(printf, 1, 2)))
static int usage_error(const char *fmt, ...)
{
	va_list ap;

	fputs(PROG ": ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputs("\nTry '" PROG " help'.\n", stderr);
	return EXIT_USAGE;
}

/* Report a failed library call and consume its error object. */
static int lib_error(int rc, btrfslayer_error *err)
{
	/* err can only be NULL if the library broke its contract; say
	 * something useful anyway. */
	fprintf(stderr, PROG ": %s\n",
		err ? btrfslayer_error_message(err) : btrfslayer_strerror(rc));
	btrfslayer_error_free(err);
	return EXIT_FAIL;
}

static const char *level_name(int level)
{
	if (level <= BTRFSLAYER_LOG_ERR)
		return "error";
	if (level <= BTRFSLAYER_LOG_WARNING)
		return "warning";
	if (level <= BTRFSLAYER_LOG_INFO)
		return "info";
	return "debug";
}

static void log_to_stderr(int level, const char *message, void *userdata)
{
	const int *verbose = userdata;

	if (level > BTRFSLAYER_LOG_WARNING && !*verbose)
		return;
	fprintf(stderr, PROG ": %s: %s\n", level_name(level), message);
}

/* ---- JSON ------------------------------------------------------------------ */

/* RFC 8259 string; bytes >= 0x80 pass through (ids are ASCII, and a path is
 * bytes we must not alter). */
static void json_string(const char *s)
{
	putchar('"');
	for (; *s; s++) {
		unsigned char ch = (unsigned char)*s;

		if (ch == '"' || ch == '\\')
			printf("\\%c", ch);
		else if (ch < 0x20 || ch == 0x7f)
			printf("\\u%04x", ch);
		else
			putchar(ch);
	}
	putchar('"');
}

/* ---- argument parsing -------------------------------------------------------- */

/* getopt_long with our own messages (opterr is off), so every usage error
 * has the same shape.  Returns the option, -1 at the end, or '?' after
 * printing the error. */
static int next_opt(const char *cmd, int argc, char **argv,
		    const char *shortopts, const struct option *longopts)
{
	int opt = getopt_long(argc, argv, shortopts, longopts, NULL);
	const char *arg = argv[optind - 1];
	const char *sep = cmd ? ": " : "";

	if (!cmd)
		cmd = "";
	if (opt == ':') {
		usage_error("%s%soption '%s' requires an argument", cmd, sep, arg);
		return '?';
	}
	if (opt != '?')
		return opt;
	if (optopt > 0 && optopt < 256 && strncmp(arg, "--", 2) != 0)
		usage_error("%s%sunknown option '-%c'", cmd, sep, optopt);
	else
		usage_error("%s%sunknown or malformed option '%s'", cmd, sep, arg);
	return '?';
}

/* After a command's options: exactly `want` operands must remain. */
static int check_operands(const char *cmd, int argc, char **argv, int want,
			  const char *what)
{
	int have = argc - optind;

	if (have < want)
		return usage_error("%s: missing %s", cmd, what);
	if (have > want)
		return usage_error("%s: unexpected argument '%s'", cmd,
				   argv[optind + want]);
	return EXIT_OK;
}

/* Commands whose only option is --json (ls, status, path, info, version) or
 * none at all. */
static int parse_simple(struct ctx *c, int argc, char **argv, int json_ok,
			int want, const char *what)
{
	static const struct option with_json[] = {
		{ "json", no_argument, NULL, OPT_JSON },
		{ NULL, 0, NULL, 0 },
	};
	static const struct option none[] = { { NULL, 0, NULL, 0 } };
	int opt;

	optind = 0;	/* glibc: full re-initialisation for a new argv */
	while ((opt = next_opt(argv[0], argc, argv, ":",
			       json_ok ? with_json : none)) != -1) {
		if (opt != OPT_JSON)
			return EXIT_USAGE;
		c->json = 1;
	}
	return check_operands(argv[0], argc, argv, want, what);
}

/* ---- commands ------------------------------------------------------------------ */

static int open_store(struct ctx *c)
{
	btrfslayer_error *err = NULL;
	int rc = btrfslayer_open(c->home, c->options.v, c->options.n,
				 c->maps[0], c->n_maps[0], c->maps[1], c->n_maps[1],
				 &c->h, &err);

	return rc < 0 ? lib_error(rc, err) : EXIT_OK;
}

/* A command's options and operands (parse_simple()), then the store. */
static int parse_and_open(struct ctx *c, int argc, char **argv, int json_ok, int want,
			  const char *what)
{
	int rc = parse_simple(c, argc, argv, json_ok, want, what);
	return rc == EXIT_OK ? open_store(c) : rc;
}

struct create_args {
	const char *parent;
	const char *label;
	uint32_t flags;
	struct strv storage_opts;
};

static int parse_create(int argc, char **argv, struct create_args *a)
{
	static const struct option longopts[] = {
		{ "parent", required_argument, NULL, OPT_PARENT },
		{ "read-only", no_argument, NULL, OPT_READ_ONLY },
		{ "label", required_argument, NULL, OPT_LABEL },
		{ "storage-opt", required_argument, NULL, OPT_STORAGE_OPT },
		{ NULL, 0, NULL, 0 },
	};
	int opt;

	optind = 0;
	while ((opt = next_opt(argv[0], argc, argv, ":", longopts)) != -1) {
		switch (opt) {
		case OPT_PARENT:
			a->parent = optarg;
			break;
		case OPT_READ_ONLY:
			a->flags |= BTRFSLAYER_CREATE_READ_ONLY;
			break;
		case OPT_LABEL:
			a->label = optarg;
			break;
		case OPT_STORAGE_OPT:
			a->storage_opts.v[a->storage_opts.n++] = optarg;
			break;
		default:
			return EXIT_USAGE;
		}
	}
	return check_operands(argv[0], argc, argv, 1, "layer id");
}

static int cmd_create(struct ctx *c, int argc, char **argv)
{
	struct create_args a = { 0 };
	btrfslayer_error *err = NULL;
	int rc;

	/* Every --storage-opt takes at least one argv slot. */
	a.storage_opts.v = calloc((size_t)argc, sizeof(*a.storage_opts.v));
	if (!a.storage_opts.v) {
		perror(PROG);
		return EXIT_FAIL;
	}
	rc = parse_create(argc, argv, &a);
	if (rc == EXIT_OK)
		rc = open_store(c);
	if (rc == EXIT_OK) {
		int r = btrfslayer_create(c->h, argv[optind], a.parent, a.flags,
					  a.label, a.storage_opts.v,
					  a.storage_opts.n, &err);
		if (r < 0)
			rc = lib_error(r, err);
	}
	free(a.storage_opts.v);
	return rc;
}

static int cmd_rm(struct ctx *c, int argc, char **argv)
{
	btrfslayer_error *err = NULL;
	int rc = parse_and_open(c, argc, argv, 0, 1, "layer id");

	if (rc != EXIT_OK)
		return rc;
	rc = btrfslayer_remove(c->h, argv[optind], &err);
	return rc < 0 ? lib_error(rc, err) : EXIT_OK;
}

static int cmd_path(struct ctx *c, int argc, char **argv)
{
	btrfslayer_error *err = NULL;
	char *path = NULL;
	const char *id;
	int rc = parse_and_open(c, argc, argv, 1, 1, "layer id");

	if (rc != EXIT_OK)
		return rc;
	id = argv[optind];
	rc = btrfslayer_get(c->h, id, NULL, &path, &err);
	if (rc < 0)
		return lib_error(rc, err);
	if (c->json) {
		fputs("{\n  \"id\": ", stdout);
		json_string(id);
		fputs(",\n  \"path\": ", stdout);
		json_string(path);
		puts("\n}");
	} else {
		puts(path);
	}
	free(path);
	/* get and put come in pairs in the graph-driver contract. */
	rc = btrfslayer_put(c->h, id, &err);
	return rc < 0 ? lib_error(rc, err) : EXIT_OK;
}

static int cmd_exists(struct ctx *c, int argc, char **argv)
{
	btrfslayer_error *err = NULL;
	int rc = parse_and_open(c, argc, argv, 0, 1, "layer id");

	if (rc != EXIT_OK)
		return rc;
	rc = btrfslayer_exists(c->h, argv[optind], &err);
	if (rc < 0)
		return lib_error(rc, err);
	return rc ? EXIT_OK : EXIT_FAIL;
}

/* Print a list as text ("key<sep>value", or the key alone when sep is
 * NULL) or as JSON: an array of {"id","path"} objects when as_array, else
 * one object. */
static void print_list(const btrfslayer_list *l, int json, int as_array,
		       const char *sep)
{
	size_t i, n = btrfslayer_list_count(l);

	if (json)
		fputs(n ? (as_array ? "[\n" : "{\n") : (as_array ? "[" : "{"),
		      stdout);
	for (i = 0; i < n; i++) {
		const char *k = btrfslayer_list_key(l, i);
		const char *v = btrfslayer_list_value(l, i);

		if (!json) {
			printf("%s%s%s\n", k, sep ? sep : "", sep ? v : "");
			continue;
		}
		fputs(as_array ? "  {\"id\": " : "  ", stdout);
		json_string(k);
		fputs(as_array ? ", \"path\": " : ": ", stdout);
		json_string(v);
		fputs(as_array ? "}" : "", stdout);
		fputs(i + 1 < n ? ",\n" : "\n", stdout);
	}
	if (json)
		puts(as_array ? "]" : "}");
}

typedef int (*list_call)(btrfslayer *, btrfslayer_list **, btrfslayer_error **);

/* ls and status: a command with no argument that prints a library list. */
static int show_list(struct ctx *c, int argc, char **argv, list_call call,
		     int as_array, const char *sep)
{
	btrfslayer_error *err = NULL;
	btrfslayer_list *l = NULL;
	int rc = parse_and_open(c, argc, argv, 1, 0, "");

	if (rc != EXIT_OK)
		return rc;
	rc = call(c->h, &l, &err);
	if (rc < 0)
		return lib_error(rc, err);
	print_list(l, c->json, as_array, sep);
	btrfslayer_list_free(l);
	return EXIT_OK;
}

static int cmd_ls(struct ctx *c, int argc, char **argv)
{
	return show_list(c, argc, argv, btrfslayer_layers, 1, NULL);
}

static int cmd_status(struct ctx *c, int argc, char **argv)
{
	return show_list(c, argc, argv, btrfslayer_status, 0, ": ");
}

static int cmd_quota(struct ctx *c, int argc, char **argv)
{
	btrfslayer_error *err = NULL;
	uint64_t size = 0;
	int rc = parse_simple(c, argc, argv, 0, 2, "layer id and SIZE (or none)");

	/* the operands exist only once their count is checked */
	if (rc != EXIT_OK)
		return rc;
	const char *id = argv[optind], *value = argv[optind + 1];
	/* only "none" clears: 0 is a size, refused as set_quota refuses it */
	int clear = strcmp(value, "none") == 0;
	if (!clear && btrfslayer_parse_size(value, &size) < 0)
		return usage_error("quota: invalid size '%s' (e.g. 10G, 512M, none)", value);
	rc = open_store(c);
	if (rc != EXIT_OK)
		return rc;
	rc = clear ? btrfslayer_clear_quota(c->h, id, &err)
		   : btrfslayer_set_quota(c->h, id, size, &err);
	return rc < 0 ? lib_error(rc, err) : EXIT_OK;
}

static void print_usage(const char *id, const btrfslayer_usage *u, int walk, int json)
{
	const char *mode = u->quota_mode == BTRFSLAYER_QUOTA_SIMPLE ? "simple"
			   : u->quota_mode == BTRFSLAYER_QUOTA_QGROUP ? "qgroup" : "off";
	const struct { const char *key; uint64_t value; } numbers[] = {
		{ "referenced", u->referenced },
		{ "exclusive", u->exclusive },
		{ "limit", u->limit },
		{ "recorded_limit", u->recorded_limit },
		{ "exclusive_limit", u->exclusive_limit },
		{ "subvolume_id", u->subvolume_id },
		/* --walk only */
		{ "walk_bytes", u->walk_bytes },
		{ "walk_inodes", u->walk_inodes },
	};
	size_t i, n = sizeof(numbers) / sizeof(numbers[0]) - (walk ? 0 : 2);

	if (json) {
		fputs("{\n  \"id\": ", stdout);
		json_string(id);
		for (i = 0; i < n; i++)
			printf(",\n  \"%s\": %" PRIu64, numbers[i].key, numbers[i].value);
		printf(",\n  \"quota_mode\": \"%s\",\n  \"consistent\": %s\n}\n", mode,
		       u->consistent ? "true" : "false");
		return;
	}
	printf("id: %s\n", id);
	for (i = 0; i < n; i++)
		printf("%s: %" PRIu64 "\n", numbers[i].key, numbers[i].value);
	printf("quota_mode: %s\nconsistent: %s\n", mode, u->consistent ? "yes" : "no");
}

static int cmd_usage(struct ctx *c, int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "json", no_argument, NULL, OPT_JSON },
		{ "sync", no_argument, NULL, OPT_SYNC },
		{ "walk", no_argument, NULL, OPT_WALK },
		{ NULL, 0, NULL, 0 },
	};
	btrfslayer_error *err = NULL;
	btrfslayer_usage u;
	uint32_t flags = 0;
	int opt, rc;

	optind = 0;
	while ((opt = next_opt(argv[0], argc, argv, ":", longopts)) != -1) {
		if (opt == OPT_JSON)
			c->json = 1;
		else if (opt == OPT_SYNC)
			flags |= BTRFSLAYER_USAGE_SYNC;
		else if (opt == OPT_WALK)
			flags |= BTRFSLAYER_USAGE_WALK;
		else
			return EXIT_USAGE;
	}
	rc = check_operands(argv[0], argc, argv, 1, "layer id");
	if (rc == EXIT_OK)
		rc = open_store(c);
	if (rc != EXIT_OK)
		return rc;
	rc = btrfslayer_get_usage(c->h, argv[optind], flags, &u, sizeof(u), &err);
	if (rc < 0)
		return lib_error(rc, err);
	print_usage(argv[optind], &u, !!(flags & BTRFSLAYER_USAGE_WALK), c->json);
	return EXIT_OK;
}

/* "2026-01-02T03:04:05.123456789Z" */
static void format_time(int64_t sec, uint32_t nsec, char *buf, size_t len)
{
	time_t t = (time_t)sec;
	struct tm tm;
	char date[32];

	if (!gmtime_r(&t, &tm) || !strftime(date, sizeof(date), "%Y-%m-%dT%H:%M:%S", &tm))
		snprintf(date, sizeof(date), "@%" PRId64, sec);
	snprintf(buf, len, "%s.%09" PRIu32 "Z", date, nsec);
}

static void print_info(const char *id, const btrfslayer_info *in, int json)
{
	int ro = !!(in->flags & BTRFSLAYER_INFO_READ_ONLY);
	int nested = !!(in->flags & BTRFSLAYER_INFO_HAS_NESTED);
	char created[64];

	format_time(in->otime_sec, in->otime_nsec, created, sizeof(created));
	if (!json) {
		printf("id: %s\nparent: %s\nsubvolume_id: %" PRIu64 "\ngeneration: %" PRIu64
		       "\ncreated: %s\nread_only: %s\nhas_nested: %s\n", id, in->parent,
		       in->subvolume_id, in->generation, created, ro ? "yes" : "no",
		       nested ? "yes" : "no");
		return;
	}
	fputs("{\n  \"id\": ", stdout);
	json_string(id);
	fputs(",\n  \"parent\": ", stdout);
	if (*in->parent)
		json_string(in->parent);
	else
		fputs("null", stdout);
	printf(",\n  \"subvolume_id\": %" PRIu64 ",\n  \"generation\": %" PRIu64
	       ",\n  \"created\": \"%s\",\n  \"otime_sec\": %" PRId64
	       ",\n  \"otime_nsec\": %" PRIu32 ",\n  \"read_only\": %s,\n  \"has_nested\": %s\n}\n",
	       in->subvolume_id, in->generation, created, in->otime_sec, in->otime_nsec,
	       ro ? "true" : "false", nested ? "true" : "false");
}

static int cmd_info(struct ctx *c, int argc, char **argv)
{
	btrfslayer_error *err = NULL;
	btrfslayer_info info;
	int rc = parse_and_open(c, argc, argv, 1, 1, "layer id");

	if (rc != EXIT_OK)
		return rc;
	rc = btrfslayer_layer_info(c->h, argv[optind], &info, sizeof(info), &err);
	if (rc < 0)
		return lib_error(rc, err);
	print_info(argv[optind], &info, c->json);
	return EXIT_OK;
}

/* seal and unseal */
static int set_read_only(struct ctx *c, int argc, char **argv, int read_only)
{
	btrfslayer_error *err = NULL;
	int rc = parse_and_open(c, argc, argv, 0, 1, "layer id");

	if (rc != EXIT_OK)
		return rc;
	rc = btrfslayer_set_read_only(c->h, argv[optind], read_only, &err);
	return rc < 0 ? lib_error(rc, err) : EXIT_OK;
}

static int cmd_seal(struct ctx *c, int argc, char **argv)
{
	return set_read_only(c, argc, argv, 1);
}

static int cmd_unseal(struct ctx *c, int argc, char **argv)
{
	return set_read_only(c, argc, argv, 0);
}

/* One line per change, as `docker diff` prints them, or a JSON array. */
struct diff_out {
	int json;
	size_t n;
};

static int print_change(int kind, const char *path, void *userdata)
{
	struct diff_out *o = userdata;
	const char *k = kind == BTRFSLAYER_CHANGE_ADDED ? "A"
		      : kind == BTRFSLAYER_CHANGE_DELETED ? "D" : "C";

	if (!o->json) {
		printf("%s %s\n", k, path);
	} else {
		printf("%s\n  {\"kind\": \"%s\", \"path\": ", o->n ? "," : "", k);
		json_string(path);
		putchar('}');
	}
	o->n++;
	return 0;
}

static int cmd_diff(struct ctx *c, int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "json", no_argument, NULL, OPT_JSON },
		{ "parent", required_argument, NULL, OPT_PARENT },
		{ "walk", no_argument, NULL, OPT_WALK },
		{ NULL, 0, NULL, 0 },
	};
	btrfslayer_error *err = NULL;
	const char *parent = NULL;
	uint32_t flags = 0;
	int opt, rc;

	optind = 0;
	while ((opt = next_opt(argv[0], argc, argv, ":", longopts)) != -1) {
		if (opt == OPT_JSON)
			c->json = 1;
		else if (opt == OPT_PARENT)
			parent = optarg;
		else if (opt == OPT_WALK)
			flags |= BTRFSLAYER_CHANGES_WALK;
		else
			return EXIT_USAGE;
	}
	rc = check_operands(argv[0], argc, argv, 1, "layer id");
	if (rc == EXIT_OK)
		rc = open_store(c);
	if (rc != EXIT_OK)
		return rc;
	struct diff_out o = { .json = c->json };
	if (o.json)
		putchar('[');
	rc = btrfslayer_changes(c->h, argv[optind], parent, flags, print_change, &o, &err);
	if (o.json)
		fputs(o.n ? "\n]\n" : "]\n", stdout);
	return rc < 0 ? lib_error(rc, err) : EXIT_OK;
}

/* ---- apply and export: layer tars on stdin and stdout ----------------------- */

/* Progress of apply/export on stderr, when it is a terminal: one line
 * rewritten in place. */
static int show_progress(uint64_t done, uint64_t total, void *userdata)
{
	const char *what = userdata;

	if (total)
		fprintf(stderr, "\r%s: %" PRIu64 " MiB of %" PRIu64 " MiB (%u%%)", what,
			done >> 20, total >> 20, (unsigned)(done * 100 / total));
	else
		fprintf(stderr, "\r%s: %" PRIu64 " MiB", what, done >> 20);
	return 0;
}

static int cmd_apply(struct ctx *c, int argc, char **argv)
{
	btrfslayer_error *err = NULL;
	uint64_t unpacked = 0;
	int tty = isatty(STDERR_FILENO);
	int rc = parse_and_open(c, argc, argv, 0, 1, "layer id");

	if (rc != EXIT_OK)
		return rc;
	rc = btrfslayer_apply(c->h, argv[optind], STDIN_FILENO, 0,
			      tty ? show_progress : NULL, "apply", &unpacked, &err);
	if (tty)
		fputc('\n', stderr);
	if (rc < 0)
		return lib_error(rc, err);
	if (c->verbose || tty)
		fprintf(stderr, "apply: %" PRIu64 " bytes unpacked\n", unpacked);
	return EXIT_OK;
}

static int cmd_export(struct ctx *c, int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "parent", required_argument, NULL, OPT_PARENT },
		{ NULL, 0, NULL, 0 },
	};
	btrfslayer_error *err = NULL;
	const char *parent = NULL;
	int tty = isatty(STDERR_FILENO);
	int opt, rc;

	optind = 0;
	while ((opt = next_opt(argv[0], argc, argv, ":", longopts)) != -1) {
		if (opt != OPT_PARENT)
			return EXIT_USAGE;
		parent = optarg;
	}
	rc = check_operands(argv[0], argc, argv, 1, "layer id");
	if (rc != EXIT_OK)
		return rc;
	if (isatty(STDOUT_FILENO))
		return usage_error("export: standard output is a terminal; redirect it to a file");
	rc = open_store(c);
	if (rc != EXIT_OK)
		return rc;
	rc = btrfslayer_export(c->h, argv[optind], parent, STDOUT_FILENO, 0,
			       tty ? show_progress : NULL, "export", &err);
	if (tty)
		fputc('\n', stderr);
	return rc < 0 ? lib_error(rc, err) : EXIT_OK;
}

static int cmd_version(struct ctx *c, int argc, char **argv)
{
	int rc = parse_simple(c, argc, argv, 1, 0, "");

	if (rc != EXIT_OK)
		return rc;
	if (c->json) {
		fputs("{\n  \"version\": ", stdout);
		json_string(btrfslayer_version());
		puts("\n}");
	} else {
		puts(btrfslayer_version());
	}
	return rc;
}

static int cmd_help(struct ctx *c, int argc, char **argv);

static const struct command commands[] = {
	{ "create", "[--parent ID] [--read-only] [--label L] "
		    "[--storage-opt KEY=VALUE]... ID",
	  "make an empty layer, or a snapshot of --parent", cmd_create },
	{ "rm", "ID", "delete a layer and every subvolume inside it", cmd_rm },
	{ "path", "[--json] ID", "print the layer's absolute path", cmd_path },
	{ "info", "[--json] ID",
	  "show the layer's parent, subvolume, creation time and flags", cmd_info },
	{ "seal", "ID", "make the layer and everything nested in it read-only", cmd_seal },
	{ "unseal", "ID", "make the layer and everything nested in it writable", cmd_unseal },
	{ "exists", "ID", "exit 0 if the layer exists, 1 if not", cmd_exists },
	{ "quota", "ID SIZE|none", "set (or remove) the layer's size limit", cmd_quota },
	{ "usage", "[--json] [--sync] [--walk] ID",
	  "bytes the layer uses, from the quota tree (--sync: commit first;\n"
	  "      --walk: also walk its files, which works with quotas off)", cmd_usage },
	{ "diff", "[--parent ID] [--json] [--walk] ID",
	  "what the layer changed against --parent (else everything is added), as "
	  "`docker diff` prints it: A, C or D and the path (--walk: compare both "
	  "trees in full instead of reading the send stream)", cmd_diff },
	{ "apply", "ID < LAYER.tar", "apply an OCI layer tar (plain, gzip, zstd) to the layer",
	  cmd_apply },
	{ "export", "[--parent ID] ID > LAYER.tar",
	  "write the layer's changes (from --parent) as an OCI layer tar", cmd_export },
	{ "ls", "[--json]", "list layers, one id per line", cmd_ls },
	{ "status", "[--json]", "show the store's status", cmd_status },
	{ "version", "[--json]", "print the library version", cmd_version },
	{ "help", "", "show this help", cmd_help },
};

#define N_COMMANDS (sizeof(commands) / sizeof(commands[0]))

static void print_help(void)
{
	size_t i;

	printf("Usage: " PROG " [--home DIR] [-o KEY=VALUE]... [--read-only] "
	       "[--uidmap C:H:N]... [--gidmap C:H:N]... [--json] [-v] COMMAND [ARGS]\n\n"
	       "Container layers as btrfs subvolumes.\n\n"
	       "Options:\n"
	       "  --home DIR      the store (default: $BTRFSLAYER_HOME, "
	       "else " DEFAULT_HOME ")\n"
	       "  -o KEY=VALUE    store option, e.g. btrfs.min_space=10G\n"
	       "  --read-only     open the store read-only (-o " READ_ONLY_OPTION ")\n"
	       "  --uidmap C:H:N  user-namespace uid map entry: container id C is\n"
	       "                  host id H, for N ids (repeatable); without maps,\n"
	       "                  a home's recorded maps are used\n"
	       "  --gidmap C:H:N  the same for gids\n"
	       "  --json          JSON output, for every command that prints\n"
	       "  -v, --verbose   print the library's info and debug messages\n"
	       "  -h, --help      show this help\n\n"
	       "Commands:\n");
	for (i = 0; i < N_COMMANDS; i++)
		printf("  %s%s%s\n      %s\n", commands[i].name,
		       *commands[i].args ? " " : "", commands[i].args,
		       commands[i].summary);
	printf("\nAn id that starts with '-' goes after \"--\": "
	       PROG " rm -- -id\n"
	       "Exit status: 0 success, 1 failure (or `exists`: no such "
	       "layer), 2 usage error.\n");
}

static int cmd_help(struct ctx *c, int argc, char **argv)
{
	int rc = parse_simple(c, argc, argv, 0, 0, "");

	if (rc == EXIT_OK)
		print_help();
	return rc;
}

static const struct command *find_command(const char *name)
{
	size_t i;

	for (i = 0; i < N_COMMANDS; i++)
		if (strcmp(commands[i].name, name) == 0)
			return &commands[i];
	return NULL;
}

/* ---- main ------------------------------------------------------------------------ */

/* One decimal field of an id map, ending at `end`. */
static int map_field(const char **s, char end, uint32_t *out)
{
	const char *p = *s;
	uint64_t v = 0;

	if (*p < '0' || *p > '9')
		return -1;
	for (; *p >= '0' && *p <= '9'; p++) {
		v = v * 10 + (uint64_t)(*p - '0');
		if (v > UINT32_MAX)
			return -1;
	}
	if (*p != end)
		return -1;
	*out = (uint32_t)v;
	*s = p + (end ? 1 : 0);
	return 0;
}

/* --uidmap/--gidmap CONTAINER:HOST:SIZE, as Docker's --userns-remap maps;
 * the library checks the maps themselves (root mapped, no overlap). */
static int add_map(struct ctx *c, int kind, const char *arg)
{
	btrfslayer_idmap *m = &c->maps[kind][c->n_maps[kind]];
	const char *p = arg;

	if (map_field(&p, ':', &m->container_id) < 0 ||
	    map_field(&p, ':', &m->host_id) < 0 || map_field(&p, '\0', &m->size) < 0)
		return usage_error("invalid --%s '%s' (want CONTAINER:HOST:SIZE, "
				   "e.g. 0:100000:65536)", kind ? "gidmap" : "uidmap", arg);
	c->n_maps[kind]++;
	return EXIT_OK;
}

/* Options before the command.  "+" stops at the first operand so that the
 * command's own options are left for it.  Returns EXIT_OK, EXIT_USAGE, or
 * -1 when --help was handled. */
static int parse_global(struct ctx *c, int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "home", required_argument, NULL, OPT_HOME },
		{ "json", no_argument, NULL, OPT_JSON },
		{ "uidmap", required_argument, NULL, OPT_UIDMAP },
		{ "gidmap", required_argument, NULL, OPT_GIDMAP },
		{ "read-only", no_argument, NULL, OPT_READ_ONLY },
		{ "verbose", no_argument, NULL, 'v' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	int opt;

	opterr = 0;
	while ((opt = next_opt(NULL, argc, argv, "+:o:vh", longopts)) != -1) {
		switch (opt) {
		case OPT_HOME:
			c->home = optarg;
			break;
		case OPT_JSON:
			c->json = 1;
			break;
		case 'o':
			c->options.v[c->options.n++] = optarg;
			break;
		case OPT_READ_ONLY:
			c->options.v[c->options.n++] = READ_ONLY_OPTION;
			break;
		case OPT_UIDMAP:
		case OPT_GIDMAP:
			if (add_map(c, opt == OPT_GIDMAP, optarg) != EXIT_OK)
				return EXIT_USAGE;
			break;
		case 'v':
			c->verbose = 1;
			break;
		case 'h':
			print_help();
			return -1;
		default:
			return EXIT_USAGE;
		}
	}
	return EXIT_OK;
}

static int run(struct ctx *c, int argc, char **argv)
{
	const struct command *cmd;
	int rc = parse_global(c, argc, argv);

	if (rc != EXIT_OK)
		return rc < 0 ? EXIT_OK : rc;
	if (optind >= argc)
		return usage_error("missing command");
	cmd = find_command(argv[optind]);
	if (!cmd)
		return usage_error("unknown command '%s'", argv[optind]);
	/* The command sees its name as argv[0], as getopt expects. */
	return cmd->run(c, argc - optind, argv + optind);
}

static int close_store(struct ctx *c, int rc)
{
	btrfslayer_error *err = NULL;
	int r = btrfslayer_close(c->h, &err);	/* NULL is a no-op */

	c->h = NULL;
	if (r < 0)
		return lib_error(r, err);
	return rc;
}

/* A full disk or closed pipe must not pass for success. */
static int flush_stdout(int rc)
{
	if (fflush(stdout) != 0 || ferror(stdout)) {
		fprintf(stderr, PROG ": write error: stdout: %s\n",
			strerror(errno));
		return EXIT_FAIL;
	}
	return rc;
}

int main(int argc, char **argv)
{
	struct ctx c = { 0 };
	const char *env = getenv("BTRFSLAYER_HOME");
	int rc;

	c.home = env && *env ? env : DEFAULT_HOME;
	/* Every -o takes at least one argv slot. */
	c.options.v = calloc((size_t)argc, sizeof(*c.options.v));
	c.maps[0] = calloc((size_t)argc, sizeof(*c.maps[0]));
	c.maps[1] = calloc((size_t)argc, sizeof(*c.maps[1]));
	if (!c.options.v || !c.maps[0] || !c.maps[1]) {
		free(c.options.v);
		free(c.maps[0]);
		free(c.maps[1]);
		perror(PROG);
		return EXIT_FAIL;
	}
	btrfslayer_set_log_fn(log_to_stderr, &c.verbose);
	rc = run(&c, argc, argv);
	rc = close_store(&c, rc);
	btrfslayer_set_log_fn(NULL, NULL);
	free(c.options.v);
	free(c.maps[0]);
	free(c.maps[1]);
	return flush_stdout(rc);
}
