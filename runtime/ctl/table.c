/* table.c - command output: aligned columns for people, JSON for programs. */
#include "runtime/ctl/ctl.h"

#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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
		char *copy = strdup(v ? v : "-");

		if (!copy)
			abort();
		t->cells[t->nrows * t->ncols + i] = copy;
	}
	va_end(ap);
	t->nrows++;
}

static size_t col_name_len(const char *c)
{
	size_t n = strlen(c);

	return n && c[n - 1] == '#' ? n - 1 : n;
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
	int w[ARRAY_SIZE(t->cols)];

	for (size_t c = 0; c < t->ncols; c++) {
		w[c] = (int)col_name_len(t->cols[c]);
		for (size_t r = 0; r < t->nrows; r++) {
			int l = (int)strlen(t->cells[r * t->ncols + c]);
			if (l > w[c])
				w[c] = l;
		}
	}
	for (size_t c = 0; c < t->ncols; c++)
		render_cell(out, t->cols[c], (int)col_name_len(t->cols[c]), w[c], c + 1 == t->ncols);
	for (size_t r = 0; r < t->nrows; r++)
		for (size_t c = 0; c < t->ncols; c++) {
			const char *v = t->cells[r * t->ncols + c];
			render_cell(out, v, (int)strlen(v), w[c], c + 1 == t->ncols);
		}
}

static void render_json(const struct table *t, struct buf *out)
{
	buf_puts(out, "[");
	for (size_t r = 0; r < t->nrows; r++) {
		buf_puts(out, r ? ",{" : "{");
		for (size_t c = 0; c < t->ncols; c++) {
			const char *name = t->cols[c], *v = t->cells[r * t->ncols + c];
			size_t n = col_name_len(name);
			bool numeric = name[n] == '#';
			char key[64];
			size_t k;

			for (k = 0; k < n && k + 1 < sizeof(key); k++)
				key[k] = name[k] == ' ' ? '_' : (char)tolower((unsigned char)name[k]);
			key[k] = '\0';
			if (c)
				buf_puts(out, ",");
			buf_json_string(out, key);
			buf_puts(out, ":");
			if (numeric && strcmp(v, "-") != 0)
				buf_puts(out, v);
			else if (numeric)
				buf_puts(out, "null");
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
