/* config.c - load /etc/berth with inih and validate every value (DESIGN §3):
 * the INI layer, berth.ini, containers.d and the checks across files. */
#include "runtime/config/config_int.h"

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ini.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <strings.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

/* ---- allocation: an arena per config -------------------------------------
 *
 * A config is thousands of small pieces (names, labels, argv words) that
 * live and die together, and the daemon keeps one for as long as it runs:
 * carved from 4 KiB chunks, a piece costs its size rounded to 16 bytes
 * instead of a malloc header and a list link each. */

#define CFG_CHUNK 4096
/* Every piece is aligned for the widest type a config holds (uint64_t,
 * pointers; nothing needs max_align_t's 16): a size rounded up to 8. */
#define CFG_ALIGN 8
#define CFG_ROUND(size) (((size) + CFG_ALIGN - 1) & ~(size_t)(CFG_ALIGN - 1))

struct cfg_blk {
	struct cfg_blk *next;
	size_t used, size;          /* bytes of data[] */
	max_align_t data[];
};

struct cfg_alloc {
	struct cfg_blk *head;       /* the chunk being carved */
	struct cfg_blk *big;        /* pieces larger than a chunk, one block each */
	size_t used;                /* bytes handed out, rounded: what an exact arena needs */
	size_t chunk;               /* the size of a new chunk: CFG_CHUNK, or exact */
	unsigned refs;              /* owners beyond the first (a cached file's arena) */
};

struct cfg_alloc *cfg_alloc_new(void)
{
	struct cfg_alloc *m = calloc(1, sizeof(struct cfg_alloc));

	if (m)
		m->chunk = CFG_CHUNK;
	return m;
}

/* An arena of one block of size bytes, for a file parsed a second time with
 * what the first parse used: what the daemon keeps of a container is then
 * its size, not a 4 KiB chunk (issue 19: at most 1 KiB per container). */
static struct cfg_alloc *cfg_alloc_exact(size_t size)
{
	struct cfg_alloc *m = calloc(1, sizeof(struct cfg_alloc));

	if (m)
		m->chunk = size ? size : 1;
	return m;
}

static void blk_list_free(struct cfg_blk *b)
{
	while (b) {
		struct cfg_blk *next = b->next;

		free(b);
		b = next;
	}
}

/* Empty m for reuse, keeping its newest chunk. */
static void cfg_alloc_reset(struct cfg_alloc *m)
{
	struct cfg_blk *keep = m->head;

	if (keep) {
		blk_list_free(keep->next);
		keep->next = NULL;
		keep->used = 0;
	}
	blk_list_free(m->big);
	m->big = NULL;
	m->used = 0;
}

static struct cfg_alloc *cfg_alloc_ref(struct cfg_alloc *m)
{
	m->refs++;
	return m;
}

void cfg_alloc_free(struct cfg_alloc *m)
{
	if (!m)
		return;
	if (m->refs) {
		m->refs--;
		return;
	}
	blk_list_free(m->head);
	blk_list_free(m->big);
	free(m);
}

/* Config files are bounded (CONFIG_FILE_MAX, CONFIG_FILES_MAX), so what is
 * allocated here is too; running out of memory for it is not recoverable in
 * any useful way, and checking every small string would triple the parsers. */
void *cfg_new(struct cfg_alloc *m, size_t size)
{
	size_t need = CFG_ROUND(size);
	struct cfg_blk *b = m->head;
	void *p;

	m->used += need;
	if (m->chunk == CFG_CHUNK && need > CFG_CHUNK / 4) {
		b = calloc(1, sizeof(*b) + need);
		if (!b)
			goto oom;
		b->next = m->big;
		m->big = b;
		return b->data;
	}
	if (!b || b->size - b->used < need) {
		/* an exact arena that runs short (it never should) goes on in chunks */
		size_t size_new = m->head && m->chunk != CFG_CHUNK ? CFG_CHUNK : m->chunk;

		if (size_new < need)
			size_new = need;
		b = malloc(sizeof(*b) + size_new);
		if (!b)
			goto oom;
		b->next = m->head;
		b->used = 0;
		b->size = size_new;
		m->head = b;
	}
	p = (char *)b->data + b->used;
	b->used += need;
	return memset(p, 0, size);
oom:
	fputs("berth: out of memory while loading the configuration\n", stderr);
	abort();
}

char *cfg_strndup(struct cfg_alloc *m, const char *s, size_t n)
{
	char *d = cfg_new(m, n + 1);

	memcpy(d, s, n);
	return d;
}

char *cfg_strdup(struct cfg_alloc *m, const char *s)
{
	return cfg_strndup(m, s, strlen(s));
}

/* Capacity is implicit: n rounded up to a power of two, so that the common
 * list of one (a port, a network) takes one element's room. */
void *cfg_grow(struct cfg_alloc *m, void *arr, size_t n, size_t size)
{
	void *a;

	if (arr && (n & (n - 1)))
		return arr;
	a = cfg_new(m, size * (n ? 2 * n : 1));
	if (arr)
		memcpy(a, arr, size * n);
	return a;
}

/* ---- errors ------------------------------------------------------------- */

static void errs_add(struct config_errors *errs, const char *file, int file_idx, int line,
		     int col, char *msg)
{
	struct config_error *v = array_push(errs);

	if (!v) {
		free(msg);
		return;
	}
	v->file = strdup(file ? file : "");
	v->line = line;
	v->col = col;
	v->msg = msg;
	v->file_idx = file_idx;
	if (!v->file || !msg) {
		free(v->file);
		free(msg);
		errs->n--;          /* the slot array_push added */
	}
}

void config_errors_add(struct config_errors *errs, const char *file, int line, char *msg)
{
	errs_add(errs, file, 0, line, 0, msg);
}

static void verror(struct cfg_ctx *c, const char *file, int file_idx, int line, int col,
		   const char *prefix, const char *fmt, va_list ap)
{
	char head[256], body[768], *msg;

	if (!file || !*file)
		snprintf(head, sizeof(head), "%s", prefix);
	else if (line <= 0)
		snprintf(head, sizeof(head), "%s: %s", file, prefix);
	else if (col > 0)
		snprintf(head, sizeof(head), "%s:%d:%d: %s", file, line, col, prefix);
	else
		snprintf(head, sizeof(head), "%s:%d: %s", file, line, prefix);
	vsnprintf(body, sizeof(body), fmt, ap);
	if (asprintf(&msg, "%s%s", head, body) < 0) {
		c->oom = true;
		return;
	}
	errs_add(c->errs, file, file_idx, line, col, msg);
}

void cfg_error(struct cfg_ctx *c, const char *file, int file_idx, int line, int col,
	       const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	verror(c, file, file_idx, line, col, "", fmt, ap);
	va_end(ap);
}

void cfg_err_key(struct cfg_ctx *c, const struct ini_sect *s, const struct ini_ent *e,
		 long col_off, const char *fmt, ...)
{
	char prefix[160];
	int col = 0;
	va_list ap;

	if (col_off >= 0)
		col = e->col + ((size_t)col_off < e->first_len ? (int)col_off : 0);
	snprintf(prefix, sizeof(prefix), "[%s] %s: ", s->name, e->key);
	va_start(ap, fmt);
	verror(c, c->file, c->file_idx, e->line, col, prefix, fmt, ap);
	va_end(ap);
}

void cfg_err_sect(struct cfg_ctx *c, const struct ini_sect *s, const char *fmt, ...)
{
	char prefix[160];
	va_list ap;

	snprintf(prefix, sizeof(prefix), "[%s] ", s->name);
	va_start(ap, fmt);
	verror(c, c->file, c->file_idx, s->line, 0, prefix, fmt, ap);
	va_end(ap);
}

void config_errors_free(struct config_errors *errs)
{
	for (size_t i = 0; i < errs->n; i++) {
		free(errs->v[i].file);
		free(errs->v[i].msg);
	}
	free(errs->v);
	memset(errs, 0, sizeof(*errs));
}

/* Stable: insertion sort by (file, line, col); lists are short. */
static void errs_sort(struct config_errors *errs)
{
	for (size_t i = 1; i < errs->n; i++) {
		struct config_error x = errs->v[i];
		size_t j = i;

		while (j > 0) {
			const struct config_error *p = &errs->v[j - 1];

			if (p->file_idx < x.file_idx ||
			    (p->file_idx == x.file_idx && (p->line < x.line ||
			     (p->line == x.line && p->col <= x.col))))
				break;
			errs->v[j] = errs->v[j - 1];
			j--;
		}
		errs->v[j] = x;
	}
}

/* ---- did you mean ------------------------------------------------------- */

int cfg_edit_distance(const char *a, const char *b)
{
	/* optimal string alignment: insert, delete, substitute, swap neighbours */
	size_t la = strlen(a), lb = strlen(b);
	int d[3][64], *pp, *p, *r;

	if (la >= 63 || lb >= 63)
		return 99;
	for (size_t j = 0; j <= lb; j++)
		d[0][j] = (int)j;
	for (size_t i = 1; i <= la; i++) {
		pp = d[(i + 1) % 3];    /* row i - 2 */
		p = d[(i + 2) % 3];     /* row i - 1 */
		r = d[i % 3];           /* row i */
		r[0] = (int)i;
		for (size_t j = 1; j <= lb; j++) {
			int cost = tolower((unsigned char)a[i - 1]) != tolower((unsigned char)b[j - 1]);
			int v = p[j - 1] + cost;

			if (p[j] + 1 < v)
				v = p[j] + 1;
			if (r[j - 1] + 1 < v)
				v = r[j - 1] + 1;
			if (i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] &&
			    pp[j - 2] + 1 < v)
				v = pp[j - 2] + 1;
			r[j] = v;
		}
	}
	return d[la % 3][lb];
}

/* The candidate within edit distance 2 (1 for words of 3 letters or less). */
const char *cfg_closest(const char *word, const char *const *cands)
{
	const char *best = NULL;
	int bd = 99, max = strlen(word) <= 3 ? 1 : 2;

	for (size_t i = 0; cands[i]; i++) {
		int d = cfg_edit_distance(word, cands[i]);

		if (d < bd) {
			bd = d;
			best = cands[i];
		}
	}
	return bd <= max ? best : NULL;
}

/* ---- phase 1: inih, with a reader that counts lines --------------------- */

/*
 * Debian's libinih is built with INI_HANDLER_LINENO=0, so the handler gets no
 * line number. inih asks the reader for a line and runs the handler for it
 * before it asks again, so the reader's count is the handler's line. The
 * reader also sees what inih skips silently or reports only once (its return
 * value is the first bad line): section headers, lines without '=', lines
 * longer than its buffer (which it would split in two). It reports those
 * itself, so that every bad line is listed.
 */
struct rd {
	const char *p, *end;
	int line;
	char raw[CONFIG_LINE_MAX + 8];      /* the current line as written */
	bool pending;               /* a key line: the handler must run for it */
	bool cont;                  /* a continuation line */
	bool have_prev;             /* a key was seen in this section (inih's prev_name) */
	struct cfg_ctx *c;
	struct ini_file *f;
};

static void rd_error(struct rd *r, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void rd_error(struct rd *r, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	verror(r->c, r->f->path, r->f->idx, r->line, 0, "", fmt, ap);
	va_end(ap);
}

const char *cfg_skip_ws(const char *s)
{
	while (*s == ' ' || *s == '\t')
		s++;
	return s;
}

static char *rd_line(char *str, int num, void *stream)
{
	struct rd *r = stream;
	const char *p = r->p, *nl, *s;
	size_t len;

	if (r->pending)
		rd_error(r, "expected KEY = VALUE, a [section] or a ; comment");
	r->pending = r->cont = false;
	if (p >= r->end)
		return NULL;
	nl = memchr(p, '\n', (size_t)(r->end - p));
	len = nl ? (size_t)(nl - p) : (size_t)(r->end - p);
	r->p = nl ? nl + 1 : r->end;
	r->line++;
	if (len && p[len - 1] == '\r')
		len--;
	if (r->line == 1 && len >= 3 && !memcmp(p, "\xef\xbb\xbf", 3)) {
		p += 3;                     /* UTF-8 BOM */
		len -= 3;
	}
	if (memchr(p, '\0', len)) {
		rd_error(r, "the line contains a NUL byte");
		len = 0;
	} else if (len > CONFIG_LINE_MAX || len + 3 > (size_t)num) {
		rd_error(r, "the line is longer than %d characters "
			 "(continue a long value on an indented next line)", CONFIG_LINE_MAX);
		len = 0;
	}
	memcpy(r->raw, p, len);
	r->raw[len] = '\0';
	memcpy(str, r->raw, len);
	str[len] = '\n';
	str[len + 1] = '\0';

	s = cfg_skip_ws(r->raw);
	if (!*s || *s == ';' || *s == '#')
		return str;
	if (r->have_prev && s > r->raw) {
		r->cont = r->pending = true;
		return str;
	}
	if (*s == '[') {
		const char *q = s + 1;
		bool was_space = false;

		/* as inih: ']' or an inline comment (';' after a space) ends it */
		while (*q && *q != ']' && !(was_space && *q == ';')) {
			was_space = isspace((unsigned char)*q);
			q++;
		}
		if (*q != ']') {
			rd_error(r, "expected ']' at the end of the section header");
			return str;
		}
		if (q - (s + 1) > 49) {
			rd_error(r, "the section name is longer than 49 characters");
			str[0] = ';';       /* keep inih's section as it was */
			return str;
		}
		struct ini_sect *sec = CFG_PUSH(r->c->tmp, r->f->sects, r->f->n);

		sec->name = cfg_strndup(r->c->tmp, s + 1, (size_t)(q - (s + 1)));
		sec->line = r->line;
		r->have_prev = false;
		return str;
	}
	r->pending = true;
	return str;
}

/* 1-based column of the value after the first '=' or ':' of the raw line. */
static int value_col(const char *raw, const char *from)
{
	const char *q = from + strcspn(from, "=:");

	if (*q)
		q = cfg_skip_ws(q + 1);
	return (int)(q - raw) + 1;
}

static const struct cfg_section *const sections[] = {
	&cfg_daemon_section, &cfg_network_section, &cfg_dns_section, &cfg_remote_section,
	&cfg_images_section, &cfg_container_section, &cfg_policy_section, &cfg_rule_section,
	&cfg_service_section,
};

static const struct cfg_key *find_key(const struct cfg_section *sect, const char *k, size_t n)
{
	for (size_t i = 0; i < sect->n; i++)
		if (strlen(sect->keys[i].name) == n && !strncmp(sect->keys[i].name, k, n))
			return &sect->keys[i];
	return NULL;
}

/* A key of any section (an indented line with one starts a new key). */
static bool is_config_key(const char *k, size_t n)
{
	for (size_t i = 0; i < ARRAY_SIZE(sections); i++)
		if (find_key(sections[i], k, n))
			return true;
	return false;
}

static int rd_pair(void *user, const char *section, const char *name, const char *value)
{
	struct rd *r = user;
	struct cfg_alloc *m = r->c->tmp;
	struct ini_sect *sec;
	struct ini_ent *e;

	r->pending = false;
	if (!r->f->n) {
		rd_error(r, "'%s' is outside any section (start the file with a [section])",
			 name);
		r->have_prev = true;
		return 1;
	}
	(void)section;              /* inih's and ours agree: the last header */
	sec = &r->f->sects[r->f->n - 1];
	if (r->cont && sec->n) {
		/* inih v55 keeps inline comments on continuation lines */
		char *v = cfg_strdup(m, value);
		const char *k = v, *q;
		size_t kn;

		for (char *c = v; *c; c++)
			if (*c == ';' && c > v && isspace((unsigned char)c[-1])) {
				*c = '\0';
				break;
			}
		for (size_t n = strlen(v); n && isspace((unsigned char)v[n - 1]); n--)
			v[n - 1] = '\0';
		kn = strspn(k, "abcdefghijklmnopqrstuvwxyz_0123456789");
		q = cfg_skip_ws(k + kn);
		if (kn && *q == '=' && is_config_key(k, kn)) {
			/* an indented KEY = VALUE: a new key, not a continuation */
			e = CFG_PUSH(m, sec->ents, sec->n);
			e->key = cfg_strndup(m, k, kn);
			e->val = cfg_strdup(m, cfg_skip_ws(q + 1));
			e->line = r->line;
			e->col = value_col(r->raw, cfg_skip_ws(r->raw));
			e->first_len = strlen(e->val);
			return 1;
		}
		if (*v) {
			e = &sec->ents[sec->n - 1];
			char *j = cfg_new(m, strlen(e->val) + strlen(v) + 2);

			sprintf(j, "%s%s%s", e->val, *e->val ? " " : "", v);
			e->val = j;
		}
		return 1;
	}
	e = CFG_PUSH(m, sec->ents, sec->n);
	e->key = cfg_strdup(m, name);
	e->val = cfg_strdup(m, value);
	e->line = r->line;
	e->col = value_col(r->raw, cfg_skip_ws(r->raw));
	e->first_len = strlen(value);
	r->have_prev = true;
	return 1;
}

static void ini_read(struct cfg_ctx *c, struct ini_file *f, const char *text, size_t len)
{
	struct rd r = { .p = text, .end = text + len, .c = c, .f = f };
	size_t before = c->errs->n;
	int ret;

	ret = ini_parse_stream(rd_line, &r, rd_pair, &r);
	if (ret == -2) {
		c->oom = true;
	} else if (ret > 0) {
		bool seen = false;

		for (size_t i = before; i < c->errs->n; i++)
			seen |= c->errs->v[i].file_idx == f->idx && c->errs->v[i].line == ret;
		if (!seen)
			cfg_error(c, f->path, f->idx, ret, 0, "syntax error");
	}
}

/* ---- phase 2 helpers ---------------------------------------------------- */

void cfg_check_keys(struct cfg_ctx *c, const struct ini_sect *s, const struct cfg_section *sect)
{
	const char **names = cfg_new(c->tmp, (sect->n + 1) * sizeof(*names));

	for (size_t k = 0; k < sect->n; k++)
		names[k] = sect->keys[k].name;
	for (size_t i = 0; i < s->n; i++) {
		struct ini_ent *e = &s->ents[i];
		const struct cfg_key *k = find_key(sect, e->key, strlen(e->key));

		if (!k) {
			const char *near = cfg_closest(e->key, names);

			e->bad = true;
			if (near)
				cfg_error(c, c->file, c->file_idx, e->line, 0,
					  "[%s] unknown key '%s' (did you mean '%s'?)",
					  s->name, e->key, near);
			else
				cfg_error(c, c->file, c->file_idx, e->line, 0,
					  "[%s] unknown key '%s'", s->name, e->key);
			continue;
		}
		if (!*e->val) {
			e->bad = true;
			cfg_err_key(c, s, e, -1, "empty value");
			continue;
		}
		if (k->flags & CFG_REPEAT)
			continue;
		for (size_t j = 0; j < i; j++)
			if (!strcmp(s->ents[j].key, e->key) && *s->ents[j].val) {
				e->bad = true;
				cfg_err_key(c, s, e, -1, "given twice (first on line %d); "
					    "only from, to and env may repeat", s->ents[j].line);
				break;
			}
	}
}

struct ini_ent *cfg_get(const struct ini_sect *s, const char *key)
{
	for (size_t i = 0; i < s->n; i++)
		if (!s->ents[i].bad && !strcmp(s->ents[i].key, key))
			return &s->ents[i];
	return NULL;
}

void cfg_sect_kind(struct cfg_alloc *m, const char *sect, const char **kind, const char **name)
{
	const char *s = cfg_skip_ws(sect), *e = s;
	size_t n;

	while (*e && !isspace((unsigned char)*e))
		e++;
	*kind = cfg_strndup(m, s, (size_t)(e - s));
	e = cfg_skip_ws(e);
	n = strlen(e);
	while (n && isspace((unsigned char)e[n - 1]))
		n--;
	*name = cfg_strndup(m, e, n);
}

int cfg_sect_lookup(struct cfg_ctx *c, const struct ini_sect *s, const char *const *kinds,
		    const char *const *named, const char *expected, const char **kind,
		    const char **name)
{
	const char *near;
	bool takes_name = false;

	cfg_sect_kind(c->tmp, s->name, kind, name);
	for (int k = 0; kinds[k]; k++)
		if (!strcmp(kinds[k], *kind))
			return k;
	near = cfg_closest(*kind, kinds);
	for (int k = 0; near && named[k]; k++)
		takes_name |= !strcmp(named[k], near);
	if (near)
		cfg_error(c, c->file, c->file_idx, s->line, 0, "unknown section [%s] (did you mean "
			  "[%s%s%s]?)", s->name, near, **name ? " " : "",
			  **name ? *name : takes_name ? " NAME" : "");
	else
		cfg_error(c, c->file, c->file_idx, s->line, 0, "unknown section [%s] (expected %s)",
			  s->name, expected);
	return -1;
}

size_t cfg_split_list(struct cfg_alloc *m, const char *v, struct cfg_item **out)
{
	struct cfg_item *items = NULL;
	size_t n = 0;
	const char *p = v;

	for (;;) {
		const char *e = p + strcspn(p, ","), *b = cfg_skip_ws(p), *t = e;

		while (t > b && isspace((unsigned char)t[-1]))
			t--;
		struct cfg_item *it = CFG_PUSH(m, items, n);

		it->s = cfg_strndup(m, b, (size_t)(t - b));
		it->off = (size_t)(b - v);
		if (!*e)
			break;
		p = e + 1;
	}
	*out = items;
	return n;
}

bool cfg_parse_bool(const char *s, bool *out)
{
	static const char *const yes[] = { "yes", "true", "on", "1" }, *const no[] = { "no", "false", "off", "0" };

	for (size_t i = 0; i < ARRAY_SIZE(yes); i++) {
		if (!strcasecmp(s, yes[i]))
			return *out = true, true;
		if (!strcasecmp(s, no[i]))
			return *out = false, true;
	}
	return false;
}

bool cfg_parse_uint(const char *s, unsigned long long max, unsigned long long *out)
{
	unsigned long long v = 0;

	if (!*s)
		return false;
	for (; *s; s++) {
		if (*s < '0' || *s > '9')
			return false;
		v = v * 10 + (unsigned)(*s - '0');
		if (v > max)
			return false;
	}
	*out = v;
	return true;
}

bool cfg_dns_label(const char *s)
{
	size_t n = strlen(s);

	if (!n || n > CONFIG_NAME_MAX || !isalnum((unsigned char)s[0]) ||
	    !isalnum((unsigned char)s[n - 1]))
		return false;
	for (size_t i = 0; i < n; i++)
		if (!isalnum((unsigned char)s[i]) && s[i] != '-')
			return false;
	return true;
}

bool cfg_domain(const char *s)
{
	size_t n = strlen(s);
	char label[64];

	if (!n || n > 253)
		return false;
	while (*s) {
		size_t l = strcspn(s, ".");

		if (l == 0 || l > 63)
			return false;
		memcpy(label, s, l);
		label[l] = '\0';
		if (!cfg_dns_label(label))
			return false;
		s += l;
		if (*s == '.' && !*++s)
			return false;
	}
	return true;
}

/* ---- the key tables: parsing and docs ---------------------------------- */

/* BYTES[K|M|G|T] (powers of 1024), at most 2^50 bytes. */
static bool parse_size(const char *v, unsigned long long *out)
{
	size_t n = strspn(v, "0123456789");
	unsigned long long x, mul;
	char num[24];

	if (!n || n >= sizeof(num) || strlen(v + n) > 1)
		return false;
	switch (toupper((unsigned char)v[n])) {
	case '\0': mul = 1; break;
	case 'K': mul = 1ULL << 10; break;
	case 'M': mul = 1ULL << 20; break;
	case 'G': mul = 1ULL << 30; break;
	case 'T': mul = 1ULL << 40; break;
	default: return false;
	}
	memcpy(num, v, n);
	num[n] = '\0';
	if (!cfg_parse_uint(num, (1ULL << 50) / mul, &x))
		return false;
	*out = x * mul;
	return true;
}

/* With the largest suffix that divides it: 16K, 1M. */
static const char *format_size(unsigned long long v, char *buf, size_t size)
{
	const char *suffix = "KMGT";
	int i = -1;

	while (i < 3 && v && !(v % 1024)) {
		v /= 1024;
		i++;
	}
	snprintf(buf, size, "%llu%.*s", v, i >= 0, i >= 0 ? suffix + i : "");
	return buf;
}

/* "a, b or c" (last " or ") or "a|b|c" (last "|"). */
static const char *join_words(const struct cfg_word *w, const char *sep, const char *last,
			      char *buf, size_t size)
{
	size_t n = 0;

	buf[0] = '\0';
	for (size_t i = 0; w[i].word && n < size; i++)
		n += (size_t)snprintf(buf + n, size - n, "%s%s",
				      !i ? "" : w[i + 1].word ? sep : last, w[i].word);
	return buf;
}

static void parse_value(struct cfg_ctx *c, const struct ini_sect *s, const struct ini_ent *e,
			const struct cfg_key *k, void *obj)
{
	char *at = (char *)obj + k->off, b1[64], b2[16];
	const struct cfg_word *w;
	unsigned long long v;

	switch (k->type) {
	case CFG_PATH:
		if (e->val[0] != '/')
			cfg_err_key(c, s, e, -1, "'%s': expected an absolute path", e->val);
		else
			*(const char **)at = cfg_strdup(c->mem, e->val);
		break;
	case CFG_BOOL:
		if (!cfg_parse_bool(e->val, (bool *)at))
			cfg_err_key(c, s, e, -1, "'%s': expected yes or no", e->val);
		break;
	case CFG_UINT:
		if (!cfg_parse_uint(e->val, k->max, &v) || v < k->min)
			cfg_err_key(c, s, e, -1, "'%s': expected a number of %s from %llu to %llu",
				    e->val, k->unit, k->min, k->max);
		else
			*(unsigned *)at = (unsigned)v;
		break;
	case CFG_SIZE:
		/* the example in the message: 64 times the least */
		if (!parse_size(e->val, &v) || v < k->min)
			cfg_err_key(c, s, e, -1, "'%s': expected bytes with an optional K, M or G "
				    "suffix, at least %s (e.g. %s)", e->val,
				    format_size(k->min, b1, sizeof(b1)),
				    format_size(64 * k->min, b2, sizeof(b2)));
		else
			*(uint64_t *)at = v;
		break;
	case CFG_ENUM:
		for (w = k->words; w->word && strcmp(w->word, e->val); w++)
			;
		if (w->word)
			*(int *)at = w->value;
		else
			cfg_err_key(c, s, e, -1, "'%s': expected %s", e->val,
				    join_words(k->words, ", ", " or ", b1, sizeof(b1)));
		break;
	case CFG_LIST: {
		struct cfg_item *it;
		size_t n = cfg_split_list(c->tmp, e->val, &it);

		for (size_t i = 0; i < n; i++)
			k->item(c, s, e, &it[i], obj);
		break;
	}
	default:
		k->parse(c, s, e, obj);
	}
}

/* The first entry of key, a bad one too (NULL: not given at all). */
static const struct ini_ent *first_entry(const struct ini_sect *s, const char *key)
{
	for (size_t i = 0; i < s->n; i++)
		if (!strcmp(s->ents[i].key, key))
			return &s->ents[i];
	return NULL;
}

void cfg_parse_keys(struct cfg_ctx *c, const struct ini_sect *s, const struct cfg_section *sect,
		    void *obj)
{
	for (const struct cfg_key *k = sect->keys; k < sect->keys + sect->n; k++) {
		const struct ini_ent *e = cfg_get(s, k->name), *first = first_entry(s, k->name);

		if (k->line && first)
			*(int *)((char *)obj + k->line) = first->line;
		if (!e && k->missing && !((k->flags & CFG_BAD_IS_GIVEN) && first))
			cfg_err_sect(c, s, "%s: missing (%s)", k->name, k->missing);
		if (!e && k->def) {
			struct ini_ent d = { .key = k->name, .val = (char *)k->def,
					     .line = s->line, .first_len = strlen(k->def) };

			parse_value(c, s, &d, k, obj);
		} else if (!e && (k->flags & CFG_COMPUTED)) {
			k->parse(c, s, NULL, obj);
		} else if (e && !(k->flags & CFG_REPEAT)) {
			parse_value(c, s, e, k, obj);
		}
		for (size_t i = 0; e && (k->flags & CFG_REPEAT) && i < s->n; i++)
			if (!s->ents[i].bad && !strcmp(s->ents[i].key, k->name))
				parse_value(c, s, &s->ents[i], k, obj);
	}
}

/* Every key absent: what a section means when it is not in the file. */
static void defaults(struct cfg_ctx *c, const struct cfg_section *sect, void *obj)
{
	struct ini_sect none = { .name = sect->title };

	cfg_parse_keys(c, &none, sect, obj);
}

bool config_doc(size_t i, struct cfg_key_doc *out, char *buf, size_t size)
{
	static const char *const types[] = { "path", "bool", "uint", "size", "enum", "address",
		"prefix", "list", "text" };
	const struct cfg_section *sect = NULL;
	const struct cfg_key *k;
	char least[16];

	_Static_assert(ARRAY_SIZE(types) == CFG_TEXT + 1, "a name for every type");
	for (size_t j = 0; j < ARRAY_SIZE(sections) && !sect; j++) {
		if (i < sections[j]->n)
			sect = sections[j];
		else
			i -= sections[j]->n;
	}
	if (!sect)
		return false;
	k = &sect->keys[i];
	*out = (struct cfg_key_doc){ .file = sect->file, .section = sect->title, .key = k->name,
		.type = types[k->type], .value = buf, .def = k->def, .help = k->help,
		.required = k->missing != NULL, .repeat = k->flags & CFG_REPEAT };
	switch (k->type) {
	case CFG_PATH:
		snprintf(buf, size, "an absolute path");
		break;
	case CFG_BOOL:
		snprintf(buf, size, "yes|no");
		break;
	case CFG_UINT:
		snprintf(buf, size, "%llu..%llu %s", k->min, k->max, k->unit);
		break;
	case CFG_SIZE:
		snprintf(buf, size, "BYTES[K|M|G|T], at least %s",
			 format_size(k->min, least, sizeof(least)));
		break;
	case CFG_ENUM:
		join_words(k->words, "|", "|", buf, size);
		break;
	default:
		out->value = k->syntax;
	}
	return true;
}

/* ---- checks across files ------------------------------------------------ */

static bool ports_overlap(const struct cfg_port *a, const struct cfg_port *b)
{
	if (a->proto != b->proto || a->host_first > b->host_last || b->host_first > a->host_last)
		return false;
	if (!a->has_host_ip || !b->has_host_ip)
		return true;        /* every address of the host */
	if (a->host_ip.family != b->host_ip.family)
		return false;
	return ip_is_zero(&a->host_ip) || ip_is_zero(&b->host_ip) ||
	       ip_equal(&a->host_ip, &b->host_ip);
}

static bool prefixes_overlap(const struct ip_prefix *a, const struct ip_prefix *b)
{
	return a->addr.family && a->addr.family == b->addr.family &&
	       (ip_prefix_contains_prefix(a, b) || ip_prefix_contains_prefix(b, a));
}

/* Network n's service_range (v6: service_range6) against o's subnets and
 * (o before n: reported once) service range: a VIP must be routed to the
 * gateway, and be one service's. */
static void check_service_range(struct cfg_ctx *c, const struct cfg_network *n,
				const struct cfg_network *o, bool v6)
{
	const struct ip_prefix *r = v6 ? &n->service_range6 : &n->service_range;
	const char *key = v6 ? "service_range6" : "service_range";
	char pb[IP_PREFIX_STRLEN];

	if (!r->addr.family)
		return;
	if (n != o && prefixes_overlap(r, v6 ? &o->subnet6 : &o->subnet) &&
	    (!v6 || o->has_v6))
		cfg_error(c, n->file, 0, n->line, 0, "[network %s] %s: %s overlaps the %s of "
			  "network '%s' (line %d)", n->name, key, ip_prefix_format(r, pb),
			  v6 ? "subnet6" : "subnet", o->name, o->line);
	else if (o < n && prefixes_overlap(r, v6 ? &o->service_range6 : &o->service_range))
		cfg_error(c, n->file, 0, n->line, 0, "[network %s] %s: %s overlaps the %s of "
			  "network '%s' (line %d)", n->name, key, ip_prefix_format(r, pb), key,
			  o->name, o->line);
}

static void check_networks(struct cfg_ctx *c)
{
	struct config *cfg = c->cfg;
	char pb[IP_PREFIX_STRLEN];

	for (size_t i = 0; i < cfg->n_networks; i++) {
		const struct cfg_network *n = &cfg->networks[i];

		for (size_t j = 0; j < i; j++) {
			const struct cfg_network *o = &cfg->networks[j];

			if (!strcmp(n->bridge, o->bridge))
				cfg_error(c, n->file, 0, n->line, 0, "[network %s] bridge: '%s' is "
					  "also the bridge of network '%s' (line %d)", n->name,
					  n->bridge, o->name, o->line);
			if (n->subnet.addr.family && o->subnet.addr.family &&
			    (ip_prefix_contains_prefix(&n->subnet, &o->subnet) ||
			     ip_prefix_contains_prefix(&o->subnet, &n->subnet)))
				cfg_error(c, n->file, 0, n->line, 0, "[network %s] subnet: %s "
					  "overlaps the subnet of network '%s' (line %d)", n->name,
					  ip_prefix_format(&n->subnet, pb), o->name, o->line);
			if (n->has_v6 && o->has_v6 &&
			    (ip_prefix_contains_prefix(&n->subnet6, &o->subnet6) ||
			     ip_prefix_contains_prefix(&o->subnet6, &n->subnet6)))
				cfg_error(c, n->file, 0, n->line, 0, "[network %s] subnet6: %s "
					  "overlaps the subnet6 of network '%s' (line %d)", n->name,
					  ip_prefix_format(&n->subnet6, pb), o->name, o->line);
		}
		/* both ways round: either network may hold the range */
		for (size_t j = 0; j < cfg->n_networks; j++) {
			check_service_range(c, n, &cfg->networks[j], false);
			check_service_range(c, n, &cfg->networks[j], true);
		}
	}
}

static bool in_ranges(const struct ip_range *r, size_t n, const struct ip_addr *a)
{
	for (size_t i = 0; i < n; i++)
		if (ip_range_contains(&r[i], a))
			return true;
	return false;
}

static void check_static_ip(struct cfg_ctx *c, const struct cfg_container *ct, int fidx,
			    bool v6)
{
	const struct ip_addr *a = v6 ? &ct->ip6 : &ct->ip;
	const char *key = v6 ? "ip6" : "ip";
	int line = v6 ? ct->lines.ip6 : ct->lines.ip;
	char ab[IP_STRLEN], pb[IP_PREFIX_STRLEN];
	const struct config *cfg = c->cfg;

	for (size_t k = 0; k < ct->n_networks; k++) {
		const struct cfg_network *n = config_network(cfg, ct->networks[k]);
		const struct ip_prefix *p;
		struct ip_range hosts;

		if (!n || (v6 && !n->has_v6))
			continue;
		p = v6 ? &n->subnet6 : &n->subnet;
		if (!ip_prefix_contains(p, a))
			continue;
		cfg_prefix_hosts(p, &hosts);
		if (ip_equal(a, v6 ? &n->gateway6 : &n->gateway))
			cfg_error(c, ct->file, fidx, line, 0, "[container] %s: %s is the gateway "
				  "of network '%s'", key, ip_format(a, ab), n->name);
		else if (!ip_range_contains(&hosts, a))
			cfg_error(c, ct->file, fidx, line, 0, "[container] %s: %s is not a host "
				  "address of %s", key, ip_format(a, ab), ip_prefix_format(p, pb));
		else if (!in_ranges(v6 ? n->ranges6 : n->ranges, v6 ? n->n_ranges6 : n->n_ranges, a))
			/* IPAM hands out static requests from the ranges only (as CNI
			 * host-local does): say so now rather than at start */
			cfg_error(c, ct->file, fidx, line, 0, "[container] %s: %s is outside the "
				  "range of network '%s' (%s:%d)", key, ip_format(a, ab), n->name,
				  n->file, n->line);
		goto taken;
	}
	cfg_error(c, ct->file, fidx, line, 0, "[container] %s: %s is outside the %ssubnets "
		  "of the container's networks", key, ip_format(a, ab), v6 ? "IPv6 " : "");
	return;
taken:
	for (size_t i = 0; i < cfg->n_containers && cfg->containers[i] != ct; i++) {
		const struct cfg_container *o = cfg->containers[i];

		if ((v6 ? o->has_ip6 : o->has_ip) && ip_equal(a, v6 ? &o->ip6 : &o->ip))
			cfg_error(c, ct->file, fidx, line, 0, "[container] %s: %s is also "
				  "requested by container '%s' (%s:%d)", key, ip_format(a, ab),
				  o->name, o->file, v6 ? o->lines.ip6 : o->lines.ip);
	}
}

/* A published host port range, in the order check_ports meets it. */
struct port_ref {
	const struct cfg_container *ct;
	const struct cfg_port *p;
	size_t order;
	size_t clash;               /* order of the first earlier one it overlaps; SIZE_MAX: none */
	int fidx;
};

static int cmp_port_refs(const void *a, const void *b)
{
	const struct port_ref *x = a, *y = b;

	if (x->p->proto != y->p->proto)
		return x->p->proto - y->p->proto;
	if (x->p->host_first != y->p->host_first)
		return x->p->host_first - y->p->host_first;
	return x->order < y->order ? -1 : x->order > y->order;
}

static int cmp_port_order(const void *a, const void *b)
{
	const struct port_ref *x = a, *y = b;

	return x->order < y->order ? -1 : x->order > y->order;
}

/*
 * Every host port published twice: each one against the first earlier one
 * (containers in file order, ports in key order) that it overlaps. Sorted by
 * protocol and first port and swept, so that 5,000 published ports cost a
 * sort, not 12 million comparisons, at every reload.
 */
static void check_ports(struct cfg_ctx *c, const int *fidx)
{
	const struct config *cfg = c->cfg;
	struct port_ref *v;
	size_t n = 0, *active, n_active = 0;
	char pb[32];

	for (size_t i = 0; i < cfg->n_containers; i++)
		n += cfg->containers[i]->n_ports;
	if (n < 2)
		return;
	v = cfg_new(c->tmp, n * sizeof(*v));
	active = cfg_new(c->tmp, n * sizeof(*active));
	n = 0;
	for (size_t i = 0; i < cfg->n_containers; i++)
		for (size_t p = 0; p < cfg->containers[i]->n_ports; p++)
			v[n] = (struct port_ref){ cfg->containers[i], &cfg->containers[i]->ports[p],
						  n, SIZE_MAX, fidx[i] }, n++;
	qsort(v, n, sizeof(*v), cmp_port_refs);
	/* active: the ranges of this protocol that may still reach the next one */
	for (size_t i = 0; i < n; i++) {
		size_t keep = 0;

		for (size_t k = 0; k < n_active; k++) {
			struct port_ref *o = &v[active[k]];

			if (o->p->proto != v[i].p->proto || o->p->host_last < v[i].p->host_first)
				continue;
			active[keep++] = active[k];
			if (!ports_overlap(o->p, v[i].p))
				continue;
			/* the later of the two is the one in error */
			if (o->order < v[i].order && o->order < v[i].clash)
				v[i].clash = o->order;
			else if (v[i].order < o->order && v[i].order < o->clash)
				o->clash = v[i].order;
		}
		n_active = keep;
		active[n_active++] = i;
	}
	qsort(v, n, sizeof(*v), cmp_port_order);
	for (size_t i = 0; i < n; i++) {
		const struct port_ref *a = &v[i], *o;

		if (a->clash == SIZE_MAX)
			continue;
		o = &v[a->clash];
		if (a->p->host_first == a->p->host_last)
			snprintf(pb, sizeof(pb), "%u", a->p->host_first);
		else
			snprintf(pb, sizeof(pb), "%u-%u", a->p->host_first, a->p->host_last);
		if (o->ct == a->ct)
			cfg_error(c, a->ct->file, a->fidx, a->p->line, 0, "[container] ports: "
				  "host port %s/%s is published twice", pb,
				  ip_proto_name(a->p->proto));
		else
			cfg_error(c, a->ct->file, a->fidx, a->p->line, 0, "[container] ports: "
				  "host port %s/%s is already published by container '%s' (%s:%d)",
				  pb, ip_proto_name(a->p->proto), o->ct->name, o->ct->file,
				  o->p->line);
	}
}

/* A network is one Linux bridge, and each container on it one port of it. */
static void check_bridge_ports(struct cfg_ctx *c)
{
	const struct config *cfg = c->cfg;
	size_t *attached = cfg_new(c->tmp, (cfg->n_networks + 1) * sizeof(*attached));

	for (size_t k = 0; k < cfg->n_containers; k++)
		for (size_t j = 0; j < cfg->containers[k]->n_networks; j++) {
			const struct cfg_network *n = config_network(cfg,
								     cfg->containers[k]->networks[j]);

			if (n)
				attached[n - cfg->networks]++;
		}
	for (size_t i = 0; i < cfg->n_networks; i++) {
		const struct cfg_network *n = &cfg->networks[i];

		if (attached[i] > CONFIG_BRIDGE_PORTS_MAX)
			cfg_error(c, n->file, 0, n->line, 0, "[network %s] %zu containers are "
				  "attached to it, more than a Linux bridge takes (%d ports; "
				  "the kernel refuses the next one with EXFULL): spread them "
				  "over more networks", n->name, attached[i],
				  CONFIG_BRIDGE_PORTS_MAX);
	}
}

static void cross_checks(struct cfg_ctx *c, const struct config_file *files, size_t nf)
{
	struct config *cfg = c->cfg;
	int *fidx = cfg_new(c->tmp, (cfg->n_containers + 1) * sizeof(*fidx));
	size_t f = 0;

	check_networks(c);
	for (size_t i = 0; i < cfg->n_containers; i++) {
		const struct cfg_container *ct = cfg->containers[i], *o;

		/* containers were made in file order: the cursor only moves on */
		while (f + 1 < nf && strcmp(files[f].path, ct->file))
			f++;
		fidx[i] = (int)f;
		if ((o = name_index_get(&cfg->by_name, ct->name)))
			cfg_error(c, ct->file, fidx[i], ct->lines.name, 0, "[container] the name "
				  "'%s' is also used by %s", ct->name, o->file);
		else if (!name_index_put(&cfg->by_name, (void *)ct))
			c->oom = true;
		for (size_t k = 0; k < ct->n_networks; k++)
			if (!config_network(cfg, ct->networks[k]))
				cfg_error(c, ct->file, fidx[i], ct->lines.networks ? ct->lines.networks :
					  ct->lines.section, 0, "[container] networks: unknown "
					  "network '%s'%s", ct->networks[k], ct->lines.networks ? "" :
					  " (the default when networks is not given)");
		if (ct->has_ip)
			check_static_ip(c, ct, fidx[i], false);
		if (ct->has_ip6)
			check_static_ip(c, ct, fidx[i], true);
	}
	check_ports(c, fidx);
	check_bridge_ports(c);
	cfg_service_checks(c, files, nf);
}

/* ---- loading ------------------------------------------------------------ */

int cfg_file_rank(const char *path)
{
	if (!strcmp(path, "berth.ini"))
		return 0;
	if (!strncmp(path, "containers.d/", 13) && !strchr(path + 13, '/'))
		return 1;
	if (!strncmp(path, "policies.d/", 11) && !strchr(path + 11, '/'))
		return 2;
	if (!strncmp(path, "services.d/", 11) && !strchr(path + 11, '/'))
		return 3;
	return 4;
}

/* What makes a file "the same" without reading it (config_cache). */
struct file_sig {
	dev_t dev;
	ino_t ino;
	off_t size;
	struct timespec mtime, ctime;
};

/* One container, policy or service file as last parsed. */
struct cfg_cached {
	struct file_sig sig;
	time_t read_at;             /* wall clock when it was read */
	uint64_t hash;              /* of path and text */
	struct cfg_alloc *mem;      /* what obj points into */
	bool seen;                  /* listed by the load under way */
	bool touched;               /* inotify named it since it was read */
	void *obj;                  /* in mem: its struct cfg_container, policy or cfg_service */
	char path[];                /* "containers.d/web.ini" */
};

/*
 * The directories' watches. A file whose directory was watched (inotify)
 * since before it was read, and of which no event has spoken since, is
 * taken without even a stat: a reload among a thousand containers makes no
 * syscall per unchanged file. Without inotify (none left, a directory that
 * could not be watched, a queue overflow, a symlink whose target is
 * elsewhere) a file is known by its signature, as above.
 */
enum { WATCH_CONTAINERS, WATCH_POLICIES, WATCH_SERVICES, WATCHES };
static const char *const watch_sub[WATCHES] = { "containers.d", "policies.d", "services.d" };

struct config_cache {
	struct name_index by_path;
	struct cfg_alloc *scratch;  /* a changed file's first parse, which measures it */
	struct config_cache_stats stats;
	int ino_fd;                 /* inotify; -1: none */
	struct {
		int wd;                 /* -1: not watched */
		bool trusted;           /* watched since before the last load read it */
	} watch[WATCHES];
};

static const char *cached_path(const void *o)
{
	return ((const struct cfg_cached *)o)->path;
}

struct config_cache *config_cache_new(void)
{
	struct config_cache *cache = calloc(1, sizeof(*cache));

	if (!cache)
		return NULL;
	cache->by_path.name_of = cached_path;
	cache->ino_fd = -1;
	for (int k = 0; k < WATCHES; k++)
		cache->watch[k].wd = -1;
	return cache;
}

static void cached_free(struct cfg_cached *ce)
{
	cfg_alloc_free(ce->mem);
	free(ce);
}

void config_cache_free(struct config_cache *cache)
{
	if (!cache)
		return;
	for (size_t i = 0; i < cache->by_path.cap; i++)
		if (cache->by_path.slot[i])
			cached_free(cache->by_path.slot[i]);
	name_index_free(&cache->by_path);
	cfg_alloc_free(cache->scratch);
	if (cache->ino_fd >= 0)
		close(cache->ino_fd);
	free(cache);
}

void config_cache_stats(const struct config_cache *cache, struct config_cache_stats *out)
{
	*out = cache->stats;
}

/* The entry for exactly path (the index ignores case; paths do not). */
static struct cfg_cached *cache_get(const struct config_cache *cache, const char *path)
{
	struct cfg_cached *ce = cache ? name_index_get(&cache->by_path, path) : NULL;

	return ce && !strcmp(ce->path, path) ? ce : NULL;
}

/* A file to load: its text, or the cache's parse of the same text. */
struct cfg_src {
	struct config_file f;
	struct cfg_cached *hit;
	struct file_sig sig;        /* when read from a directory */
	int rank;                   /* cfg_file_rank, the first sort key */
};

static int cmp_srcs(const void *a, const void *b)
{
	const struct cfg_src *x = a, *y = b;

	return x->rank != y->rank ? x->rank - y->rank : strcmp(x->f.path, y->f.path);
}

/* base name without ".ini" */
const char *cfg_file_stem(struct cfg_alloc *m, const char *path)
{
	const char *b = strrchr(path, '/');
	size_t n;

	b = b ? b + 1 : path;
	n = strlen(b);
	return cfg_strndup(m, b, n > 4 && !strcmp(b + n - 4, ".ini") ? n - 4 : n);
}

static uint64_t file_hash(const struct config_file *f)
{
	return hash64(hash64(HASH64_INIT, f->path, strlen(f->path) + 1), f->text, f->len);
}

static size_t *objects_n(struct config *cfg, int rank)
{
	return rank == 1 ? &cfg->n_containers : rank == 2 ? &cfg->n_policies : &cfg->n_services;
}

static size_t objects(struct config *cfg, int rank)
{
	return *objects_n(cfg, rank);
}

/* Parse a container, policy or service file (rank 1, 2 or 3) into the
 * config, with c->mem as the arena of what it points to. Returns how many
 * objects it added. */
static size_t parse_object(struct cfg_ctx *c, const struct ini_file *ini, int rank)
{
	size_t before = objects(c->cfg, rank);

	if (rank == 1)
		cfg_container_file(c, ini);
	else if (rank == 2)
		cfg_policy_file(c, ini, cfg_file_stem(c->mem, ini->path));
	else
		cfg_service_file(c, ini);
	return objects(c->cfg, rank) - before;
}

static void *object_at(struct config *cfg, int rank, size_t k)
{
	return rank == 1 ? (void *)cfg->containers[k] : rank == 2 ? (void *)&cfg->policies[k] :
	       (void *)&cfg->services[k];
}

static size_t object_size(int rank)
{
	return rank == 1 ? sizeof(struct cfg_container) : rank == 2 ? sizeof(struct policy) :
	       sizeof(struct cfg_service);
}

static void set_hash(void *obj, int rank, uint64_t h)
{
	if (rank == 1)
		((struct cfg_container *)obj)->hash = h;
	else if (rank == 2)
		((struct policy *)obj)->hash = h;
	else
		((struct cfg_service *)obj)->hash = h;
}

/*
 * One container, policy or service file. Without a cache it is parsed into the
 * config's arena. With one, an unchanged file is the cached object; a changed
 * one is parsed into an arena of its own, which, when the file has no
 * errors, is kept in the cache: parsed twice, the second time into one block
 * of exactly what the first used.
 */
static void load_object(struct cfg_ctx *c, struct config_cache *cache, struct cfg_src *src,
			const struct ini_file *ini, int rank)
{
	struct config *cfg = c->cfg;
	size_t size = object_size(rank);
	size_t errs_before = c->errs->n, k = objects(cfg, rank);
	struct config_errors *errs = c->errs, scratch = { 0 };
	struct cfg_alloc *first, *exact;
	struct cfg_cached *ce, *prev;
	uint64_t h;

	if (src->hit) {
		if (rank == 1)
			cfg->containers[cfg->n_containers++] = src->hit->obj;
		else
			memcpy(object_at(cfg, rank, (*objects_n(cfg, rank))++), src->hit->obj, size);
		cfg->shared[cfg->n_shared++] = cfg_alloc_ref(src->hit->mem);
		src->hit->seen = true;
		if (src->f.text)
			cache->stats.read++;
		else
			cache->stats.reused++;
		return;
	}
	h = file_hash(&src->f);
	if (!cache) {
		if (parse_object(c, ini, rank))
			set_hash(object_at(cfg, rank, k), rank, h);
		return;
	}
	cache->stats.parsed++;
	if ((ce = cache_get(cache, src->f.path))) {
		name_index_del(&cache->by_path, ce->path);
		cached_free(ce);
	}
	/* the first parse goes to the cache's scratch arena, reused from file
	 * to file; one with errors keeps it (the config points into it) */
	if (!cache->scratch && !(cache->scratch = cfg_alloc_new())) {
		c->oom = true;
		return;
	}
	first = cache->scratch;
	cfg_alloc_reset(first);
	c->mem = first;
	if (parse_object(c, ini, rank) != 1 || c->errs->n != errs_before) {
		cfg->shared[cfg->n_shared++] = first;   /* the config frees it */
		cache->scratch = NULL;
		goto out;               /* not kept: parsed again next time */
	}
	set_hash(object_at(cfg, rank, k), rank, h);
	/* again, into one block: the same calls ask for the same sizes (and a
	 * policy's struct, which the config keeps in its array, is copied in) */
	exact = cfg_alloc_exact(first->used + (rank != 1 ? CFG_ROUND(size) : 0));
	ce = calloc(1, sizeof(*ce) + strlen(src->f.path) + 1);
	if (!exact || !ce) {
		cfg_alloc_free(exact);
		free(ce);
		cfg->shared[cfg->n_shared++] = first;
		cache->scratch = NULL;
		goto out;
	}
	*objects_n(cfg, rank) -= 1;
	if (rank != 1)
		memset(object_at(cfg, rank, k), 0, size);       /* parsers start from zero */
	c->mem = exact;
	c->errs = &scratch;
	parse_object(c, ini, rank);
	c->errs = errs;
	config_errors_free(&scratch);
	set_hash(object_at(cfg, rank, k), rank, h);
	if (rank == 1)
		ce->obj = cfg->containers[k];
	else
		ce->obj = memcpy(cfg_new(exact, size), object_at(cfg, rank, k), size);
	strcpy(ce->path, src->f.path);
	ce->sig = src->sig;
	ce->read_at = time(NULL);
	ce->hash = h;
	ce->mem = exact;
	ce->seen = true;
	/* a path that differs only in case from one cached (the index ignores
	 * case; this load may already hold that one) is not kept: it is read
	 * and parsed again next time */
	prev = name_index_get(&cache->by_path, ce->path);
	if (prev || !name_index_put(&cache->by_path, ce)) {
		ce->mem = NULL;         /* the config keeps the parse */
		cached_free(ce);
		cfg->shared[cfg->n_shared++] = exact;
	} else {
		cfg->shared[cfg->n_shared++] = cfg_alloc_ref(exact);
	}
out:
	c->mem = cfg->mem;
}

/* Forget the files the load did not list; clear the marks for the next. */
static void cache_sweep(struct config_cache *cache)
{
	for (size_t i = 0; i < cache->by_path.cap;) {
		struct cfg_cached *ce = cache->by_path.slot[i];

		if (ce && !ce->seen) {
			/* removal shifts later entries back: look at slot i again */
			name_index_del(&cache->by_path, ce->path);
			cached_free(ce);
			continue;
		}
		if (ce)
			ce->seen = false;
		i++;
	}
}

static const char *ctr_name_of(const void *o)
{
	return ((const struct cfg_container *)o)->name;
}

static int load_srcs(struct cfg_src *src, size_t n, const char *source,
		     const struct config_opts *opts, struct config_cache *cache,
		     struct config **out, struct config_errors *errs)
{
	struct cfg_ctx c = { .errs = errs };
	struct config_file *files;
	struct ini_file *ini;
	struct config *cfg;
	size_t n_ctr = 0, n_pol = 0, n_svc = 0;

	*out = NULL;
	c.tmp = cfg_alloc_new();
	c.mem = cfg_alloc_new();
	if (!c.tmp || !c.mem) {
		cfg_alloc_free(c.tmp);
		cfg_alloc_free(c.mem);
		return -ENOMEM;
	}
	cfg = c.cfg = cfg_new(c.mem, sizeof(*cfg));
	cfg->mem = c.mem;
	cfg->by_name.name_of = ctr_name_of;
	cfg->source = cfg_strdup(c.mem, source ? source : "embedded default");
	defaults(&c, &cfg_daemon_section, &cfg->daemon);
	defaults(&c, &cfg_dns_section, &cfg->dns);
	defaults(&c, &cfg_images_section, &cfg->images);

	for (size_t i = 0; i < n; i++)
		src[i].rank = cfg_file_rank(src[i].f.path);
	qsort(src, n, sizeof(*src), cmp_srcs);
	files = cfg_new(c.tmp, (n + 1) * sizeof(*files));
	ini = cfg_new(c.tmp, (n + 1) * sizeof(*ini));
	/* a file gives at most one container, policy or service (berth.ini one
	 * service per section, counted after phase 1): the arrays never move */
	for (size_t i = 0; i < n; i++) {
		files[i] = src[i].f;
		n_ctr += src[i].rank == 1;
		n_pol += src[i].rank == 2;
		n_svc += src[i].rank == 3;
	}
	cfg->containers = cfg_new(c.mem, (n_ctr + 1) * sizeof(*cfg->containers));
	cfg->policies = cfg_new(c.mem, (n_pol + 1) * sizeof(*cfg->policies));
	cfg->shared = cfg_new(c.mem, (n + 1) * sizeof(*cfg->shared));
	if (cache)
		cache->stats = (struct config_cache_stats){ 0 };

	/* phase 1: every file through inih (a cached one was) */
	for (size_t i = 0; i < n; i++) {
		ini[i].path = files[i].path;
		ini[i].idx = (int)i;
		if (src[i].hit)
			continue;
		if (src[i].rank == 4)
			cfg_error(&c, files[i].path, (int)i, 0, 0, "not a berth config file "
				  "(expected berth.ini, containers.d/NAME.ini, policies.d/NAME.ini "
				  "or services.d/NAME.ini)");
		else if (files[i].len > CONFIG_FILE_MAX)
			cfg_error(&c, files[i].path, (int)i, 0, 0, "larger than %d bytes",
				  CONFIG_FILE_MAX);
		else
			ini_read(&c, &ini[i], files[i].text, files[i].len);
	}
	for (size_t i = 0; i < n; i++)
		if (src[i].rank == 0)
			n_svc += ini[i].n;
	cfg->services = cfg_new(c.mem, (n_svc + 1) * sizeof(*cfg->services));
	/* phase 2: berth.ini (networks) first, then containers, policies, services */
	for (size_t i = 0; i < n; i++) {
		int rank = src[i].rank;

		c.file = files[i].path;
		c.file_idx = (int)i;
		if (rank == 0)
			cfg_berth_ini(&c, &ini[i]);
		else if (rank >= 1 && rank <= 3)
			load_object(&c, cache, &src[i], &ini[i], rank);
	}
	if (cache)
		cache_sweep(cache);
	if (!cfg->n_networks) {
		/* no [network] anywhere: the embedded default's */
		struct ini_file d = { .path = "(embedded default)", .idx = -1 };

		c.file = d.path;
		c.file_idx = -1;
		ini_read(&c, &d, config_default_ini, strlen(config_default_ini));
		for (size_t i = 0; i < d.n; i++)
			if (!strncmp(d.sects[i].name, "network ", 8))
				cfg_network(&c, &d.sects[i], d.sects[i].name + 8);
	}
	if (c.upstream_given)
		cfg->dns.resolv_conf = NULL;
	else if (!cfg->dns.resolv_conf_line && opts && opts->resolv_conf)
		cfg_read_resolv_conf(&c, opts->resolv_conf);
	else
		cfg_read_resolv_conf(&c, cfg->dns.resolv_conf);
	cross_checks(&c, files, n);
	cfg_alloc_free(c.tmp);
	if (c.oom && !errs->n)
		cfg_error(&c, "", 0, 0, 0, "out of memory while loading the configuration");
	errs_sort(errs);
	if (errs->n || c.oom) {
		config_free(cfg);
		return c.oom ? -ENOMEM : -EINVAL;
	}
	*out = cfg;
	return 0;
}

int config_load_files(const struct config_file *in, size_t n, const char *source,
		      const struct config_opts *opts, struct config **out,
		      struct config_errors *errs)
{
	struct cfg_src *src = calloc(n + 1, sizeof(*src));
	int ret;

	if (!src)
		return -ENOMEM;
	for (size_t i = 0; i < n; i++)
		src[i].f = in[i];
	ret = load_srcs(src, n, source, opts, NULL, out, errs);
	free(src);
	return ret;
}

struct src_list {
	struct cfg_src *v;
	size_t n, cap;
};

static void read_error(struct config_errors *errs, const char *path, int err)
{
	char *msg;

	if (asprintf(&msg, "%s: %s", path, strerror(err)) >= 0)
		errs_add(errs, "", 0, 0, 0, msg);
}

static bool sig_equal(const struct file_sig *a, const struct file_sig *b)
{
	return a->dev == b->dev && a->ino == b->ino && a->size == b->size &&
	       a->mtime.tv_sec == b->mtime.tv_sec && a->mtime.tv_nsec == b->mtime.tv_nsec &&
	       a->ctime.tv_sec == b->ctime.tv_sec && a->ctime.tv_nsec == b->ctime.tv_nsec;
}

#define WATCH_MASK (IN_CREATE | IN_DELETE | IN_MODIFY | IN_CLOSE_WRITE | IN_MOVED_FROM | \
		    IN_MOVED_TO | IN_ATTRIB | IN_DELETE_SELF | IN_MOVE_SELF | IN_ONLYDIR)

static void untrust_all(struct config_cache *cache)
{
	for (int k = 0; k < WATCHES; k++)
		cache->watch[k].trusted = false;
}

/* Before a load reads the directories: make sure each is watched (a watch
 * new this time, or a directory replaced, trusts nothing yet), then take in
 * what the kernel queued since the last load. */
static void watch_update(struct config_cache *cache, const char *dir)
{
	char buf[4096] __attribute__((aligned(__alignof__(struct inotify_event))));
	char path[4096], rel[300];
	ssize_t len;

	if (cache->ino_fd < 0 &&
	    (cache->ino_fd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC)) < 0)
		return;
	for (int k = 0; k < WATCHES; k++) {
		int wd;

		snprintf(path, sizeof(path), "%s/%s", dir, watch_sub[k]);
		wd = inotify_add_watch(cache->ino_fd, path, WATCH_MASK);
		if (wd != cache->watch[k].wd)
			cache->watch[k].trusted = false;
		cache->watch[k].wd = wd;
	}
	while ((len = read(cache->ino_fd, buf, sizeof(buf))) > 0) {
		for (char *p = buf; p < buf + len;) {
			const struct inotify_event *ev = (const struct inotify_event *)(void *)p;
			struct cfg_cached *ce;

			p += sizeof(*ev) + ev->len;
			if (ev->mask & IN_Q_OVERFLOW) {
				untrust_all(cache);
				continue;
			}
			for (int k = 0; k < WATCHES; k++) {
				if (ev->wd != cache->watch[k].wd)
					continue;
				if (ev->mask & (IN_IGNORED | IN_DELETE_SELF | IN_MOVE_SELF))
					cache->watch[k].trusted = false;
				if (!ev->len)
					continue;
				snprintf(rel, sizeof(rel), "%s/%s", watch_sub[k], ev->name);
				if ((ce = cache_get(cache, rel)))
					ce->touched = true;
			}
		}
	}
}

/* After a load: what is watched now reports every change to come. */
static void watch_trust(struct config_cache *cache)
{
	for (int k = 0; k < WATCHES; k++)
		cache->watch[k].trusted = cache->watch[k].wd >= 0;
}

static bool watched(const struct config_cache *cache, const char *rel)
{
	for (int k = 0; k < WATCHES; k++)
		if (!strncmp(rel, watch_sub[k], strlen(watch_sub[k])) &&
		    rel[strlen(watch_sub[k])] == '/')
			return cache->watch[k].trusted;
	return false;
}

/* Is ce's file known unchanged without reading it: no event spoke of it in
 * a watched directory (a symlink's target may change where no watch sees
 * it), or its signature is the one it had when read more than a second
 * after its last change? */
static bool cached_unchanged(const struct config_cache *cache, const struct cfg_cached *ce,
			     int dirfd, const char *rel, unsigned char d_type)
{
	struct stat st;

	if (!ce->touched && d_type == DT_REG && watched(cache, rel))
		return true;
	if (fstatat(dirfd, rel, &st, 0) < 0)
		return false;
	return sig_equal(&(struct file_sig){ st.st_dev, st.st_ino, st.st_size, st.st_mtim,
					      st.st_ctim }, &ce->sig) &&
	       st.st_ctim.tv_sec + 1 < ce->read_at;
}

/*
 * Read the file at rel (relative to dir, also open as dirfd) into a new
 * source: its text, or, with a cache, the cached parse when the file is
 * known unchanged (its signature, read more than a second after its last
 * change) or found unchanged (the same text). -EISDIR: not a file, skipped.
 */
static int read_src(int dirfd, const char *dir, const char *rel, unsigned char d_type,
		    struct cfg_alloc *m, struct config_cache *cache, struct src_list *list,
		    struct config_errors *errs)
{
	struct cfg_cached *ce = cache_get(cache, rel);
	char path[4096], *buf = NULL;
	struct cfg_src *src;
	struct stat st;
	size_t len = 0, cap;
	ssize_t r;
	int fd, ret;

	snprintf(path, sizeof(path), "%s/%s", dir, rel);
	if (list->n >= CONFIG_FILES_MAX) {
		ret = -EMFILE;
		goto fail;
	}
	if (ce && cached_unchanged(cache, ce, dirfd, rel, d_type)) {
		if (!(src = array_push(list)))
			return -ENOMEM;
		src->f = (struct config_file){ ce->path, NULL, 0 };
		src->hit = ce;
		src->sig = ce->sig;
		return 0;
	}
	fd = openat(dirfd, rel, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		ret = -errno;
		if (ret == -ENOENT && !strcmp(rel, "berth.ini"))
			return 0;   /* optional: every default */
		goto fail;
	}
	if (fstat(fd, &st) < 0) {
		ret = -errno;
		goto fail_close;
	}
	if (S_ISDIR(st.st_mode)) {
		close(fd);
		return -EISDIR;
	}
	/* its size plus one byte, at most CONFIG_FILE_MAX + 1: enough to see
	 * that it is too large, or that it grew while we read it */
	cap = st.st_size > CONFIG_FILE_MAX ? CONFIG_FILE_MAX + 1 : (size_t)st.st_size + 1;
	buf = cfg_new(m, cap + 1);
	while (len < cap) {
		r = read(fd, buf + len, cap - len);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0) {
			ret = -errno;
			goto fail_close;
		}
		if (r == 0)
			break;
		len += (size_t)r;
	}
	close(fd);
	if (!(src = array_push(list)))
		return -ENOMEM;
	src->f = (struct config_file){ cfg_strdup(m, rel), buf, len };
	src->sig = (struct file_sig){ st.st_dev, st.st_ino, st.st_size, st.st_mtim, st.st_ctim };
	if (ce && ce->hash == file_hash(&src->f)) {
		src->hit = ce;          /* touched, not changed */
		ce->sig = src->sig;
		ce->read_at = time(NULL);
		ce->touched = false;
	}
	return 0;
fail_close:
	close(fd);
fail:
	read_error(errs, path, -ret);
	return ret;
}

/* Read DIR/sub/ *.ini (sorted later); hidden and other names skipped, and
 * the file skip (relative to DIR; may be NULL). */
static int read_dir(int dirfd, const char *dir, const char *sub, const char *skip,
		    struct cfg_alloc *m, struct config_cache *cache, struct src_list *list,
		    struct config_errors *errs)
{
	char path[4096];
	DIR *d;
	struct dirent *de;
	int ret = 0;

	snprintf(path, sizeof(path), "%s/%s", dir, sub);
	d = opendir(path);
	if (!d) {
		if (errno == ENOENT)
			return 0;
		ret = -errno;
		read_error(errs, path, -ret);
		return ret;
	}
	while ((de = readdir(d))) {
		size_t l = strlen(de->d_name);
		char rel[300];

		if (de->d_name[0] == '.' || l <= 4 || strcmp(de->d_name + l - 4, ".ini") ||
		    l >= 256)
			continue;
		snprintf(rel, sizeof(rel), "%s/%s", sub, de->d_name);
		if (skip && !strcmp(rel, skip))
			continue;
		ret = read_src(dirfd, dir, rel, de->d_type, m, cache, list, errs);
		if (ret < 0 && ret != -EISDIR)
			break;
		ret = 0;
	}
	closedir(d);
	return ret;
}

const char *config_default_dir(void)
{
	struct stat st;

	return stat(CONFIG_DIR_DEFAULT, &st) == 0 ? CONFIG_DIR_DEFAULT : NULL;
}

int config_load_cached(const char *dir, const struct config_opts *opts,
		       struct config_cache *cache, struct config **out,
		       struct config_errors *errs)
{
	struct src_list list = { 0 };
	struct config_file emb;
	struct cfg_alloc *m;
	struct stat st;
	int ret, dirfd;

	*out = NULL;
	if (!dir) {
		emb = (struct config_file){ "berth.ini", config_default_ini,
					    strlen(config_default_ini) };
		return config_load_files(&emb, 1, NULL, opts, out, errs);
	}
	ret = stat(dir, &st) < 0 ? -errno : !S_ISDIR(st.st_mode) ? -ENOTDIR : 0;
	if (ret < 0) {
		read_error(errs, dir, -ret);
		return ret;
	}
	dirfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dirfd < 0) {
		ret = -errno;
		read_error(errs, dir, -ret);
		return ret;
	}
	m = cfg_alloc_new();
	if (!m) {
		close(dirfd);
		return -ENOMEM;
	}
	/* berth.ini is read and parsed every time (config.h) */
	if (cache)
		watch_update(cache, dir);
	ret = read_src(dirfd, dir, "berth.ini", DT_UNKNOWN, m, NULL, &list, errs);
	if (!ret)
		ret = read_dir(dirfd, dir, "containers.d", opts ? opts->skip : NULL, m, cache,
			       &list, errs);
	if (!ret)
		ret = read_dir(dirfd, dir, "policies.d", opts ? opts->skip : NULL, m, cache,
			       &list, errs);
	if (!ret)
		ret = read_dir(dirfd, dir, "services.d", opts ? opts->skip : NULL, m, cache,
			       &list, errs);
	if (!ret && opts && opts->extra) {
		struct cfg_src *src = array_push(&list);

		if (src)
			*src = (struct cfg_src){ .f = *opts->extra };
		else
			ret = -ENOMEM;
	}
	if (!ret)
		ret = load_srcs(list.v, list.n, dir, opts, cache, out, errs);
	if (cache)
		watch_trust(cache);
	array_free(&list);
	cfg_alloc_free(m);
	close(dirfd);
	return ret;
}

int config_load(const char *dir, const struct config_opts *opts, struct config **out,
		struct config_errors *errs)
{
	return config_load_cached(dir, opts, NULL, out, errs);
}

void config_free(struct config *c)
{
	if (!c)
		return;
	for (size_t i = 0; i < c->n_shared; i++)
		cfg_alloc_free(c->shared[i]);
	name_index_free(&c->by_name);
	cfg_alloc_free(c->mem);
}

const struct cfg_network *config_network(const struct config *c, const char *name)
{
	for (size_t i = 0; i < c->n_networks; i++)
		if (!strcmp(c->networks[i].name, name))
			return &c->networks[i];
	return NULL;
}

const struct cfg_container *config_container(const struct config *c, const char *name)
{
	return name_index_get(&c->by_name, name);
}

const char *config_summary(const struct config *c, char *buf, size_t size)
{
	int n = snprintf(buf, size, "%zu network%s, %zu container%s, %zu polic%s", c->n_networks,
			 c->n_networks == 1 ? "" : "s", c->n_containers,
			 c->n_containers == 1 ? "" : "s", c->n_policies,
			 c->n_policies == 1 ? "y" : "ies");

	/* services only when there are some: the line stays as it was without */
	if (c->n_services && n >= 0 && (size_t)n < size)
		snprintf(buf + n, size - (size_t)n, ", %zu service%s", c->n_services,
			 c->n_services == 1 ? "" : "s");
	return buf;
}
