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

/* Report unknown keys (with "did you mean"), repeats of keys not in
 * repeatable, and empty values; mark those entries bad. keys ends with NULL. */
void cfg_check_keys(struct cfg_ctx *c, const struct ini_sect *s, const char *const *keys,
		    const char *const *repeatable);
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
bool cfg_dns_label(const char *s);          /* a-z 0-9 '-', at most 63 */
bool cfg_domain(const char *s);             /* labels joined by '.' */
void cfg_bool_key(struct cfg_ctx *c, const struct ini_sect *s, const char *key, bool *out);
void cfg_uint_key(struct cfg_ctx *c, const struct ini_sect *s, const char *key,
		  unsigned min, unsigned max, const char *unit, unsigned *out);
void cfg_path_key(struct cfg_ctx *c, const struct ini_sect *s, const char *key,
		  const char **out);
const char *cfg_file_stem(struct cfg_alloc *m, const char *path);
int cfg_read_file(const char *dir, const char *rel, struct cfg_alloc *m,
		  struct config_file **files, size_t *n, struct config_errors *errs);

/* config_sections.c */
extern const char *const cfg_all_keys[];   /* every key of every section */
void cfg_prefix_hosts(const struct ip_prefix *p, struct ip_range *r);
void cfg_read_resolv_conf(struct cfg_ctx *c, const char *path);
int cfg_parse_proto(const char *s);         /* IPPROTO_*, or -1 */
void cfg_berth_ini(struct cfg_ctx *c, const struct ini_file *f);
void cfg_network(struct cfg_ctx *c, const struct ini_sect *s, const char *name);
void cfg_container_file(struct cfg_ctx *c, const struct ini_file *f);

/* config_policy.c */
void cfg_policy_file(struct cfg_ctx *c, const struct ini_file *f, const char *name);

#endif
