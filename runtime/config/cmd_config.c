/* cmd_config.c - `berth config check [-c DIR]`: validate without applying;
 * `berth config keys`: every key of every section, from the key tables. */
#include "runtime/config/config.h"
#include "runtime/runtime.h"
#include "store/store.h"

#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <sys/resource.h>

/* A JSON string literal on stdout (the same escaping as every other reply). */
static void json_str(FILE *f, const char *s)
{
	struct buf b;

	buf_init(&b);
	buf_json_string(&b, s);
	fputs(b.data, f);
	buf_free(&b);
}

/* The message of a config error without the "FILE:LINE[:COL]: " it starts
 * with (file, line and column have their own fields in JSON). */
static const char *bare_message(const struct config_error *ce)
{
	char prefix[600];
	int n;

	if (!ce->file || !*ce->file || !ce->line)
		return ce->msg;
	n = ce->col ? snprintf(prefix, sizeof(prefix), "%s:%d:%d: ", ce->file, ce->line, ce->col)
		    : snprintf(prefix, sizeof(prefix), "%s:%d: ", ce->file, ce->line);
	if (n > 0 && (size_t)n < sizeof(prefix) && !strncmp(ce->msg, prefix, (size_t)n))
		return ce->msg + n;
	return ce->msg;
}

/* "errors":[{file, line, column, message}, ...]; absent file, line or
 * column null. */
static void json_errors(const char *name, const struct config_errors *errs)
{
	printf(",\"%s\":[", name);
	for (size_t i = 0; i < errs->n; i++) {
		const struct config_error *ce = &errs->v[i];

		printf("%s{\"file\":", i ? "," : "");
		if (ce->file && *ce->file)
			json_str(stdout, ce->file);
		else
			printf("null");
		if (ce->line)
			printf(",\"line\":%d", ce->line);
		else
			printf(",\"line\":null");
		if (ce->col)
			printf(",\"column\":%d", ce->col);
		else
			printf(",\"column\":null");
		printf(",\"message\":");
		json_str(stdout, bare_message(ce));
		printf("}");
	}
	printf("]");
}

/* A static ip or ip6 that the daemon's store shows another container
 * holding (it got it dynamically before the static request existed): the
 * reload applies, and that container keeps the address while its process
 * runs, so say who holds it and what frees it. No store yet: nothing held. */
static void config_check_held(const struct config *cfg, struct config_errors *warnings)
{
	struct store *st = NULL;

	if (store_open_ro(&st, cfg->daemon.state_dir, &(struct err){ 0 }) < 0)
		return;
	for (size_t i = 0; i < cfg->n_containers; i++) {
		const struct cfg_container *c = cfg->containers[i];

		for (int v6 = 0; v6 < 2; v6++) {
			const struct ip_addr *ip = v6 ? &c->ip6 : &c->ip;
			char holder[STORE_NAME_MAX], a[IP_STRLEN], *msg;
			struct store_container sc = { 0 };
			const char *net = NULL;

			if (!(v6 ? c->has_ip6 : c->has_ip))
				continue;
			for (size_t k = 0; !net && k < c->n_networks; k++) {
				const struct cfg_network *n = config_network(cfg, c->networks[k]);

				if (n && ip_prefix_contains(v6 ? &n->subnet6 : &n->subnet, ip))
					net = n->name;
			}
			if (!net || ipam_holder(st, net, ip, holder, NULL) != 1 ||
			    !strcasecmp(holder, c->name))
				continue;
			store_container_get(st, holder, &sc, NULL);
			if (asprintf(&msg, "%s:%d: [container] %s: %s is held by container '%s' "
				     "(allocated dynamically); %s", c->file, v6 ? c->lines.ip6 : c->lines.ip,
				     v6 ? "ip6" : "ip", ip_format(ip, a), holder,
				     !strcmp(sc.state, "running") ? "restart or remove it to free it, "
				     "or choose another address" : "it gets another address when the "
				     "configuration is applied") >= 0)
				config_errors_add(warnings, c->file, v6 ? c->lines.ip6 : c->lines.ip, msg);
		}
	}
	store_close(st);
}

/* The descriptor limit the daemon would run with if started from here: it
 * raises its soft limit to the hard one (runtime/daemon.c). 0: none. */
static unsigned long long nofile_limit(void)
{
	struct rlimit rl;

	if (getrlimit(RLIMIT_NOFILE, &rl) < 0 || rl.rlim_max == RLIM_INFINITY)
		return 0;
	return (unsigned long long)rl.rlim_max;
}

static int config_check(const char *dir, bool json)
{
	struct config_errors errs = { 0 }, warnings = { 0 };
	struct config *cfg = NULL;
	char sum[128];
	int ret;

	ret = config_load(dir, NULL, &cfg, &errs);
	if (ret == 0) {
		config_preflight(cfg, NULL, &errs, &warnings);
		config_check_held(cfg, &warnings);
		config_warnings(cfg, nofile_limit(), &warnings);
	}
	/* errors and warnings go to stdout: they are the command's answer */
	if (json) {
		/* the same keys whatever the outcome: null what is not known */
		printf("{\"valid\":%s,\"source\":", errs.n ? "false" : "true");
		if (cfg) {
			json_str(stdout, cfg->source);
			printf(",\"networks\":%zu,\"containers\":%zu,\"policies\":%zu",
			       cfg->n_networks, cfg->n_containers, cfg->n_policies);
		} else {
			printf("null,\"networks\":null,\"containers\":null,\"policies\":null");
		}
		json_errors("errors", &errs);
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
