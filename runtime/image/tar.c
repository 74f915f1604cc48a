/* tar.c - runtime/image: a streaming reader of ustar, GNU and pax archives.
 * It never seeks: headers, extensions and data are read in order from any
 * image_src, and what it keeps is one block, one skip buffer and the pax
 * records of the current entry (and the last global one). */
#include "runtime/image/image_int.h"

#include <inttypes.h>
#include <stdio.h>

#define BLOCK 512
#define PAX_MAX (1u << 20)          /* one entry's extended header */
#define SKIP_BUF 8192

/* The keys of a pax header that the reader uses (pointers into buf). */
struct pax {
	char *buf;                  /* the records, NUL put after names and strings */
	size_t cap;
	bool has_path, has_link, has_size, has_uid, has_gid, has_mtime;
	char *path, *link;
	uint64_t size;
	uint32_t uid, gid;
	int64_t mtime;
	struct tar_xattr xattrs[TAR_XATTRS_MAX];
	size_t n_xattrs;
};

struct tar_reader {
	struct image_src in;
	uint64_t pos;               /* bytes consumed from in */
	uint64_t data_left;         /* of the current entry */
	uint64_t data_size;
	uint64_t pad;               /* zeros after the data, up to the block */
	bool end;
	char cur[TAR_NAME_MAX];     /* the current entry's name, for errors */
	struct pax local, global;
	char *skip;
};

/* Read exactly n bytes unless the source ends first: the count read, or
 * -errno. */
static ssize_t read_full(struct tar_reader *t, void *p, size_t n, struct err *e)
{
	size_t got = 0;

	while (got < n) {
		ssize_t r = t->in.read(t->in.ctx, (char *)p + got, n - got, e);

		if (r < 0)
			return r;
		if (r == 0)
			break;
		got += (size_t)r;
	}
	t->pos += got;
	return (ssize_t)got;
}

/* Consume n bytes that nobody wants; running out is a truncated archive. */
static int skip(struct tar_reader *t, uint64_t n, struct err *e)
{
	while (n) {
		size_t k = n < SKIP_BUF ? (size_t)n : SKIP_BUF;
		ssize_t r = read_full(t, t->skip, k, e);

		if (r < 0)
			return (int)r;
		if ((size_t)r < k)
			return err_set(e, EIO, "truncated archive: entry '%s' is cut short at byte %" PRIu64,
				       t->cur, t->pos);
		n -= k;
	}
	return 0;
}

int tar_open(struct tar_reader **tp, struct image_src in, struct err *e)
{
	struct tar_reader *t = calloc(1, sizeof(*t));

	if (t)
		t->skip = malloc(SKIP_BUF);
	if (!t || !t->skip) {
		free(t);
		return err_set(e, ENOMEM, "tar reader: out of memory");
	}
	t->in = in;
	*tp = t;
	return 0;
}

void tar_close(struct tar_reader *t)
{
	if (!t)
		return;
	free(t->local.buf);
	free(t->global.buf);
	free(t->skip);
	free(t);
}

/* ---- numbers ---------------------------------------------------------------- */

/* An octal field (leading spaces, ended by NUL or space) or a base-256 one
 * (GNU: the first byte's high bit set; 0xff starts a negative number). */
static int parse_num(const char *f, size_t n, bool is_signed, int64_t min, uint64_t max,
		     int64_t *out)
{
	const uint8_t *p = (const uint8_t *)f;

	if (p[0] & 0x80) {
		bool neg = p[0] == 0xff;
		uint64_t v = neg ? UINT64_MAX : 0;

		if (neg && !is_signed)
			return -1;
		if (!neg && p[0] != 0x80)
			return -1;
		for (size_t i = 1; i < n; i++) {
			if (!neg && v >> 56)
				return -1;
			if (neg && (v >> 56) != 0xff)
				return -1;
			v = v << 8 | p[i];
		}
		if (neg) {
			int64_t s = (int64_t)v;

			if (s < min)
				return -1;
			*out = s;
			return 0;
		}
		if (v > max)
			return -1;
		*out = (int64_t)v;
		return 0;
	}
	size_t i = 0;
	uint64_t v = 0;
	bool digits = false;

	while (i < n && p[i] == ' ')
		i++;
	for (; i < n && p[i] >= '0' && p[i] <= '7'; i++) {
		if (v >> 60)
			return -1;
		v = v << 3 | (uint64_t)(p[i] - '0');
		digits = true;
	}
	if (i < n && p[i] != ' ' && p[i] != '\0')
		return -1;
	for (; i < n; i++)
		if (p[i] != ' ' && p[i] != '\0')
			return -1;
	if (!digits)
		v = 0;                  /* an empty field is zero (many writers leave them so) */
	if (v > max)
		return -1;
	*out = (int64_t)v;
	return 0;
}

/* A pax decimal: [-]digits[.fraction] (the fraction only where frac). */
static int pax_num(const char *s, bool neg_ok, bool frac, uint64_t max, int64_t *out)
{
	bool neg = false;
	uint64_t v = 0;

	if (*s == '-' && neg_ok) {
		neg = true;
		s++;
	}
	if (*s < '0' || *s > '9')
		return -1;
	for (; *s >= '0' && *s <= '9'; s++) {
		if (v > (max - (uint64_t)(*s - '0')) / 10)
			return -1;
		v = v * 10 + (uint64_t)(*s - '0');
	}
	if (*s == '.' && frac) {
		for (s++; *s >= '0' && *s <= '9'; s++)
			;
	}
	if (*s)
		return -1;
	*out = neg ? -(int64_t)v : (int64_t)v;
	return 0;
}

/* ---- pax records -------------------------------------------------------------- */

static void pax_reset(struct pax *x)
{
	char *buf = x->buf;
	size_t cap = x->cap;

	memset(x, 0, sizeof(*x));
	x->buf = buf;
	x->cap = cap;
}

/* Parse n bytes in x->buf: "LEN KEY=VALUE\n" records. */
static int pax_parse(struct pax *x, size_t n, struct err *e)
{
	char *p = x->buf, *end = x->buf + n;

	while (p < end) {
		size_t len = 0;
		char *q = p, *key, *eq, *val, *rec_end;

		if (*p == '\0') {
			/* some writers pad the header with NULs */
			for (; p < end; p++)
				if (*p)
					return err_set(e, EINVAL, "malformed pax record");
			break;
		}
		while (q < end && *q >= '0' && *q <= '9') {
			len = len * 10 + (size_t)(*q - '0');
			if (len > n)
				return err_set(e, EINVAL, "malformed pax record (length)");
			q++;
		}
		if (q == p || q >= end || *q != ' ' || len > (size_t)(end - p) || len < 5)
			return err_set(e, EINVAL, "malformed pax record");
		rec_end = p + len;
		if (rec_end[-1] != '\n')
			return err_set(e, EINVAL, "malformed pax record (no newline)");
		key = q + 1;
		eq = memchr(key, '=', (size_t)(rec_end - key));
		if (!eq || eq == key)
			return err_set(e, EINVAL, "malformed pax record (no key)");
		*eq = '\0';
		val = eq + 1;
		size_t vlen = (size_t)(rec_end - 1 - val);
		rec_end[-1] = '\0';
		if (memchr(key, '\0', (size_t)(eq - key)))
			return err_set(e, EINVAL, "malformed pax record (NUL in key)");

		bool str_ok = !memchr(val, '\0', vlen);
		int64_t v;

		if (strcmp(key, "path") == 0 || strcmp(key, "linkpath") == 0) {
			if (!str_ok || vlen >= TAR_NAME_MAX)
				return err_set(e, EINVAL, "pax %s: %s", key,
					       str_ok ? "longer than TAR_NAME_MAX" : "holds a NUL");
			if (key[0] == 'p') {
				x->path = val;
				x->has_path = true;
			} else {
				x->link = val;
				x->has_link = true;
			}
		} else if (strcmp(key, "size") == 0) {
			if (!str_ok || pax_num(val, false, false, INT64_MAX, &v) < 0)
				return err_set(e, EINVAL, "pax size '%.32s': not a size", val);
			x->size = (uint64_t)v;
			x->has_size = true;
		} else if (strcmp(key, "uid") == 0 || strcmp(key, "gid") == 0) {
			if (!str_ok || pax_num(val, false, false, UINT32_MAX, &v) < 0)
				return err_set(e, EINVAL, "pax %s '%.32s': not a 32-bit id", key, val);
			if (key[0] == 'u') {
				x->uid = (uint32_t)v;
				x->has_uid = true;
			} else {
				x->gid = (uint32_t)v;
				x->has_gid = true;
			}
		} else if (strcmp(key, "mtime") == 0) {
			if (!str_ok || pax_num(val, true, true, INT64_MAX, &v) < 0)
				return err_set(e, EINVAL, "pax mtime '%.32s': not a time", val);
			x->mtime = v;
			x->has_mtime = true;
		} else if (strncmp(key, "SCHILY.xattr.", 13) == 0) {
			struct tar_xattr *xa;

			if (!key[13])
				return err_set(e, EINVAL, "pax xattr without a name");
			for (size_t i = 0; i < x->n_xattrs; i++)
				if (strcmp(x->xattrs[i].name, key + 13) == 0)
					return err_set(e, EINVAL, "pax xattr '%s' given twice",
						       key + 13);
			if (x->n_xattrs == TAR_XATTRS_MAX)
				return err_set(e, E2BIG, "more than %d xattrs", TAR_XATTRS_MAX);
			xa = &x->xattrs[x->n_xattrs++];
			xa->name = key + 13;
			xa->value = val;
			xa->len = vlen;
		} else if (strncmp(key, "GNU.sparse.", 11) == 0) {
			return err_set(e, ENOTSUP, "sparse files are not supported");
		}
		/* atime, ctime, charset, comment, uname, gname, ...: not kept */
		p = rec_end;
	}
	return 0;
}

/* Read an extension's data (pax or GNU long name) of size bytes into x->buf,
 * plus its padding. */
static int read_ext(struct tar_reader *t, struct pax *x, uint64_t size, size_t max,
		    const char *what, struct err *e)
{
	ssize_t r;

	if (size > max)
		return err_set(e, E2BIG, "%s of %" PRIu64 " bytes at byte %" PRIu64 " (at most %zu)",
			       what, size, t->pos, max);
	if (x->cap < size + 1) {
		char *b = realloc(x->buf, (size_t)size + 1);

		if (!b)
			return err_set(e, ENOMEM, "%s: out of memory", what);
		x->buf = b;
		x->cap = (size_t)size + 1;
	}
	r = read_full(t, x->buf, (size_t)size, e);
	if (r < 0)
		return (int)r;
	if ((uint64_t)r < size)
		return err_set(e, EIO, "truncated archive: %s after '%s' is cut short", what,
			       t->cur[0] ? t->cur : "(start)");
	x->buf[size] = '\0';
	return skip(t, (BLOCK - size % BLOCK) % BLOCK, e);
}

/* ---- names ---------------------------------------------------------------------- */

/* Drop leading '/', "." components, empty components and trailing '/':
 * "./a//b/./c/" is "a/b/c", "./" is "". ".." is kept (the caller refuses it). */
static void clean_name(char *s)
{
	char *w = s, *r = s;

	while (*r) {
		char *c = r;
		size_t n;

		while (*r && *r != '/')
			r++;
		n = (size_t)(r - c);
		if (n && !(n == 1 && c[0] == '.')) {
			if (w != s)
				*w++ = '/';
			memmove(w, c, n);
			w += n;
		}
		while (*r == '/')
			r++;
	}
	*w = '\0';
}

/* Copy a fixed-size header field (maybe not NUL-terminated). */
static void field(char *dst, const char *src, size_t n)
{
	size_t k = strnlen(src, n);

	memcpy(dst, src, k);
	dst[k] = '\0';
}

/* ---- headers -------------------------------------------------------------------- */

static bool is_zero(const uint8_t *b)
{
	for (size_t i = 0; i < BLOCK; i++)
		if (b[i])
			return false;
	return true;
}

static bool checksum_ok(const uint8_t *b)
{
	uint64_t u = 0;
	int64_t s = 0, want;

	if (parse_num((const char *)b + 148, 8, false, 0, UINT32_MAX, &want) < 0)
		return false;
	for (size_t i = 0; i < BLOCK; i++) {
		uint8_t c = i >= 148 && i < 156 ? ' ' : b[i];

		u += c;
		s += (int8_t)c;
	}
	/* historic writers summed signed chars */
	return (int64_t)u == want || s == want;
}

static int entry_error(struct tar_reader *t, uint64_t at, struct err *e, const char *why)
{
	if (t->cur[0])
		return err_set(e, EINVAL, "tar header at byte %" PRIu64 " (after '%s'): %s", at,
			       t->cur, why);
	return err_set(e, EINVAL, "tar header at byte %" PRIu64 ": %s", at, why);
}

int tar_next(struct tar_reader *t, struct tar_entry *ent, struct err *e)
{
	uint8_t b[BLOCK];
	bool long_name = false, long_link = false, have_pax = false;
	int ret;

	if (t->end)
		return 0;
	/* what the caller left of the previous entry */
	ret = skip(t, t->data_left + t->pad, e);
	if (ret < 0)
		return ret;
	t->data_left = t->pad = 0;
	memset(ent, 0, sizeof(*ent));
	pax_reset(&t->local);

	for (;;) {
		uint64_t at = t->pos;
		ssize_t r = read_full(t, b, BLOCK, e);
		int64_t v;
		uint64_t size;
		char type;

		if (r < 0)
			return (int)r;
		if (r == 0 && !long_name && !long_link && !have_pax) {
			/* GNU tar accepts an archive without its end blocks */
			t->end = true;
			return 0;
		}
		if (r < BLOCK)
			return err_set(e, EIO, "truncated archive: a header after '%s' is cut short",
				       t->cur[0] ? t->cur : "(start)");
		if (is_zero(b)) {
			if (long_name || long_link || have_pax)
				return entry_error(t, at, e, "an extension header without its entry");
			/* the end is two zero blocks; one then the end of input is
			 * accepted too, as GNU tar does */
			r = read_full(t, b, BLOCK, e);
			if (r < 0)
				return (int)r;
			if (r != 0 && r != BLOCK)
				return err_set(e, EIO, "truncated archive: the end block is cut short");
			if (r == BLOCK && !is_zero(b))
				return entry_error(t, at, e, "a lone zero block before more headers");
			t->end = true;
			return 0;
		}
		if (!checksum_ok(b))
			return entry_error(t, at, e, "checksum mismatch (not a tar archive, or corrupt)");
		if (parse_num((const char *)b + 124, 12, false, 0, INT64_MAX, &v) < 0)
			return entry_error(t, at, e, "bad size field");
		size = (uint64_t)v;
		type = (char)b[156];

		switch (type) {
		case 'x':
		case 'g': {
			struct pax *x = type == 'x' ? &t->local : &t->global;

			if (type == 'x' && have_pax)
				return entry_error(t, at, e, "two pax headers for one entry");
			pax_reset(x);
			ret = read_ext(t, x, size, PAX_MAX, "pax header", e);
			if (ret == 0)
				ret = pax_parse(x, (size_t)size, e);
			if (ret < 0)
				return err_wrap(e, "tar header at byte %" PRIu64, at);
			if (type == 'x')
				have_pax = true;
			continue;
		}
		case 'L':
		case 'K': {
			char *dst = type == 'L' ? ent->name : ent->link;
			struct pax tmp = { 0 };

			if (type == 'L' ? long_name : long_link)
				return entry_error(t, at, e, "two GNU long names for one entry");
			ret = read_ext(t, &tmp, size, TAR_NAME_MAX - 1,
				       type == 'L' ? "GNU long name" : "GNU long link", e);
			if (ret == 0)
				memcpy(dst, tmp.buf, strlen(tmp.buf) + 1);
			free(tmp.buf);
			if (ret < 0)
				return ret;
			if (type == 'L')
				long_name = true;
			else
				long_link = true;
			continue;
		}
		default:
			break;
		}

		/* the entry itself */
		bool ustar = memcmp(b + 257, "ustar\0", 6) == 0;
		const struct pax *l = &t->local, *g = &t->global;

		if (l->has_path) {
			memcpy(ent->name, l->path, strlen(l->path) + 1);
		} else if (!long_name) {
			char nm[101], pre[156];

			field(nm, (const char *)b, 100);
			field(pre, (const char *)b + 345, 155);
			if (ustar && pre[0])
				snprintf(ent->name, sizeof(ent->name), "%s/%s", pre, nm);
			else
				memcpy(ent->name, nm, strlen(nm) + 1);
		}
		if (l->has_link)
			memcpy(ent->link, l->link, strlen(l->link) + 1);
		else if (!long_link)
			field(ent->link, (const char *)b + 157, 100);
		size_t nlen = strlen(ent->name);
		bool slash = nlen && ent->name[nlen - 1] == '/';

		switch (type) {
		case '0': case '\0': case '7':
			ent->type = slash ? TAR_DIR : TAR_FILE;     /* v7: a directory is a name with '/' */
			break;
		case '1': ent->type = TAR_HARDLINK; break;
		case '2': ent->type = TAR_SYMLINK; break;
		case '3': ent->type = TAR_CHAR; break;
		case '4': ent->type = TAR_BLOCK; break;
		case '5': ent->type = TAR_DIR; break;
		case '6': ent->type = TAR_FIFO; break;
		default:
			clean_name(ent->name);
			return err_set(e, ENOTSUP, "entry '%s': type '%c' (0x%02x) is not supported",
				       ent->name, type > 0x20 && type < 0x7f ? type : '?', (uint8_t)type);
		}
		clean_name(ent->name);
		if (ent->type == TAR_HARDLINK)
			clean_name(ent->link);
		memcpy(t->cur, ent->name, strlen(ent->name) + 1);

		if (parse_num((const char *)b + 100, 8, false, 0, 07777777, &v) < 0)
			return entry_error(t, at, e, "bad mode field");
		ent->mode = (uint32_t)v & 07777;
		if (l->has_uid || g->has_uid)
			ent->uid = l->has_uid ? l->uid : g->uid;
		else if (parse_num((const char *)b + 108, 8, false, 0, UINT32_MAX, &v) < 0)
			return entry_error(t, at, e, "bad uid field");
		else
			ent->uid = (uint32_t)v;
		if (l->has_gid || g->has_gid)
			ent->gid = l->has_gid ? l->gid : g->gid;
		else if (parse_num((const char *)b + 116, 8, false, 0, UINT32_MAX, &v) < 0)
			return entry_error(t, at, e, "bad gid field");
		else
			ent->gid = (uint32_t)v;
		if (l->has_mtime || g->has_mtime)
			ent->mtime = l->has_mtime ? l->mtime : g->mtime;
		else if (parse_num((const char *)b + 136, 12, true, INT64_MIN, INT64_MAX, &v) < 0)
			return entry_error(t, at, e, "bad mtime field");
		else
			ent->mtime = v;
		if (ent->type == TAR_CHAR || ent->type == TAR_BLOCK) {
			if (parse_num((const char *)b + 329, 8, false, 0, UINT32_MAX, &v) < 0)
				return entry_error(t, at, e, "bad devmajor field");
			ent->devmajor = (uint32_t)v;
			if (parse_num((const char *)b + 337, 8, false, 0, UINT32_MAX, &v) < 0)
				return entry_error(t, at, e, "bad devminor field");
			ent->devminor = (uint32_t)v;
		}
		if (l->has_size)
			size = l->size;
		/* as Go's archive/tar: links, devices, directories and fifos carry
		 * no data whatever their size field says */
		if (ent->type != TAR_FILE)
			size = 0;
		ent->size = size;
		ent->offset = t->pos;

		/* xattrs: the entry's own, then global ones it does not name */
		for (size_t i = 0; i < l->n_xattrs; i++)
			ent->xattrs[ent->n_xattrs++] = l->xattrs[i];
		for (size_t i = 0; i < g->n_xattrs; i++) {
			bool dup = false;

			for (size_t k = 0; k < l->n_xattrs; k++)
				dup |= strcmp(l->xattrs[k].name, g->xattrs[i].name) == 0;
			if (dup)
				continue;
			if (ent->n_xattrs == TAR_XATTRS_MAX)
				return entry_error(t, at, e, "too many xattrs");
			ent->xattrs[ent->n_xattrs++] = g->xattrs[i];
		}
		t->data_left = t->data_size = size;
		t->pad = (BLOCK - size % BLOCK) % BLOCK;
		return 1;
	}
}

static ssize_t data_read(void *ctx, void *p, size_t n, struct err *e)
{
	struct tar_reader *t = ctx;
	ssize_t r;

	if (n > t->data_left)
		n = (size_t)t->data_left;
	if (!n)
		return 0;
	r = t->in.read(t->in.ctx, p, n, e);
	if (r < 0)
		return r;
	if (r == 0)
		return err_set(e, EIO, "truncated archive: entry '%s' ends after %" PRIu64 " of %"
			       PRIu64 " bytes", t->cur, t->data_size - t->data_left, t->data_size);
	t->pos += (uint64_t)r;
	t->data_left -= (uint64_t)r;
	return r;
}

struct image_src tar_data(struct tar_reader *t)
{
	return (struct image_src){ .read = data_read, .ctx = t };
}
