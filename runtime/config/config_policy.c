/* config_policy.c - policies.d/NAME.ini: selectors, peers, ports and rules
 * (DESIGN §3), with errors at file:line:column, and selector_match. */
#include "runtime/config/config_int.h"

#include <ctype.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <strings.h>

/* ---- selectors ---------------------------------------------------------- */

static bool key_char(char ch)
{
	return isalnum((unsigned char)ch) || ch == '.' || ch == '_' || ch == '-' || ch == '/';
}

static bool value_char(char ch)
{
	return isalnum((unsigned char)ch) || ch == '.' || ch == '_' || ch == '-';
}

static bool is_reserved(const char *k)
{
	return !strcmp(k, "all") || !strcmp(k, "host") || !strcmp(k, "world");
}

/* e gets the message, *col the offset of the fault in s. */
static int sel_fail(struct err *e, size_t *col, size_t off, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));
static int sel_fail(struct err *e, size_t *col, size_t off, const char *fmt, ...)
{
	va_list ap;

	if (col)
		*col = off;
	if (e) {
		e->code = EINVAL;
		va_start(ap, fmt);
		vsnprintf(e->msg, sizeof(e->msg), fmt, ap);
		va_end(ap);
	}
	return -EINVAL;
}

static const char *word_at(struct cfg_alloc *m, const char *p, bool (*ok)(char))
{
	size_t n = 0;

	while (p[n] && ok(p[n]))
		n++;
	return cfg_strndup(m, p, n);
}

int selector_parse(struct cfg_alloc *m, const char *s, struct selector *out, size_t *col,
		   struct err *e)
{
	const char *p = cfg_skip_ws(s), *why;
	size_t n = strlen(p);

	memset(out, 0, sizeof(*out));
	while (n && isspace((unsigned char)p[n - 1]))
		n--;
	if (n == 3 && !strncmp(p, "all", 3)) {
		out->all = true;
		return 0;
	}
	if (!n)
		return sel_fail(e, col, (size_t)(p - s), "empty selector");
	for (;;) {
		struct sel_term t = { 0 };
		const char *ks;

		p = cfg_skip_ws(p);
		if (*p == '!') {
			p = cfg_skip_ws(p + 1);
			t.op = SEL_NOT_EXISTS;
		}
		ks = p;
		t.key = word_at(m, p, key_char);
		if (!*t.key)
			return *p ? sel_fail(e, col, (size_t)(p - s), "unexpected '%c': expected "
					     "a label key", *p) :
				    sel_fail(e, col, (size_t)(p - s), "expected a label key");
		p = cfg_skip_ws(p + strlen(t.key));
		if (t.op != SEL_NOT_EXISTS) {
			if (!strncmp(p, "==", 2) || *p == '=' || !strncmp(p, "!=", 2)) {
				t.op = *p == '!' ? SEL_NE : SEL_EQ;
				p += *p == '!' || p[1] == '=' ? 2 : 1;
				p = cfg_skip_ws(p);
				const char *v = word_at(m, p, value_char);

				if (!cfg_label_value_valid(v, &why))
					return sel_fail(e, col, (size_t)(p - s), "'%s': %s", v, why);
				*CFG_PUSH(m, t.values, t.n_values) = v;
				p = cfg_skip_ws(p + strlen(v));
			} else if ((!strncmp(p, "in", 2) && !key_char(p[2])) ||
				   (!strncmp(p, "notin", 5) && !key_char(p[5]))) {
				const char *open;

				t.op = p[0] == 'i' ? SEL_IN : SEL_NOTIN;
				p = cfg_skip_ws(p + (t.op == SEL_IN ? 2 : 5));
				if (*p != '(')
					return sel_fail(e, col, (size_t)(p - s), "expected '(' after "
							"'%s'", t.op == SEL_IN ? "in" : "notin");
				open = p++;
				for (;;) {
					p = cfg_skip_ws(p);
					const char *v = word_at(m, p, value_char);

					if (!cfg_label_value_valid(v, &why))
						return sel_fail(e, col, (size_t)(p - s), "'%s': %s",
								v, why);
					p = cfg_skip_ws(p + strlen(v));
					if (*v || *p == ',')
						*CFG_PUSH(m, t.values, t.n_values) = v;
					if (*p == ',') {
						p++;
						continue;
					}
					if (*p == ')')
						break;
					if (!*p)
						return sel_fail(e, col, (size_t)(open - s), "'(' is "
								"not closed");
					return sel_fail(e, col, (size_t)(p - s), "unexpected '%c' "
							"in the set: expected ',' or ')'", *p);
				}
				if (!t.n_values)
					return sel_fail(e, col, (size_t)(open - s), "the set is empty");
				p = cfg_skip_ws(p + 1);
			} else if (*p == ',' || !*p) {
				t.op = SEL_EXISTS;
			} else {
				return sel_fail(e, col, (size_t)(p - s), "unexpected '%c' after '%s': "
						"expected =, !=, in, notin or ','", *p, t.key);
			}
		}
		if (is_reserved(t.key)) {
			if (!strcmp(t.key, "all"))
				return sel_fail(e, col, (size_t)(ks - s), "'all' stands alone: it "
						"cannot be combined with other terms");
			return sel_fail(e, col, (size_t)(ks - s), "'%s' is a reserved word, not a "
					"label key: write it alone on its line", t.key);
		}
		if (!cfg_label_key_valid(t.key, &why))
			return sel_fail(e, col, (size_t)(ks - s), "'%s': %s", t.key, why);
		*CFG_PUSH(m, out->terms, out->n_terms) = t;
		if (!*p)
			return 0;
		if (*p != ',')
			return sel_fail(e, col, (size_t)(p - s), "unexpected '%c': terms are "
					"separated by ','", *p);
		p = cfg_skip_ws(p + 1);
		if (!*p)
			return sel_fail(e, col, (size_t)(p - s), "expected a term after ','");
	}
}

const char *config_label_get(const struct label *l, size_t n, const char *key)
{
	for (size_t i = 0; i < n; i++)
		if (!strcmp(l[i].key, key))
			return l[i].value;
	return NULL;
}

static bool in_set(const struct sel_term *t, const char *v)
{
	for (size_t i = 0; i < t->n_values; i++)
		if (!strcmp(t->values[i], v))
			return true;
	return false;
}

void selector_format(const struct selector *s, struct buf *b)
{
	static const char *const ops[] = { "=", "!=", " in ", " notin ", "", "!" };

	if (s->all) {
		buf_puts(b, "all");
		return;
	}
	for (size_t i = 0; i < s->n_terms; i++) {
		const struct sel_term *t = &s->terms[i];
		bool set = t->op == SEL_IN || t->op == SEL_NOTIN;

		buf_printf(b, "%s%s%s%s%s", i ? "," : "", t->op == SEL_NOT_EXISTS ? "!" : "",
			   t->key, t->op == SEL_NOT_EXISTS ? "" : ops[t->op], set ? "(" : "");
		for (size_t v = 0; v < t->n_values; v++)
			buf_printf(b, "%s%s", v ? "," : "", t->values[v]);
		buf_puts(b, set ? ")" : "");
	}
}

bool selector_match(const struct selector *s, const struct label *labels, size_t n)
{
	if (s->all)
		return true;
	for (size_t i = 0; i < s->n_terms; i++) {
		const struct sel_term *t = &s->terms[i];
		const char *v = config_label_get(labels, n, t->key);
		bool ok = false;

		switch (t->op) {
		case SEL_EQ: ok = v && !strcmp(v, t->values[0]); break;
		case SEL_NE: ok = !v || strcmp(v, t->values[0]); break;
		case SEL_IN: ok = v && in_set(t, v); break;
		case SEL_NOTIN: ok = !v || !in_set(t, v); break;
		case SEL_EXISTS: ok = v; break;
		case SEL_NOT_EXISTS: ok = !v; break;
		}
		if (!ok)
			return false;
	}
	return true;
}

/* ---- ports -------------------------------------------------------------- */

int port_match_parse(const char *s, struct port_match *out, struct err *e)
{
	const char *slash = strchr(s, '/');
	char a[16], b[16];
	unsigned long long x, y;
	size_t n = slash ? (size_t)(slash - s) : strlen(s);
	const char *dash;
	int proto;

	memset(out, 0, sizeof(*out));
	out->proto = IPPROTO_TCP;
	if (!slash && (proto = cfg_parse_proto(s)) > 0) {
		out->proto = (uint8_t)proto;
		out->any_port = true;
		return 0;
	}
	if (slash) {
		proto = cfg_parse_proto(slash + 1);
		if (proto < 0)
			return err_set(e, EINVAL, "'%s': protocol must be tcp, udp or sctp", s);
		out->proto = (uint8_t)proto;
	}
	dash = memchr(s, '-', n);
	if (n >= sizeof(a) || (!dash && !n))
		goto bad;
	if (dash) {
		snprintf(a, sizeof(a), "%.*s", (int)(dash - s), s);
		snprintf(b, sizeof(b), "%.*s", (int)(n - (size_t)(dash - s) - 1), dash + 1);
	} else {
		snprintf(a, sizeof(a), "%.*s", (int)n, s);
		snprintf(b, sizeof(b), "%s", a);
	}
	if (!cfg_parse_uint(a, 65535, &x) || !cfg_parse_uint(b, 65535, &y))
		goto bad;
	if (!x || !y)
		return err_set(e, EINVAL, "'%s': port 0 is not a port (1 to 65535)", s);
	if (x > y)
		return err_set(e, EINVAL, "'%s': the range starts after it ends", s);
	out->first = (uint16_t)x;
	out->last = (uint16_t)y;
	return 0;
bad:
	return err_set(e, EINVAL, "'%s': expected PORT, PORT/PROTO, START-END/PROTO or "
		       "tcp, udp, sctp (ports are 1 to 65535)", s);
}

/* ---- peers -------------------------------------------------------------- */

static void do_peer(struct cfg_ctx *c, const struct ini_sect *s, const struct ini_ent *e,
		    struct rule *r)
{
	const char *v = e->val;
	struct peer pe = { .line = e->line };
	size_t col = 0;
	struct err er = { 0 };

	if (!strcmp(v, "all") || !strcmp(v, "host") || !strcmp(v, "world")) {
		pe.kind = v[0] == 'a' ? PEER_ALL : v[0] == 'h' ? PEER_HOST : PEER_WORLD;
	} else if (!strncmp(v, "cidr:", 5)) {
		const char *p = cfg_skip_ws(v + 5);
		char tok[IP_PREFIX_STRLEN + 8];
		char pb[IP_PREFIX_STRLEN];

		pe.kind = PEER_CIDR;
		for (int i = 0; *p; i++) {
			size_t tl = strcspn(p, " \t,");
			size_t off = (size_t)(p - v);
			struct ip_prefix x;

			if (tl >= sizeof(tok)) {
				cfg_err_key(c, s, e, (long)off, "'%.*s' is not a CIDR", (int)tl, p);
				return;
			}
			memcpy(tok, p, tl);
			tok[tl] = '\0';
			p = cfg_skip_ws(p + tl);
			while (*p == ',')
				p = cfg_skip_ws(p + 1);
			if (i == 1) {
				if (strcmp(tok, "except")) {
					cfg_err_key(c, s, e, (long)off, "unexpected '%s' after the "
						    "CIDR: expected except", tok);
					return;
				}
				if (!*p) {
					cfg_err_key(c, s, e, (long)off, "expected CIDRs after except");
					return;
				}
				continue;
			}
			if (ip_prefix_parse(tok, &x, &er) < 0) {
				cfg_err_key(c, s, e, (long)off, "%s", er.msg);
				return;
			}
			if (i == 0) {
				pe.cidr = x;
				continue;
			}
			if (x.addr.family != pe.cidr.addr.family) {
				cfg_err_key(c, s, e, (long)off, "except %s is IPv%d but the CIDR "
					    "is IPv%d", tok, x.addr.family == AF_INET ? 4 : 6,
					    pe.cidr.addr.family == AF_INET ? 4 : 6);
				return;
			}
			if (!ip_prefix_contains_prefix(&pe.cidr, &x)) {
				cfg_err_key(c, s, e, (long)off, "except %s is not inside %s", tok,
					    ip_prefix_format(&pe.cidr, pb));
				return;
			}
			if (x.len == pe.cidr.len) {
				cfg_err_key(c, s, e, (long)off, "except %s is the whole CIDR", tok);
				return;
			}
			*CFG_PUSH(c->mem, pe.except, pe.n_except) = x;
		}
		if (!pe.cidr.addr.family) {
			cfg_err_key(c, s, e, 5, "expected cidr:ADDRESS/LENGTH");
			return;
		}
	} else {
		size_t wl = strcspn(v, " \t,:=!(");

		if (v[wl] == ':') {
			cfg_err_key(c, s, e, 0, "unknown peer kind '%.*s:' (expected a selector, "
				    "cidr:A/B, host, world or all)", (int)wl, v);
			return;
		}
		pe.kind = PEER_SELECTOR;
		if (selector_parse(c->mem, v, &pe.sel, &col, &er) < 0) {
			cfg_err_key(c, s, e, (long)col, "%s", er.msg);
			return;
		}
	}
	*CFG_PUSH(c->mem, r->peers, r->n_peers) = pe;
}

/* from (ingress) and to (egress): one peer per line */
static void peer_key(struct cfg_ctx *c, const struct ini_sect *s, const struct ini_ent *e,
		     struct rule *r, int dir)
{
	bool in = r->dir == POLICY_INGRESS;

	if (r->dir == dir)
		do_peer(c, s, e, r);
	else
		cfg_error(c, c->file, c->file_idx, e->line, 0, "[%s] '%s' is for %s rules: an %s "
			  "rule takes '%s' (and ports)", s->name, e->key, in ? "egress" : "ingress",
			  in ? "ingress" : "egress", in ? "from" : "to");
}

static void parse_from(struct cfg_ctx *c, const struct ini_sect *s, const struct ini_ent *e,
		       void *obj)
{
	peer_key(c, s, e, obj, POLICY_INGRESS);
}

static void parse_to(struct cfg_ctx *c, const struct ini_sect *s, const struct ini_ent *e,
		     void *obj)
{
	peer_key(c, s, e, obj, POLICY_EGRESS);
}

static void port_item(struct cfg_ctx *c, const struct ini_sect *s, const struct ini_ent *e,
		      const struct cfg_item *it, void *obj)
{
	struct rule *r = obj;
	struct port_match pm;
	struct err er = { 0 };

	if (!*it->s)
		cfg_err_key(c, s, e, (long)it->off, "empty item in the list");
	else if (port_match_parse(it->s, &pm, &er) < 0)
		cfg_err_key(c, s, e, (long)it->off, "%s", er.msg);
	else
		*CFG_PUSH(c->mem, r->ports, r->n_ports) = pm;
}

/* obj: struct rule; one table for [ingress NAME] and [egress NAME], whose
 * peer keys differ */
static const struct cfg_key rule_keys[] = {
	{ "from", CFG_TEXT, CFG_REPEAT, "SELECTOR, cidr:CIDR [except CIDR ...], host, world or all",
	  .parse = parse_from,
	  .help = "ingress: a peer that may connect; lines are ORed (none: every peer)" },
	{ "to", CFG_TEXT, CFG_REPEAT, "SELECTOR, cidr:CIDR [except CIDR ...], host, world or all",
	  .parse = parse_to,
	  .help = "egress: a peer that may be reached; lines are ORed (none: every peer)" },
	{ "ports", CFG_LIST, .syntax = "PORT[-END][/PROTO] or PROTO, ...", .item = port_item,
	  .help = "what the peers may use: tcp by default (none: every port and protocol)" },
};
const struct cfg_section cfg_rule_section = { "policies.d/NAME.ini", "ingress|egress NAME",
	rule_keys, ARRAY_SIZE(rule_keys) };

static void parse_select(struct cfg_ctx *c, const struct ini_sect *s, const struct ini_ent *e,
			 void *obj)
{
	struct policy *pol = obj;
	struct err er = { 0 };
	size_t col;

	if (!strcmp(e->val, "host") || !strcmp(e->val, "world"))
		cfg_err_key(c, s, e, 0, "'%s' is a peer, not a selector: select takes label "
			    "terms or all", e->val);
	else if (selector_parse(c->mem, e->val, &pol->select, &col, &er) < 0)
		cfg_err_key(c, s, e, (long)col, "%s", er.msg);
}

static void types_item(struct cfg_ctx *c, const struct ini_sect *s, const struct ini_ent *e,
		       const struct cfg_item *it, void *obj)
{
	struct policy *pol = obj;
	unsigned t = !strcmp(it->s, "ingress") ? POLICY_INGRESS :
		     !strcmp(it->s, "egress") ? POLICY_EGRESS : 0;

	pol->types_given = true;
	c->types_line = e->line;
	if (!t)
		cfg_err_key(c, s, e, (long)it->off, "'%s': expected ingress and/or egress", it->s);
	else if (pol->types & t)
		cfg_err_key(c, s, e, (long)it->off, "'%s' is listed twice", it->s);
	pol->types |= t;
}

/* obj: struct policy */
static const struct cfg_key policy_keys[] = {
	{ "select", CFG_TEXT, CFG_BAD_IS_GIVEN, "SELECTOR or all", .parse = parse_select,
	  .missing = "which containers the policy applies to; select = all for every one",
	  .help = "the containers the policy applies to, by their labels" },
	{ "types", CFG_LIST, .syntax = "ingress, egress", .item = types_item,
	  .help = "directions isolated even without a rule (default: those of its rules)" },
};
const struct cfg_section cfg_policy_section = { "policies.d/NAME.ini", "policy", policy_keys,
	ARRAY_SIZE(policy_keys) };

/* ---- the file ----------------------------------------------------------- */

bool cfg_valid_rule_name(const char *s)
{
	size_t n = strlen(s);

	if (!n || n > 40 || !isalnum((unsigned char)s[0]))
		return false;
	for (size_t i = 0; i < n; i++)
		if (!isalnum((unsigned char)s[i]) && !strchr("-_.", s[i]))
			return false;
	return true;
}

static void do_rule_sect(struct cfg_ctx *c, const struct ini_sect *s, int dir,
			 const char *name, struct policy *pol)
{
	struct rule *r;

	cfg_check_keys(c, s, &cfg_rule_section);
	for (size_t i = 0; i < pol->n_rules; i++)
		if (!strcmp(pol->rules[i].name, name)) {
			cfg_err_sect(c, s, "rule name '%s' is also used on line %d", name,
				     pol->rules[i].line);
			return;
		}
	r = CFG_PUSH(c->mem, pol->rules, pol->n_rules);
	r->dir = dir;
	r->name = cfg_strdup(c->mem, name);
	r->line = s->line;
	cfg_parse_keys(c, s, &cfg_rule_section, r);
}

void cfg_policy_file(struct cfg_ctx *c, const struct ini_file *f, const char *name)
{
	struct policy *pol;
	const struct ini_sect *psect = NULL;

	if (!cfg_valid_rule_name(name) && !cfg_dns_label(name)) {
		cfg_error(c, c->file, c->file_idx, 0, 0, "the policy name '%s' (the file name) "
			  "is not letters, digits, '-', '_' and '.'", name);
		return;
	}
	pol = &c->cfg->policies[c->cfg->n_policies++];     /* room made by load_srcs */
	pol->name = name;
	pol->file = cfg_strdup(c->mem, f->path);
	for (size_t i = 0; i < f->n; i++) {
		const struct ini_sect *s = &f->sects[i];
		const char *kind, *rname;
		int k;

		k = cfg_sect_lookup(c, s, (const char *const[]){ "policy", "ingress", "egress", NULL },
				    (const char *const[]){ "ingress", "egress", NULL },
				    "[policy], [ingress NAME] or [egress NAME]", &kind, &rname);
		if (k < 0)
			continue;
		if (k != 0 && !s->n) {
			cfg_err_sect(c, s, "empty section (a rule for every peer and port "
				     "needs a key: write from = all or to = all)");
			continue;
		}
		if (k == 0) {
			if (*rname) {
				cfg_err_sect(c, s, "[policy] takes no name (the policy's name "
					     "is the file name)");
			} else if (psect) {
				cfg_err_sect(c, s, "section given twice (first on line %d)",
					     psect->line);
			} else {
				psect = s;
				cfg_check_keys(c, s, &cfg_policy_section);
				cfg_parse_keys(c, s, &cfg_policy_section, pol);
			}
			continue;
		}
		if (!*rname) {
			cfg_err_sect(c, s, "a rule needs a name: [%s NAME]", kind);
			continue;
		}
		if (!cfg_valid_rule_name(rname)) {
			cfg_err_sect(c, s, "rule name '%s': expected letters, digits, '-', '_' "
				     "and '.' (at most 40)", rname);
			continue;
		}
		do_rule_sect(c, s, k == 1 ? POLICY_INGRESS : POLICY_EGRESS, rname, pol);
	}
	if (!psect) {
		cfg_error(c, c->file, c->file_idx, 0, 0, "no [policy] section (it says which "
			  "containers the policy selects: [policy] select = ...)");
		return;
	}
	for (size_t i = 0; i < pol->n_rules; i++) {
		const struct rule *r = &pol->rules[i];
		const char *d = r->dir == POLICY_INGRESS ? "ingress" : "egress";

		if (pol->types_given && !(pol->types & (unsigned)r->dir))
			cfg_error(c, c->file, c->file_idx, r->line, 0, "[%s %s] an %s rule, but "
				  "types (line %d) does not include %s", d, r->name, d,
				  c->types_line, d);
		if (!pol->types_given)
			pol->types |= (unsigned)r->dir;
	}
}
