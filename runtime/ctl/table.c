/* table.c - command output: aligned columns for people, JSON for programs. */
#include "runtime/ctl/ctl.h"

#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* A column's spec taken apart: TITLE[#|[]][=key][?null] (ctl.h). */
struct col {
	int title_len;
	enum { COL_STRING, COL_NUMBER, COL_LIST } type;
	char key[48];
	const char *null_text;      /* text for an absent value; "-" */
};

static void col_parse(const char *spec, struct col *c)
{
	size_t n = strcspn(spec, "#[=?");
	const char *p = spec + n, *key = NULL, *nul = NULL;
	size_t key_len = 0, k;

	c->title_len = (int)n;
	c->type = COL_STRING;
	c->null_text = "-";
	while (*p) {
		if (*p == '#') {
			c->type = COL_NUMBER;
			p++;
		} else if (!strncmp(p, "[]", 2)) {
			c->type = COL_LIST;
			p += 2;
		} else if (*p == '=') {
			key = ++p;
			key_len = strcspn(p, "?");
			p += key_len;
		} else if (*p == '?') {
			nul = p + 1;
			break;
		} else {
			p++;
		}
	}
	if (nul)
		c->null_text = nul;
	if (!key) {
		key = spec;
		key_len = n;
	}
	for (k = 0; k < key_len && k + 1 < sizeof(c->key); k++)
		c->key[k] = key[k] == ' ' ? '_' : (char)tolower((unsigned char)key[k]);
	c->key[k] = '\0';
}

void table_init(struct table *t, size_t ncols, const char *const *cols)
{
	memset(t, 0, sizeof(*t));
	t->ncols = ncols < ARRAY_SIZE(t->cols) ? ncols : ARRAY_SIZE(t->cols);
	for (size_t i = 0; i < t->ncols; i++)
		t->cols[i] = cols[i];
}

void table_add(struct table *t, ...)
{
	char **cells = realloc(t->cells, (t->nrows + 1) * t->ncols * sizeof(*cells));
	va_list ap;

	if (!cells)
		abort();
	t->cells = cells;
	va_start(ap, t);
	for (size_t i = 0; i < t->ncols; i++) {
		const char *v = va_arg(ap, const char *);
		char *copy = NULL;

		/* absent stays absent: "-" for people, null for programs */
		if (v && *v && !(copy = strdup(v)))
			abort();
		t->cells[t->nrows * t->ncols + i] = copy;
	}
	va_end(ap);
	t->nrows++;
}

static void render_cell(struct buf *out, const char *v, int vlen, int width, bool last)
{
	if (last)
		buf_printf(out, "%.*s\n", vlen, v);
	else
		buf_printf(out, "%-*.*s  ", width, vlen, v);
}

static void render_text(const struct table *t, struct buf *out)
{
	struct col cs[ARRAY_SIZE(t->cols)];
	int w[ARRAY_SIZE(t->cols)];

	for (size_t c = 0; c < t->ncols; c++) {
		col_parse(t->cols[c], &cs[c]);
		w[c] = cs[c].title_len;
		for (size_t r = 0; r < t->nrows; r++) {
			const char *v = t->cells[r * t->ncols + c];
			int l = (int)strlen(v ? v : cs[c].null_text);

			if (l > w[c])
				w[c] = l;
		}
	}
	for (size_t c = 0; c < t->ncols; c++)
		render_cell(out, t->cols[c], cs[c].title_len, w[c], c + 1 == t->ncols);
	for (size_t r = 0; r < t->nrows; r++)
		for (size_t c = 0; c < t->ncols; c++) {
			const char *v = t->cells[r * t->ncols + c];

			if (!v)
				v = cs[c].null_text;
			render_cell(out, v, (int)strlen(v), w[c], c + 1 == t->ncols);
		}
}

/* A comma-separated cell as an array of strings; [] when absent. */
static void render_list(struct buf *out, const char *v)
{
	buf_puts(out, "[");
	for (bool first = true; v && *v; first = false) {
		size_t n = strcspn(v, ",");
		char *item = strndup(v, n);

		if (!item)
			abort();
		buf_puts(out, first ? "" : ",");
		buf_json_string(out, item);
		free(item);
		v += n + (v[n] == ',');
	}
	buf_puts(out, "]");
}

static void render_json(const struct table *t, struct buf *out)
{
	struct col cs[ARRAY_SIZE(t->cols)];

	for (size_t c = 0; c < t->ncols; c++)
		col_parse(t->cols[c], &cs[c]);
	buf_puts(out, "[");
	for (size_t r = 0; r < t->nrows; r++) {
		buf_puts(out, r ? ",{" : "{");
		for (size_t c = 0; c < t->ncols; c++) {
			const char *v = t->cells[r * t->ncols + c];

			if (c)
				buf_puts(out, ",");
			buf_json_string(out, cs[c].key);
			buf_puts(out, ":");
			if (cs[c].type == COL_LIST)
				render_list(out, v);
			else if (!v || (cs[c].type == COL_NUMBER && !strcmp(v, "-")))
				buf_puts(out, "null");
			else if (cs[c].type == COL_NUMBER)
				buf_puts(out, v);
			else
				buf_json_string(out, v);
		}
		buf_puts(out, "}");
	}
	buf_puts(out, "]\n");
}
void table_render(const struct table *t, bool json, struct buf *out)
{
	if (json)
		render_json(t, out);
	else
		render_text(t, out);
}

void table_free(struct table *t)
{
	for (size_t i = 0; i < t->nrows * t->ncols; i++)
		free(t->cells[i]);
	free(t->cells);
	t->cells = NULL;
	t->nrows = 0;
}

char *cli_duration(char *buf, size_t size, uint64_t seconds)
{
	unsigned long long s = seconds, d = s / 86400, h = s / 3600 % 24, m = s / 60 % 60;

	if (d)
		snprintf(buf, size, "%llud %lluh %llum %llus", d, h, m, s % 60);
	else if (h)
		snprintf(buf, size, "%lluh %llum %llus", h, m, s % 60);
	else if (m)
		snprintf(buf, size, "%llum %llus", m, s % 60);
	else
		snprintf(buf, size, "%llus", s);
	return buf;
}

void cli_print_error(bool json, const char *msg, const struct buf *details)
{
	const char *p = details && details->len ? details->data : "", *end = p + strlen(p);
	struct buf out;

	if (!json) {
		fprintf(stderr, "berth: %s\n%s", msg, p);
		return;
	}
	buf_init(&out);
	buf_puts(&out, "{\"error\":");
	buf_json_string(&out, msg);
	buf_puts(&out, ",\"details\":[");
	for (bool first = true; p < end; first = false) {
		size_t n = strcspn(p, "\n");
		char *line = strndup(p, n);

		if (!line)
			abort();
		buf_puts(&out, first ? "" : ",");
		buf_json_string(&out, line);
		free(line);
		p += n + (p[n] == '\n');
	}
	buf_puts(&out, "]}\n");
	fwrite(out.data, 1, out.len, stdout);
	buf_free(&out);
}
