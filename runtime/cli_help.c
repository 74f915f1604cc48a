/* cli_help.c - what the command table (runtime/main.c) makes: help, usage on
 * bad input, berth(8), berth.ini(5) and the bash completion script. */
#include "runtime/cli.h"
#include "runtime/config/config.h"
#include "runtime/ctl/ctl.h"
#include "runtime/runtime.h"
#include "lib/lib.h"

#include <ctype.h>
#include <stdarg.h>
#include <string.h>

const struct cli_opt cli_global_opts[] = {
	{ "-c", NULL, "DIR", NULL, "the configuration directory (default /etc/berth when it "
	  "exists): the CLI finds the daemon's socket through its run_dir", false },
	{ "-s", NULL, "SOCKET", NULL, "the daemon's control socket (also $BERTH_SOCKET)", false },
	{ "-o", NULL, "json", NULL, "answer in JSON (also accepted after the command)", false },
	{ "-r", NULL, "HOST:PORT", NULL, "a remote daemon, over mutual TLS (with --cert, --key "
	  "and --ca)", false },
	{ "--cert", NULL, "FILE", NULL, "the client certificate for -r", false },
	{ "--key", NULL, "FILE", NULL, "its private key", false },
	{ "--ca", NULL, "FILE", NULL, "the CA that signed the daemon's certificate", false },
	{ "-h", "--help", NULL, NULL, "the list of commands (berth help COMMAND: one command)",
	  false },
	{ "--version", NULL, NULL, NULL, "the version, as berth version", false },
	{ NULL, NULL, NULL, NULL, NULL, false },
};

#define WIDTH 78

const struct cli_command *cli_find(const struct cli_command *cmds, size_t n, const char *name)
{
	for (size_t i = 0; i < n; i++)
		if (!strcmp(cmds[i].name, name))
			return &cmds[i];
	return NULL;
}

/* ---- forms -------------------------------------------------------------- */

#define TOKS_MAX 16

struct toks {
	char text[256];
	char *v[TOKS_MAX];
	size_t n;
};

static void split(const char *s, struct toks *t)
{
	char *save = NULL;

	snprintf(t->text, sizeof(t->text), "%s", s ? s : "");
	t->n = 0;
	for (char *w = strtok_r(t->text, " ", &save); w && t->n < TOKS_MAX;
	     w = strtok_r(NULL, " ", &save))
		t->v[t->n++] = w;
}

static bool is_literal(const char *tok)
{
	return islower((unsigned char)tok[0]);
}

static bool is_optional(const char *tok)
{
	return tok[0] == '[';
}

static bool is_repeat(const char *tok)
{
	size_t n = strlen(tok);

	return (n > 3 && !strcmp(tok + n - 3, "...")) || (n > 4 && !strcmp(tok + n - 4, "...]"));
}

/* Does a form fit the positional arguments? 0 yes; else 1 and why. */
static int form_match(const char *form, char **pos, size_t npos, char *why, size_t size)
{
	struct toks t;
	size_t j = 0;

	split(form, &t);
	for (size_t k = 0; k < t.n; k++) {
		const char *tok = t.v[k];

		if (!strcmp(tok, "--")) {
			if (j < npos && !strcmp(pos[j], "--"))
				return 0;       /* the rest is the command's */
			snprintf(why, size, "missing '--'");
			return 1;
		}
		if (is_literal(tok)) {
			if (j >= npos || strcmp(pos[j], tok)) {
				snprintf(why, size, j >= npos ? "missing '%s'" :
					 "unknown subcommand '%s'", j >= npos ? tok : pos[j]);
				return 1;
			}
			j++;
		} else if (is_repeat(tok)) {
			if (j >= npos && !is_optional(tok)) {
				snprintf(why, size, "missing %.*s", (int)strcspn(tok, "."), tok);
				return 1;
			}
			j = npos;
		} else if (j < npos) {
			j++;
		} else if (!is_optional(tok)) {
			snprintf(why, size, "missing %s", tok);
			return 1;
		}
	}
	if (j < npos) {
		snprintf(why, size, "unexpected argument '%s'", pos[j]);
		return 1;
	}
	return 0;
}

static const struct cli_opt *find_opt(const struct cli_command *c, const char *a, size_t n)
{
	for (const struct cli_opt *o = c->opts; o && o->flag; o++)
		if ((strlen(o->flag) == n && !strncmp(o->flag, a, n)) ||
		    (o->alias && strlen(o->alias) == n && !strncmp(o->alias, a, n)))
			return o;
	return NULL;
}

/* Is word the first word of form? */
static bool starts_with_word(const char *form, const char *word)
{
	size_t n = strlen(word);

	return !strncmp(form, word, n) && (form[n] == ' ' || !form[n]);
}

bool cli_help_asked(const struct cli_command *c, int argc, char **argv)
{
	int last = c->flags & CLI_RAW_ARGS ? (argc > 1 ? 2 : 1) : argc;

	for (int i = 1; i < last; i++) {
		if (!strcmp(argv[i], "--"))
			break;
		if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help"))
			return true;
	}
	return false;
}

int cli_check_args(const struct cli_command *c, int argc, char **argv, char *why, size_t size)
{
	char *pos[64], first[160] = "";
	size_t npos = 0;
	bool subs = false;

	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];
		const struct cli_opt *o;
		size_t n;

		if (!strcmp(a, "--")) {
			/* "--" and the rest: a form with "--" takes them whole */
			for (; i < argc && npos < ARRAY_SIZE(pos); i++)
				pos[npos++] = argv[i];
			break;
		}
		if (a[0] != '-' || !a[1]) {
			if (npos == ARRAY_SIZE(pos)) {
				snprintf(why, size, "too many arguments");
				return -1;
			}
			pos[npos++] = argv[i];
			continue;
		}
		n = a[1] == '-' && strchr(a, '=') ? (size_t)(strchr(a, '=') - a) : strlen(a);
		o = find_opt(c, a, n);
		if (!o) {
			snprintf(why, size, "unknown option '%.*s'", (int)n, a);
			return -1;
		}
		if (!o->arg && a[n]) {
			snprintf(why, size, "option %s takes no value", o->flag);
			return -1;
		}
		if (o->arg && !a[n] && ++i >= argc) {
			snprintf(why, size, "option %.*s needs a value (%s)", (int)n, a, o->arg);
			return -1;
		}
	}
	for (size_t f = 0; c->forms && c->forms[f]; f++) {
		char w[160];

		if (!form_match(c->forms[f], pos, npos, w, sizeof(w)))
			return 0;
		if (is_literal(c->forms[f]))
			subs = true;
		/* say what is wrong with the form of the subcommand given, if any */
		if (!first[0] || (npos && starts_with_word(c->forms[f], pos[0])))
			snprintf(first, sizeof(first), "%s", w);
	}
	if (subs && !npos)
		snprintf(why, size, "missing a subcommand");
	else
		snprintf(why, size, "%s", first[0] ? first : "bad arguments");
	return -1;
}

/* ---- text ------------------------------------------------------------- */

/* Words of s filled into lines of at most WIDTH columns, each but the first
 * indented by indent; the first starts at column col. */
static void wrap_at(FILE *f, const char *s, int indent, int col)
{
	bool first = true;

	while (*s) {
		size_t n = strcspn(s, " ");

		if (!first && col + 1 + (int)n > WIDTH) {
			fputc('\n', f);
			col = fprintf(f, "%*s", indent, "");
			first = true;
		}
		if (!first)
			col += fprintf(f, " ");
		col += fprintf(f, "%.*s", (int)n, s);
		first = false;
		s += n;
		while (*s == ' ')
			s++;
	}
	fputc('\n', f);
}

static void wrap(FILE *f, const char *s)
{
	wrap_at(f, s, 0, 0);
}

/* How one usage line is written: plain text, or roff with the words a user
 * types in bold and the placeholders in italics. */
struct style {
	bool roff;
};

/* One character of s at *i as roff: a backslash as \e, a hyphen as \- when
 * hyphens are options (minus), anything beyond ASCII as \[uXXXX] (groff
 * reads its input as Latin-1 unless told otherwise). */
static void roff_char(struct buf *b, const char *s, size_t n, size_t *i, bool minus)
{
	unsigned char c = (unsigned char)s[*i];
	unsigned cp = 0;
	size_t len = c >= 0xf0 ? 4 : c >= 0xe0 ? 3 : c >= 0xc0 ? 2 : 1;

	if (c == '\\') {
		buf_puts(b, "\\e");
	} else if (c == '-' && minus) {
		buf_puts(b, "\\-");
	} else if (c < 0x80 || *i + len > n) {
		buf_append(b, &s[*i], 1);
	} else {
		cp = c & (0x7f >> len);
		for (size_t k = 1; k < len; k++)
			cp = cp << 6 | ((unsigned char)s[*i + k] & 0x3f);
		buf_printf(b, "\\[u%04X]", cp);
		*i += len - 1;
	}
}

static void put_esc(struct buf *b, const char *s, size_t n, bool roff)
{
	for (size_t i = 0; i < n; i++) {
		if (roff)
			roff_char(b, s, n, &i, true);
		else
			buf_append(b, &s[i], 1);
	}
}

static void put_word(struct buf *b, const char *s, bool bold, bool roff)
{
	if (roff)
		buf_puts(b, bold ? "\\fB" : "\\fI");
	put_esc(b, s, strlen(s), roff);
	if (roff)
		buf_puts(b, "\\fR");
}

/* A form's word: brackets and dots plain, the placeholder in italics. */
static void put_tok(struct buf *b, const char *tok, bool roff)
{
	size_t n = strlen(tok), lead = tok[0] == '[', tail = 0;

	if (is_literal(tok) || !strcmp(tok, "--")) {
		put_word(b, tok, true, roff);
		return;
	}
	while (tail < n - lead && strchr(".]", tok[n - 1 - tail]))
		tail++;
	buf_puts(b, lead ? "[" : "");
	if (roff)
		buf_puts(b, "\\fI");
	put_esc(b, tok + lead, n - lead - tail, roff);
	if (roff)
		buf_puts(b, "\\fR");
	buf_append(b, tok + n - tail, tail);
}

static void put_opt(struct buf *b, const struct cli_opt *o, bool roff)
{
	buf_puts(b, "[");
	put_word(b, o->flag, true, roff);
	if (o->arg) {
		buf_puts(b, " ");
		put_word(b, o->arg, false, roff);
	}
	buf_puts(b, o->many ? "]..." : "]");
}

/* "berth logs [-f] [--tail N] NAME" for one form into b. */
static void form_line(struct buf *b, const struct cli_command *c, const char *form, bool roff)
{
	const char *sub = NULL;
	struct toks t;
	size_t k = 0, nopt = 0;

	split(form, &t);
	put_word(b, "berth", true, roff);
	buf_puts(b, " ");
	put_word(b, c->name, true, roff);
	if (t.n && is_literal(t.v[0])) {
		sub = t.v[k++];
		buf_puts(b, " ");
		put_word(b, sub, true, roff);
	}
	for (const struct cli_opt *o = c->opts; o && o->flag; o++)
		nopt += !o->sub || (sub && !strcmp(o->sub, sub));
	if (nopt > 4) {
		buf_puts(b, " [");
		put_word(b, "OPTIONS", false, roff);
		buf_puts(b, "]");
	} else {
		for (const struct cli_opt *o = c->opts; o && o->flag; o++) {
			if (o->sub && (!sub || strcmp(o->sub, sub)))
				continue;
			buf_puts(b, " ");
			put_opt(b, o, roff);
		}
	}
	for (; k < t.n; k++) {
		buf_puts(b, " ");
		put_tok(b, t.v[k], roff);
	}
}

void cli_usage(FILE *f, const struct cli_command *c)
{
	struct buf b;

	buf_init(&b);
	for (size_t i = 0; c->forms && c->forms[i]; i++) {
		buf_puts(&b, i ? "       " : "usage: ");
		form_line(&b, c, c->forms[i], false);
		buf_puts(&b, "\n");
	}
	fputs(b.data ? b.data : "", f);
	buf_free(&b);
}

/* "  -f, --follow      help" lines */
static void opt_lines(FILE *f, const struct cli_opt *opts)
{
	char left[64];
	struct buf line;
	int w = 0;

	buf_init(&line);
	for (const struct cli_opt *o = opts; o && o->flag; o++) {
		int n = snprintf(left, sizeof(left), "%s%s%s%s%s", o->flag, o->alias ? ", " : "",
				 o->alias ? o->alias : "", o->arg ? " " : "", o->arg ? o->arg : "");
		w = n > w ? n : w;
	}
	for (const struct cli_opt *o = opts; o && o->flag; o++) {
		snprintf(left, sizeof(left), "%s%s%s%s%s", o->flag, o->alias ? ", " : "",
			 o->alias ? o->alias : "", o->arg ? " " : "", o->arg ? o->arg : "");
		buf_reset(&line);
		buf_printf(&line, "%s%s%s%s", o->sub ? o->sub : "", o->sub ? ": " : "", o->help,
			   o->many ? " (may repeat)" : "");
		fprintf(f, "  %-*s  ", w, left);
		wrap_at(f, line.data, w + 4, w + 4);
	}
	buf_free(&line);
}

void cli_help(FILE *f, const struct cli_command *c)
{
	cli_usage(f, c);
	fputc('\n', f);
	wrap(f, c->help ? c->help : c->summary);
	if (c->opts && c->opts[0].flag) {
		fprintf(f, "\noptions:\n");
		opt_lines(f, c->opts);
	}
}

void cli_overview(FILE *f, const struct cli_command *cmds, size_t n)
{
	fprintf(f, "usage: berth [-c DIR] [-s SOCKET] [-o json] [-r HOST:PORT --cert C --key K --ca CA]\n"
		"             COMMAND [ARGS...]\n\ncommands:\n");
	for (size_t i = 0; i < n; i++)
		if (!(cmds[i].flags & CLI_INTERNAL))
			fprintf(f, "  %-11s %s\n", cmds[i].name, cmds[i].summary);
	fprintf(f, "\nglobal options:\n");
	opt_lines(f, cli_global_opts);
	fprintf(f, "\nberth help COMMAND (or berth COMMAND --help): its usage, options and what it "
		"does.\n");
}

void cli_names(FILE *f, const struct cli_command *cmds, size_t n)
{
	struct buf b;

	buf_init(&b);
	buf_puts(&b, "commands:");
	for (size_t i = 0; i < n; i++)
		if (!(cmds[i].flags & CLI_INTERNAL))
			buf_printf(&b, " %s", cmds[i].name);
	wrap(f, b.data);
	fprintf(f, "see: berth help (what each does), berth help COMMAND\n");
	buf_free(&b);
}

int cli_usage_error(const struct cli_command *c, bool json, const char *why)
{
	char msg[256];
	struct buf details;
	FILE *mf;
	char *text = NULL;
	size_t len = 0;

	snprintf(msg, sizeof(msg), "%s: %s", c->name, why);
	buf_init(&details);
	mf = open_memstream(&text, &len);
	if (mf) {
		cli_usage(mf, c);
		fprintf(mf, "see: berth help %s\n", c->name);
		fclose(mf);
		buf_puts(&details, text ? text : "");
		free(text);
	}
	cli_print_error(json, msg, &details);
	if (json)                   /* people still want to see the usage */
		fputs(details.data ? details.data : "", stderr);
	buf_free(&details);
	return EXIT_USAGE;
}

/* ---- man pages ---------------------------------------------------------- */

/* A paragraph of prose as roff: escapes, and no line starting with a dot. */
static void roff_text(FILE *f, const char *s)
{
	struct buf b;

	buf_init(&b);
	if (*s == '.' || *s == '\'')
		buf_puts(&b, "\\&");
	for (size_t i = 0, n = strlen(s); i < n; i++)
		roff_char(&b, s, n, &i, false);
	fprintf(f, "%s\n", b.data ? b.data : "");
	buf_free(&b);
}

static void roff_opts(FILE *f, const struct cli_opt *opts)
{
	for (const struct cli_opt *o = opts; o && o->flag; o++) {
		struct buf b;

		buf_init(&b);
		put_word(&b, o->flag, true, true);
		if (o->alias) {
			buf_puts(&b, ", ");
			put_word(&b, o->alias, true, true);
		}
		if (o->arg) {
			buf_puts(&b, " ");
			put_word(&b, o->arg, false, true);
		}
		fprintf(f, ".TP\n%s\n", b.data);
		if (o->sub)
			fprintf(f, "(%s) ", o->sub);
		roff_text(f, o->help);
		if (o->many)
			fprintf(f, "(may repeat)\n");
		buf_free(&b);
	}
}

void cli_man_berth(FILE *f, const struct cli_command *cmds, size_t n, const char *version)
{
	fprintf(f, ".\\\" berth(8), generated from the CLI's command table (runtime/main.c) by\n"
		".\\\" runtime/cli_help.c: edit those, not this file.\n"
		".TH BERTH 8 \"\" \"berth %s\" \"System Administration\"\n"
		".SH NAME\n"
		"berth \\- container networking for edge gateways: addresses, DNS, published "
		"ports and policies\n"
		".SH SYNOPSIS\n"
		".B berth\n"
		"[\\fIGLOBAL OPTIONS\\fR] \\fICOMMAND\\fR [\\fIARGS\\fR...]\n"
		".SH DESCRIPTION\n"
		"berth is one static binary that gives containers a network: it creates their "
		"network namespaces, allocates their addresses, names them in a small DNS server, "
		"publishes their ports through NAT and enforces label-based firewall policies. "
		"It runs the containers it is configured with, and is managed through a Unix "
		"socket, locally or remotely over mutual TLS.\n"
		".PP\n"
		"The files under /etc/berth are the truth (see \\fBberth.ini\\fR(5)): "
		"\\fBberth daemon\\fR applies them, \\fBberth reload\\fR applies them again, all or "
		"nothing, and the other commands ask the running daemon or act on it. Commands that "
		"create or remove containers write or remove their files and reload.\n"
		".SH GLOBAL OPTIONS\n"
		"They come before the command; a command's own options come after it.\n",
		version);
	roff_opts(f, cli_global_opts);
	fprintf(f, ".SH COMMANDS\n");
	for (size_t i = 0; i < n; i++) {
		const struct cli_command *c = &cmds[i];

		if (c->flags & CLI_INTERNAL)
			continue;
		fprintf(f, ".SS %s\n.nf\n", c->name);
		for (size_t k = 0; c->forms[k]; k++) {
			struct buf b;

			buf_init(&b);
			form_line(&b, c, c->forms[k], true);
			fprintf(f, "%s\n", b.data);
			buf_free(&b);
		}
		fprintf(f, ".fi\n.PP\n");
		roff_text(f, c->help ? c->help : c->summary);
		if (c->opts && c->opts[0].flag) {
			fprintf(f, ".RS\n");
			roff_opts(f, c->opts);
			fprintf(f, ".RE\n");
		}
	}
	fprintf(f, ".SH EXIT STATUS\n"
		".TP\n0\nsuccess\n"
		".TP\n1\nthe operation failed (the reason is on standard error, or with "
		"\\fB\\-o json\\fR the object {\"error\": ..., \"details\": [...]} on standard "
		"output)\n"
		".TP\n2\na usage error: an unknown command or option, or missing or extra "
		"arguments; the command's usage follows the reason\n"
		".TP\n3\nnothing to do: \\fBstart\\fR of a running container, \\fBstop\\fR of a "
		"stopped one\n"
		".PP\n"
		"\\fBberth exec\\fR exits with the status of the command it ran.\n"
		".SH ENVIRONMENT\n"
		".TP\n.B BERTH_SOCKET\n"
		"the daemon's control socket, when \\fB\\-s\\fR is not given\n"
		".TP\n.B CNI_COMMAND\n"
		"when set, berth is a CNI plugin (spec 1.1.0) and talks to the daemon for the "
		"container runtime that started it\n"
		".SH FILES\n"
		".TP\n.I /etc/berth/berth.ini\n"
		"the daemon, the networks, DNS and remote management\n"
		".TP\n.I /etc/berth/containers.d/NAME.ini\n"
		"one container per file\n"
		".TP\n.I /etc/berth/policies.d/NAME.ini\n"
		"one firewall policy per file\n"
		".TP\n.I /etc/berth/services.d/NAME.ini\n"
		"one service (a virtual IP before the containers it selects) per file\n"
		".TP\n.I /run/berth/berth.sock\n"
		"the control socket (run_dir/berth.sock); when berth.ini has errors the CLI says so "
		"and falls back to this default\n"
		".SH SEE ALSO\n"
		".BR berth.ini (5),\n"
		".BR systemd.service (5)\n");
}

void cli_man_config(FILE *f, const char *version)
{
	const char *file = "", *section = "";
	struct cfg_key_doc d;
	char value[128];

	fprintf(f, ".\\\" berth.ini(5), generated from the key tables of runtime/config by\n"
		".\\\" runtime/cli_help.c (config_doc): edit those, not this file.\n"
		".TH BERTH.INI 5 \"\" \"berth %s\" \"File Formats\"\n"
		".SH NAME\n"
		"berth.ini \\- the configuration of berth: daemon, networks, DNS, containers, "
		"policies and services\n"
		".SH SYNOPSIS\n"
		".nf\n"
		"/etc/berth/berth.ini\n"
		"/etc/berth/containers.d/\\fINAME\\fR.ini\n"
		"/etc/berth/policies.d/\\fINAME\\fR.ini\n"
		"/etc/berth/services.d/\\fINAME\\fR.ini\n"
		".fi\n"
		".SH DESCRIPTION\n"
		"berth reads INI files from one directory, /etc/berth unless \\fB\\-c\\fR \\fIDIR\\fR "
		"says otherwise: \\fIberth.ini\\fR for the daemon, its networks, DNS and remote "
		"management; one file per container in \\fIcontainers.d\\fR, one per policy in "
		"\\fIpolicies.d\\fR and one per service in \\fIservices.d\\fR (or a "
		"[service \\fINAME\\fR] section of berth.ini), each named after its file. "
		"An empty or missing berth.ini "
		"means the defaults below.\n"
		".PP\n"
		"A line is \\fIkey\\fR = \\fIvalue\\fR inside a [\\fIsection\\fR]; comments start "
		"with ; or #. Unknown keys and sections are errors. Every error names the "
		"file, the line, the section and the key, and what was expected. "
		"\\fBberth config check\\fR validates without applying; a reload (\\fBberth "
		"reload\\fR or SIGHUP) applies everything or nothing: on any error the running "
		"configuration stays.\n"
		".PP\n"
		"Each key below gives how its value is written, its type and its default.\n",
		version);
	for (size_t i = 0; config_doc(i, &d, value, sizeof(value)); i++) {
		if (strcmp(file, d.file)) {
			file = d.file;
			fprintf(f, ".SH \"");
			for (const char *p = file; *p; p++)
				fputc(toupper((unsigned char)*p), f);
			fprintf(f, "\"\n");
		}
		if (strcmp(section, d.section)) {
			section = d.section;
			fprintf(f, ".SS \"[%s]\"\n", section);
		}
		fprintf(f, ".TP\n\\fB");
		{
			struct buf b;

			buf_init(&b);
			put_esc(&b, d.key, strlen(d.key), true);
			buf_puts(&b, "\\fR = \\fI");
			put_esc(&b, d.value, strlen(d.value), true);
			fprintf(f, "%s\\fR\n", b.data);
			buf_free(&b);
		}
		roff_text(f, d.help);
		fprintf(f, ".br\n%s; %s%s%s%s%s\n", d.type, d.required ? "required" : d.def ?
			"default " : "no default", d.def && !d.required ? "\\fB" : "",
			d.def && !d.required ? d.def : "", d.def && !d.required ? "\\fR" : "",
			d.repeat ? "; may repeat" : "");
	}
	fprintf(f, ".SH FILES\n"
		".TP\n.I /etc/berth/berth.ini\n"
		"the daemon, networks, DNS and remote management\n"
		".TP\n.I /etc/berth/containers.d/NAME.ini\n"
		"one container per file; its name is the file's name\n"
		".TP\n.I /etc/berth/policies.d/NAME.ini\n"
		"one policy per file; its name is the file's name\n"
		".TP\n.I /etc/berth/services.d/NAME.ini\n"
		"one service per file, in a [service] section; its name is the file's name "
		"([service NAME] in berth.ini is the same)\n"
		".SH SEE ALSO\n"
		".BR berth (8)\n");
}

/* ---- bash completion ---------------------------------------------------- */

/* "-f --follow --tail -n", or with values "--tail=N -n=N" (those that take one) */
static void bash_words(FILE *f, const struct cli_opt *opts, bool with_arg)
{
	const char *sep = "";

	for (const struct cli_opt *o = opts; o && o->flag; o++) {
		if (with_arg && !o->arg)
			continue;
		for (int k = 0; k < 2; k++) {
			const char *name = k ? o->alias : o->flag;

			if (!name)
				continue;
			fprintf(f, "%s%s%s%s", sep, name, with_arg ? "=" : "", with_arg ? o->arg : "");
			sep = " ";
		}
	}
}

void cli_bash_completion(FILE *f, const struct cli_command *cmds, size_t n)
{
	fprintf(f, "# bash completion for berth, generated by `berth completion bash` from the\n"
		"# CLI's command table: commands, subcommands, options and their values,\n"
		"# container and network names (asked of the running daemon). Install as\n"
		"# /usr/share/bash-completion/completions/berth, or: . <(berth completion bash)\n\n"
		"_berth_commands='");
	for (size_t i = 0, first = 1; i < n; i++)
		if (!(cmds[i].flags & CLI_INTERNAL)) {
			fprintf(f, "%s%s", first ? "" : " ", cmds[i].name);
			first = 0;
		}
	fprintf(f, "'\n_berth_global_opts='");
	bash_words(f, cli_global_opts, false);
	fprintf(f, "'\n_berth_global_argopts='");
	bash_words(f, cli_global_opts, true);
	fprintf(f, "'\n\n# _berth_spec CMD: its options, those that take a value (OPT=VALUE), its forms\n"
		"_berth_spec() {\n"
		"\t_berth_opts= _berth_argopts= _berth_forms=()\n"
		"\tcase $1 in\n");
	for (size_t i = 0; i < n; i++) {
		const struct cli_command *c = &cmds[i];

		if (c->flags & CLI_INTERNAL)
			continue;
		fprintf(f, "\t%s)\n\t\t_berth_opts='", c->name);
		bash_words(f, c->opts, false);
		fprintf(f, "'\n\t\t_berth_argopts='");
		bash_words(f, c->opts, true);
		fprintf(f, "'\n\t\t_berth_forms=(");
		for (size_t k = 0; c->forms[k]; k++)
			fprintf(f, "%s'%s'", k ? " " : "", c->forms[k]);
		fprintf(f, ") ;;\n");
	}
	fprintf(f, "\tesac\n"
		"}\n\n"
		"# _berth_names ARGS...: the first column of a table the daemon answers\n"
		"_berth_names() {\n"
		"\tberth \"${_berth_g[@]}\" \"$@\" 2>/dev/null | awk 'NR > 1 { print $1 }'\n"
		"}\n\n"
		"# _berth_optarg OPT LIST: the name of OPT's value in LIST (OPT=VALUE ...)\n"
		"_berth_optarg() {\n"
		"\tlocal p\n"
		"\tfor p in $2; do\n"
		"\t\t[ \"${p%%%%=*}\" = \"$1\" ] && { printf '%%s' \"${p#*=}\"; return 0; }\n"
		"\tdone\n"
		"\treturn 1\n"
		"}\n\n"
		"# _berth_value KIND: what may stand for a placeholder or an option's value,\n"
		"# into words; files and directories straight into COMPREPLY (status 1)\n"
		"_berth_value() {\n"
		"\tcase $1 in\n"
		"\tNAME) words=\"$words $(_berth_names ps)\" ;;\n"
		"\tNETWORK) words=\"$words $(_berth_names network ls)\" ;;\n"
		"\tCOMMAND) words=\"$words $_berth_commands\" ;;\n"
		"\tDIR) COMPREPLY=($(compgen -d -- \"$cur\")); return 1 ;;\n"
		"\tFILE*|CERT|SOCKET) COMPREPLY=($(compgen -f -- \"$cur\")); return 1 ;;\n"
		"\t--|[a-z]*) words=\"$words ${1//|/ }\" ;;   # a subcommand; always|on-failure|no\n"
		"\tesac\n"
		"\treturn 0\n"
		"}\n\n"
		"_berth() {\n"
		"\tlocal cur=${COMP_WORDS[COMP_CWORD]} w a cmd= i=1 j t form words= pos=() toks\n"
		"\tlocal _berth_g=() _berth_opts _berth_argopts _berth_forms\n"
		"\tCOMPREPLY=()\n"
		"\t# the global options (passed on when asking for names), then the command\n"
		"\twhile [ \"$i\" -lt \"$COMP_CWORD\" ]; do\n"
		"\t\tw=${COMP_WORDS[i]}\n"
		"\t\tif a=$(_berth_optarg \"$w\" \"$_berth_global_argopts\"); then\n"
		"\t\t\tif [ $((i + 1)) -eq \"$COMP_CWORD\" ]; then\n"
		"\t\t\t\t_berth_value \"$a\" && COMPREPLY=($(compgen -W \"$words\" -- \"$cur\"))\n"
		"\t\t\t\treturn 0\n"
		"\t\t\tfi\n"
		"\t\t\t[ \"$w\" = -o ] || _berth_g+=(\"$w\" \"${COMP_WORDS[i + 1]}\")\n"
		"\t\t\ti=$((i + 2))\n"
		"\t\t\tcontinue\n"
		"\t\tfi\n"
		"\t\tcase $w in\n"
		"\t\t-*) i=$((i + 1)); continue ;;\n"
		"\t\tesac\n"
		"\t\tcmd=$w\n"
		"\t\ti=$((i + 1))\n"
		"\t\tbreak\n"
		"\tdone\n"
		"\tif [ -z \"$cmd\" ]; then\n"
		"\t\tcase $cur in\n"
		"\t\t-*) COMPREPLY=($(compgen -W \"$_berth_global_opts\" -- \"$cur\")) ;;\n"
		"\t\t*) COMPREPLY=($(compgen -W \"$_berth_commands\" -- \"$cur\")) ;;\n"
		"\t\tesac\n"
		"\t\treturn 0\n"
		"\tfi\n"
		"\t_berth_spec \"$cmd\"\n"
		"\t# the command's arguments so far: options (and their values) aside\n"
		"\twhile [ \"$i\" -lt \"$COMP_CWORD\" ]; do\n"
		"\t\tw=${COMP_WORDS[i]}\n"
		"\t\tif [ \"$w\" = -- ]; then\n"
		"\t\t\tCOMPREPLY=($(compgen -f -- \"$cur\"))  # a command's arguments\n"
		"\t\t\treturn 0\n"
		"\t\telif a=$(_berth_optarg \"$w\" \"$_berth_argopts\"); then\n"
		"\t\t\tif [ $((i + 1)) -eq \"$COMP_CWORD\" ]; then\n"
		"\t\t\t\t_berth_value \"$a\" && COMPREPLY=($(compgen -W \"$words\" -- \"$cur\"))\n"
		"\t\t\t\treturn 0\n"
		"\t\t\tfi\n"
		"\t\t\ti=$((i + 1))\n"
		"\t\telif [[ $w != -* ]]; then\n"
		"\t\t\tpos+=(\"$w\")\n"
		"\t\tfi\n"
		"\t\ti=$((i + 1))\n"
		"\tdone\n"
		"\tif [[ $cur == -* ]]; then\n"
		"\t\tCOMPREPLY=($(compgen -W \"$_berth_opts --help\" -- \"$cur\"))\n"
		"\t\treturn 0\n"
		"\tfi\n"
		"\t# each form that fits the words so far says what comes next\n"
		"\tfor form in \"${_berth_forms[@]}\"; do\n"
		"\t\tread -ra toks <<<\"$form\"\n"
		"\t\tt=\n"
		"\t\tfor ((j = 0; j <= ${#pos[@]}; j++)); do\n"
		"\t\t\tif [ \"$j\" -lt \"${#toks[@]}\" ]; then\n"
		"\t\t\t\tt=${toks[j]}\n"
		"\t\t\telif [[ $t != *... && $t != *...] ]]; then\n"
		"\t\t\t\tt=; break\n"
		"\t\t\tfi\n"
		"\t\t\t[ \"$j\" -eq \"${#pos[@]}\" ] && break\n"
		"\t\t\tif [[ $t == [a-z]* && $t != \"${pos[j]}\" ]]; then t=; break; fi\n"
		"\t\tdone\n"
		"\t\tt=${t#[}; t=${t%%]}; t=${t%%...}; t=${t%%]}\n"
		"\t\t_berth_value \"$t\" || return 0\n"
		"\tdone\n"
		"\tCOMPREPLY=($(compgen -W \"$words\" -- \"$cur\"))\n"
		"}\n"
		"complete -F _berth berth\n");
}
