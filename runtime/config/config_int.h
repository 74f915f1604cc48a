/* config_int.h - what config.c (INI layer, berth.ini, containers) and
 * config_policy.c (policies.d) share; nothing outside runtime/config*.c. */
#ifndef BERTH_CONFIG_INT_H
#define BERTH_CONFIG_INT_H

#include "runtime/config/config.h"

#include <string.h>

/* Every allocation of a config is one block in this list: config_free walks
 * it once, and no parser needs its own unwinding. */
void *cfg_new(struct cfg_alloc *m, size_t size);           /* zeroed */
char *cfg_strndup(struct cfg_alloc *m, const char *s, size_t n);
char *cfg_strdup(struct cfg_alloc *m, const char *s);
/* Room for element n of arr (n elements so far); returns the (new) array. */
void *cfg_grow(struct cfg_alloc *m, void *arr, size_t n, size_t size);
#define CFG_PUSH(m, arr, n) \
	((arr) = cfg_grow((m), (arr), (n), sizeof(*(arr))), &(arr)[(n)++])

/* One file as inih delivered it (phase 1); validated in phase 2. */
struct ini_ent {
	const char *key;
	char *val;                  /* continuation lines joined with ' ' */
	int line, col;              /* line of the key; 1-based column of the value */
	size_t first_len;           /* bytes of val that are on that line */
	bool bad;                   /* already reported: unknown, repeated, empty */
};

struct ini_sect {
	const char *name;           /* as written between [ and ] */
	int line;
	struct ini_ent *ents;
	size_t n;
};

struct ini_file {
	const char *path;           /* relative, for messages */
	int idx;                    /* position in load order: errors sort by it */
	struct ini_sect *sects;
	size_t n;
};

struct cfg_ctx {
	struct config *cfg;
	struct cfg_alloc *mem;      /* the config's */
	struct cfg_alloc *tmp;      /* phase 1 data, freed after loading */
	struct config_errors *errs;
	int file_idx;               /* of the file being validated */
	const char *file;
	bool upstream_given;        /* [dns] upstream: no resolv.conf */
	int types_line;             /* [policy] types, for messages about rules */
	bool oom;
};

void cfg_error(struct cfg_ctx *c, const char *file, int file_idx, int line, int col,
	       const char *fmt, ...) __attribute__((format(printf, 6, 7)));
/* "FILE:LINE[:COL]: [SECT] KEY: <text>"; col_off < 0: no column, else the
 * byte offset inside e->val (a column is printed for policies only). */
void cfg_err_key(struct cfg_ctx *c, const struct ini_sect *s, const struct ini_ent *e,
		 long col_off, const char *fmt, ...) __attribute__((format(printf, 5, 6)));
void cfg_err_sect(struct cfg_ctx *c, const struct ini_sect *s, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

struct ini_ent *cfg_get(const struct ini_sect *s, const char *key);
int cfg_edit_distance(const char *a, const char *b);
const char *cfg_closest(const char *word, const char *const *cands);

/* Split "kind name" of a section header; name may come back "". */
void cfg_sect_kind(struct cfg_alloc *m, const char *sect, const char **kind, const char **name);
/* Split s's header and find its kind in kinds (NULL-terminated). An unknown
 * kind is reported, "unknown section [X] (did you mean [Y NAME]?)" or
 * "(expected EXPECTED)", and -1 returned; named lists the kinds that take a
 * NAME, for the hint. */
int cfg_sect_lookup(struct cfg_ctx *c, const struct ini_sect *s, const char *const *kinds,
		    const char *const *named, const char *expected, const char **kind,
		    const char **name);
bool cfg_valid_rule_name(const char *s);
bool cfg_label_key_valid(const char *k, const char **why);
bool cfg_label_value_valid(const char *v, const char **why);

/* A comma-separated list: trimmed items ("" for an empty one) with their
 * byte offsets in the value. */
struct cfg_item {
	const char *s;
	size_t off;
};
size_t cfg_split_list(struct cfg_alloc *m, const char *v, struct cfg_item **out);
const char *cfg_skip_ws(const char *s);
bool cfg_parse_bool(const char *s, bool *out);
bool cfg_parse_uint(const char *s, unsigned long long max, unsigned long long *out);
/* A port, 1..65535: the whole of the n bytes at v (health = tcp:PORT, a
 * service's ports and publish). */
bool cfg_port_num(const char *v, size_t n, uint16_t *port);
bool cfg_dns_label(const char *s);          /* a-z 0-9 '-', at most 63 */
bool cfg_domain(const char *s);             /* labels joined by '.' */

/*
 * Each section's keys are one table (config_sections.c, config_policy.c),
 * so a key is spelled once: the unknown-key check and its "did you mean",
 * the repeat check, the parsing, the defaults and `berth config keys` all
 * read it. Keys are parsed in the table's order (a parser may rely on the
 * rows above it). Types up to CFG_ENUM are parsed by config.c and stored at
 * obj + off; the others have a parser (parse for the value, item for each
 * element of a list). obj is what the section's parsers fill (see each table).
 */
enum cfg_type {
	CFG_PATH,                   /* const char *: an absolute path */
	CFG_BOOL,                   /* bool: yes|no|true|false|on|off|1|0 */
	CFG_UINT,                   /* unsigned: min..max, in unit */
	CFG_SIZE,                   /* uint64_t: bytes with K, M, G or T; at least min */
	CFG_ENUM,                   /* an enum (int-sized): one of words */
	CFG_ADDRESS,
	CFG_PREFIX,
	CFG_LIST,                   /* comma-separated */
	CFG_TEXT,                   /* names, commands, selectors, ... */
};

struct cfg_word {
	const char *word;           /* NULL ends the list */
	int value;
};

enum {
	CFG_REPEAT = 1,             /* may be given again; every entry is parsed */
	CFG_COMPUTED = 2,           /* absent: parse runs with e NULL to make the default */
	CFG_BAD_IS_GIVEN = 4,       /* required, but an invalid value is not also "missing" */
};

typedef void cfg_parse_fn(struct cfg_ctx *c, const struct ini_sect *s,
			  const struct ini_ent *e, void *obj);
typedef void cfg_item_fn(struct cfg_ctx *c, const struct ini_sect *s,
			 const struct ini_ent *e, const struct cfg_item *it, void *obj);

struct cfg_key {
	const char *name;
	enum cfg_type type;
	unsigned flags;
	const char *syntax;         /* how a value is written, where the type does not say */
	unsigned long long min, max;    /* CFG_UINT; CFG_SIZE: min */
	const char *unit;           /* CFG_UINT: "seconds" */
	const struct cfg_word *words;   /* CFG_ENUM, in the order messages list them */
	/* The default as written; an absent key is parsed from it. NULL: none,
	 * or computed (CFG_COMPUTED, or by the section; the help says which). */
	const char *def;
	const char *missing;        /* required: the hint in "KEY: missing (...)" */
	const char *help;           /* one line, for `berth config keys` */
	size_t off;                 /* types up to CFG_ENUM: where the value goes */
	size_t line;                /* nonzero: the int at obj + line gets the first entry's line */
	cfg_parse_fn *parse;
	cfg_item_fn *item;
};

struct cfg_section {
	const char *file;           /* where it goes, for docs: "berth.ini" */
	const char *title;          /* as written, for docs: "network NAME" */
	const struct cfg_key *keys;
	size_t n;
};

/* Report unknown keys (with "did you mean"), repeats of keys without
 * CFG_REPEAT, and empty values; mark those entries bad. */
void cfg_check_keys(struct cfg_ctx *c, const struct ini_sect *s, const struct cfg_section *sect);
/* Every key of the table in order: parsed into obj if given, else "missing"
 * when required, else its default. */
void cfg_parse_keys(struct cfg_ctx *c, const struct ini_sect *s, const struct cfg_section *sect,
		    void *obj);

const char *cfg_file_stem(struct cfg_alloc *m, const char *path);
/* 0 berth.ini, 1 containers.d/, 2 policies.d/, 3 services.d/, 4 anything
 * else (not a config file): the first key of the load order. */
int cfg_file_rank(const char *path);

/* config_sections.c */
extern const struct cfg_section cfg_daemon_section, cfg_network_section, cfg_dns_section,
	cfg_remote_section, cfg_images_section, cfg_container_section;
void cfg_prefix_hosts(const struct ip_prefix *p, struct ip_range *r);
void cfg_read_resolv_conf(struct cfg_ctx *c, const char *path);
int cfg_parse_proto(const char *s);         /* IPPROTO_*, or -1 */
void cfg_berth_ini(struct cfg_ctx *c, const struct ini_file *f);
void cfg_network(struct cfg_ctx *c, const struct ini_sect *s, const char *name);
void cfg_container_file(struct cfg_ctx *c, const struct ini_file *f);

/* A duration: a whole number with a unit ms, s, m or h (a bare number is
 * seconds), into *ms when it lies in [min, max] ms. */
bool cfg_parse_duration(const char *v, uint64_t min, uint64_t max, uint32_t *ms);

/* config_policy.c */
extern const struct cfg_section cfg_policy_section, cfg_rule_section;
void cfg_policy_file(struct cfg_ctx *c, const struct ini_file *f, const char *name);

/* config_service.c: [service NAME] of berth.ini, services.d/NAME.ini; each
 * adds one cfg_service at c->cfg->services[n_services] (room made by
 * load_srcs). cfg_service_checks: what needs the whole config (networks,
 * containers, other services), then the sort by name. */
extern const struct cfg_section cfg_service_section;
void cfg_service_sect(struct cfg_ctx *c, const struct ini_sect *s, const char *name);
void cfg_service_file(struct cfg_ctx *c, const struct ini_file *f);
void cfg_service_checks(struct cfg_ctx *c, const struct config_file *files, size_t nf);

#endif
