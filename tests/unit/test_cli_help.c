/* test_cli_help.c - runtime/cli_help.c: a command's usage made from its row,
 * arguments checked against its forms and options before anything reaches
 * the daemon, and help asked for anywhere among its options. */
#include "runtime/cli.h"
#include "lib/lib.h"
#include "t.h"


static const struct cli_command cmds[] = {
	{ "logs", FORMS("NAME"), "a container's output", "Prints it.",
	  OPTS({ "-f", "--follow", NULL, NULL, "keep printing", false },
	       { "--tail", "-n", "N", NULL, "the last N lines", false }), 0, NULL },
	{ "dns", FORMS("ls", "query NAME"), "names", NULL, NULL, 0, NULL },
	{ "image", FORMS("import FILE|DIR", "prune", "ls"), "images", NULL,
	  OPTS({ "--name", NULL, "REF", "import", "its name", false },
	       { "--all", NULL, NULL, "prune", "all", false }), 0, NULL },
	{ "stats", FORMS("[NAME...]"), "stats", ".Starts with a dot, has a \\ and caf\u00e9.", NULL,
	  0, NULL },
	{ "exec", FORMS("NAME -- CMD [ARG...]"), "exec", NULL, NULL, CLI_RAW_ARGS, NULL },
	{ "secret", FORMS(""), NULL, NULL, NULL, CLI_INTERNAL, NULL },
};

/* The check of argv (a NULL-terminated list): "" when it passes, else why. */
static const char *check(const char *name, ...)
{
	static char why[256];
	const struct cli_command *c = cli_find(cmds, ARRAY_SIZE(cmds), name);
	char *argv[16] = { (char *)name };
	int argc = 1;
	va_list ap;

	va_start(ap, name);
	while ((argv[argc] = va_arg(ap, char *)))
		argc++;
	va_end(ap);
	if (cli_check_args(c, argc, argv, why, sizeof(why)) == 0)
		return "";
	return why;
}

static char *captured(void (*fn)(FILE *, const struct cli_command *), const char *name)
{
	static char *text;
	size_t len;
	FILE *f;

	free(text);
	text = NULL;
	f = open_memstream(&text, &len);
	fn(f, cli_find(cmds, ARRAY_SIZE(cmds), name));
	fclose(f);
	return text;
}

static void test_usage(void)
{
	T_STREQ(captured(cli_usage, "logs"), "usage: berth logs [-f] [--tail N] NAME\n",
		"a command's usage shows its options and arguments");
	T_STREQ(captured(cli_usage, "dns"), "usage: berth dns ls\n       berth dns query NAME\n",
		"one line per form");
	T_STREQ(captured(cli_usage, "image"),
		"usage: berth image import [--name REF] FILE|DIR\n       berth image prune [--all]\n"
		"       berth image ls\n",
		"an option of one subcommand shows on that subcommand's line only");
	T_OK(strstr(captured(cli_help, "logs"), "\nPrints it.\n\noptions:\n"
		    "  -f, --follow  keep printing\n  --tail, -n N  the last N lines\n"),
	     "help: usage, paragraph, then the options with both spellings");
}

static void test_check(void)
{
	T_STREQ(check("logs", "web", NULL), "", "logs NAME passes");
	T_STREQ(check("logs", "-f", "web", "--tail", "5", NULL), "", "options before the name");
	T_STREQ(check("logs", "web", "-f", "--tail=5", NULL), "", "options after it, --opt=value");
	T_STREQ(check("logs", "web", "-x", NULL), "unknown option '-x'", "an unknown option is named");
	T_STREQ(check("logs", "web", "--tail", NULL), "option --tail needs a value (N)",
		"an option without its value");
	T_STREQ(check("logs", "--follow=yes", "web", NULL), "option -f takes no value",
		"a switch given a value");
	T_STREQ(check("logs", NULL), "missing NAME", "a missing argument is named");
	T_STREQ(check("logs", "a", "b", NULL), "unexpected argument 'b'", "an extra one too");
	T_STREQ(check("dns", NULL), "missing a subcommand", "no subcommand");
	T_STREQ(check("dns", "lst", NULL), "unknown subcommand 'lst'", "a misspelt subcommand");
	T_STREQ(check("dns", "query", NULL), "missing NAME", "the subcommand's own argument");
	T_STREQ(check("dns", "query", "web", NULL), "", "dns query NAME passes");
	T_STREQ(check("dns", "ls", "x", NULL), "unexpected argument 'x'",
		"the reason comes from the form of the subcommand given");
	T_STREQ(check("stats", NULL), "", "[NAME...]: none");
	T_STREQ(check("stats", "a", "b", "c", NULL), "", "[NAME...]: several");
	T_STREQ(check("exec", "web", "--", "ls", "-l", "--bogus", NULL), "",
		"after -- everything is the command's");
	T_STREQ(check("exec", "web", NULL), "missing '--'", "exec without a command");
}

static void test_help_asked(void)
{
	char *logs[] = { "logs", "web", "--help", NULL };
	char *execd[] = { "exec", "web", "--", "ls", "--help", NULL };
	char *exech[] = { "exec", "-h", NULL };
	char *raw[] = { "exec", "web", "--help", NULL };
	const struct cli_command *l = cli_find(cmds, ARRAY_SIZE(cmds), "logs");
	const struct cli_command *x = cli_find(cmds, ARRAY_SIZE(cmds), "exec");

	T_OK(cli_help_asked(l, 3, logs), "--help after the arguments");
	T_OK(!cli_help_asked(x, 5, execd), "a --help after -- is the command's");
	T_OK(cli_help_asked(x, 2, exech), "exec -h");
	T_OK(!cli_help_asked(x, 3, raw), "a raw command's later --help is its own");
}

static void test_lists(void)
{
	char *text = NULL;
	size_t len;
	FILE *f = open_memstream(&text, &len);

	cli_names(f, cmds, ARRAY_SIZE(cmds));
	fclose(f);
	T_STREQ(text, "commands: logs dns image stats exec\n"
		"see: berth help (what each does), berth help COMMAND\n",
		"an unknown command gets the names alone, internal ones left out");
	free(text);
}

static void test_man(void)
{
	char *text = NULL;
	size_t len;
	FILE *f = open_memstream(&text, &len);

	cli_man_berth(f, cmds, ARRAY_SIZE(cmds), "9.9");
	fclose(f);
	T_OK(strstr(text, ".TH BERTH 8 \"\" \"berth 9.9\""), "the version in the title line");
	T_OK(strstr(text, "\n.SS logs\n.nf\n\\fBberth\\fR \\fBlogs\\fR [\\fB\\-f\\fR] "
		     "[\\fB\\-\\-tail\\fR \\fIN\\fR] \\fINAME\\fR\n.fi\n"),
	     "a synopsis: words to type in bold, placeholders in italics, options' hyphens as \\-");
	T_OK(strstr(text, "\n\\&.Starts with a dot, has a \\e and caf\\[u00E9].\n"),
	     "prose: a leading dot, a backslash and UTF-8 cannot upset roff");
	T_OK(!strstr(text, "secret"), "an internal command is not in the manual");
	free(text);
}

int main(void)
{
	test_usage();
	test_check();
	test_help_asked();
	test_lists();
	test_man();
	return t_done();
}
