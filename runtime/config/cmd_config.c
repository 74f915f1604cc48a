/* cmd_config.c - `berth config check [-c DIR]`: validate without applying;
 * `berth config keys`: every key of every section, from the key tables. */
#include "runtime/config/config.h"
#include "runtime/runtime.h"

#include <stdio.h>
#include <string.h>

/* A JSON string literal on stdout (the same escaping as every other reply). */
static void json_str(FILE *f, const char *s)
{
	struct buf b;

	buf_init(&b);
	buf_json_string(&b, s);
	fputs(b.data, f);
	buf_free(&b);
}

/* "errors":[{file, line, column, message}, ...] */
static void json_errors(const char *name, const struct config_errors *errs)
{
	printf(",\"%s\":[", name);
	for (size_t i = 0; i < errs->n; i++) {
		printf("%s{\"file\":", i ? "," : "");
		json_str(stdout, errs->v[i].file);
		printf(",\"line\":%d,\"column\":%d,\"message\":", errs->v[i].line,
		       errs->v[i].col);
		json_str(stdout, errs->v[i].msg);
		printf("}");
	}
	printf("]");
}

static int config_check(const char *dir, bool json)
{
	struct config_errors errs = { 0 }, warnings = { 0 };
	struct config *cfg = NULL;
	char sum[128];
	int ret;

	ret = config_load(dir, NULL, &cfg, &errs);
	if (ret == 0)
		config_preflight(cfg, &errs, &warnings);
	/* errors and warnings go to stdout: they are the command's answer */
	if (json) {
		printf("{\"ok\":%s", errs.n ? "false" : "true");
		if (cfg) {
			printf(",\"source\":");
			json_str(stdout, cfg->source);
			printf(",\"networks\":%zu,\"containers\":%zu,\"policies\":%zu",
			       cfg->n_networks, cfg->n_containers, cfg->n_policies);
		}
		if (errs.n)
			json_errors("errors", &errs);
		if (warnings.n)
			json_errors("warnings", &warnings);
		printf("}\n");
	} else {
		for (size_t i = 0; i < errs.n; i++)
			printf("%s\n", errs.v[i].msg);
		for (size_t i = 0; i < warnings.n; i++)
			printf("warning: %s\n", warnings.v[i].msg);
		if (errs.n)
			printf("%zu error%s\n", errs.n, errs.n == 1 ? "" : "s");
		else
			printf("ok: %s (%s)\n", config_summary(cfg, sum, sizeof(sum)), cfg->source);
	}
	ret = errs.n ? EXIT_FAIL : EXIT_OK;
	config_free(cfg);
	config_errors_free(&errs);
	config_errors_free(&warnings);
	return ret;
}

/* ,"NAME":"VALUE" after sep; null for NULL */
static void json_field(struct buf *b, const char *sep, const char *name, const char *v)
{
	buf_printf(b, "%s\"%s\":", sep, name);
	if (v)
		buf_json_string(b, v);
	else
		buf_puts(b, "null");
}

/* One section after another, as config_doc lists them; a later issue turns
 * the JSON into berth.ini(5). */
static int config_keys(bool json)
{
	const char *section = "";
	struct cfg_key_doc d;
	char value[128];
	struct buf b;

	buf_init(&b);
	for (size_t i = 0; config_doc(i, &d, value, sizeof(value)); i++) {
		bool first = strcmp(section, d.section) != 0;

		section = d.section;
		if (!json) {
			if (first)
				buf_printf(&b, "%s[%s] in %s\n", i ? "\n" : "", d.section, d.file);
			buf_printf(&b, "  %-13s %-8s %-15s %s%s\n      %s\n", d.key, d.type,
				   d.def ? d.def : d.required ? "required" : "-", d.value,
				   d.repeat ? " (may repeat)" : "", d.help);
			continue;
		}
		if (first) {
			json_field(&b, !i ? "{\"sections\":[{" : "]},{", "file", d.file);
			json_field(&b, ",", "section", d.section);
			buf_puts(&b, ",\"keys\":[");
		}
		json_field(&b, first ? "{" : ",{", "key", d.key);
		json_field(&b, ",", "type", d.type);
		json_field(&b, ",", "value", d.value);
		json_field(&b, ",", "default", d.def);
		buf_printf(&b, ",\"required\":%s,\"repeat\":%s", d.required ? "true" : "false",
			   d.repeat ? "true" : "false");
		json_field(&b, ",", "help", d.help);
		buf_puts(&b, "}");
	}
	if (json)
		buf_puts(&b, "]}]}\n");
	fputs(b.data, stdout);
	buf_free(&b);
	return EXIT_OK;
}

int config_cmd(const char *dir, bool json, int argc, char **argv)
{
	if (argc == 2 && !strcmp(argv[1], "keys"))
		return config_keys(json);
	if (argc < 2 || strcmp(argv[1], "check") != 0)
		goto usage;
	for (int i = 2; i < argc; i++) {
		if (!strcmp(argv[i], "-c") && i + 1 < argc)
			dir = argv[++i];
		else
			goto usage;
	}
	if (!dir)
		dir = config_default_dir();
	return config_check(dir, json);
usage:
	fprintf(stderr, "usage: berth config check [-c DIR]\n       berth config keys\n");
	return EXIT_USAGE;
}
