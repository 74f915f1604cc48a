/* cli.h - the CLI's command table and everything made from it: `berth help`,
 * the usage printed on bad input, the man pages berth(8) and berth.ini(5),
 * and the bash completion script. One table (runtime/main.c's commands[]),
 * so none of them can drift from what the CLI accepts. */
#ifndef BERTH_RUNTIME_CLI_H
#define BERTH_RUNTIME_CLI_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

struct globals;                     /* main.c's global options */

/* One option of a command (or of the CLI itself, before the command). */
struct cli_opt {
	const char *flag;           /* "-f", "--dry-run" */
	const char *alias;          /* the other spelling ("--follow"), or NULL */
	const char *arg;            /* the value it takes ("N", "SIGNAL"); NULL: none */
	const char *sub;            /* only after this subcommand ("import"); NULL: any */
	const char *help;           /* one line, lower case, no full stop */
	bool many;                  /* may be given more than once */
};

enum {
	CLI_INTERNAL = 1 << 0,      /* berth starts it itself: not listed, not documented */
	CLI_OWN_ARGS = 1 << 1,      /* the entry function checks its arguments (the table
				     * only documents them); -h/--help still works first */
	CLI_RAW_ARGS = 1 << 2,      /* "-o json" and --help after the first argument
				     * belong to it, not to the CLI (exec, daemon) */
};

/*
 * A command. forms says what may follow its name, one form per entry ("" for
 * nothing); the words of a form are:
 *   ls          a lower-case word: that word (a subcommand)
 *   NAME        a placeholder: one argument. Completion offers container names
 *               for NAME, network names for NETWORK, command names for COMMAND,
 *               files for FILE.., DIR and CERT; anything else is free text
 *   [NAME]      an optional one;  NAME...  one or more;  [NAME...]  any number
 *   -- CMD...   everything after "--" is the command's (exec, run)
 * Options may come anywhere before "--".
 */
struct cli_command {
	const char *name;
	const char *const *forms;   /* FORMS("ls", "inspect NETWORK"): NULL-terminated */
	const char *summary;        /* one line for the list: lower case, no full stop */
	const char *help;           /* a paragraph: sentences, for help and the man page */
	const struct cli_opt *opts; /* OPTS({...}, ...): ends at the first without flag;
				     * NULL: none */
	unsigned flags;             /* CLI_* */
	int (*run)(struct globals *g, int argc, char **argv);
};

/* A row's forms and options, inline: FORMS("ls", "query NAME"),
 * OPTS({ "-f", "--follow", NULL, NULL, "keep printing", false }, ...). */
#define FORMS(...) (const char *const[]){ __VA_ARGS__, NULL }
#define OPTS(...) (const struct cli_opt[]){ __VA_ARGS__, { 0 } }

/* The CLI's own options, before the command (DESIGN §7). */
extern const struct cli_opt cli_global_opts[];

const struct cli_command *cli_find(const struct cli_command *cmds, size_t n, const char *name);

/* "usage: berth logs [-f] [--tail N] NAME", one line per form. */
void cli_usage(FILE *f, const struct cli_command *c);
/* `berth help CMD`: its usage, its paragraph, its options. */
void cli_help(FILE *f, const struct cli_command *c);
/* `berth help`: the global usage and one line per command. */
void cli_overview(FILE *f, const struct cli_command *cmds, size_t n);
/* After an unknown command: the names alone, wrapped, and where to look. */
void cli_names(FILE *f, const struct cli_command *cmds, size_t n);

/* Did the user ask for this command's help (-h or --help among its options)? */
bool cli_help_asked(const struct cli_command *c, int argc, char **argv);
/* Do argv[1..] fit one of c's forms and its options? 0, or -1 with the
 * reason ("unknown option '-x'") in why. */
int cli_check_args(const struct cli_command *c, int argc, char **argv, char *why, size_t size);
/* A usage error of c: the reason, then c's usage (with -o json: the JSON error
 * object on stdout, the usage lines its details). Returns EXIT_USAGE. */
int cli_usage_error(const struct cli_command *c, bool json, const char *why);

/* roff for berth(8) from the table, and for berth.ini(5) from the
 * configuration's key tables (config_doc). */
void cli_man_berth(FILE *f, const struct cli_command *cmds, size_t n, const char *version);
void cli_man_config(FILE *f, const char *version);
/* The bash completion script: complete -F _berth berth. */
void cli_bash_completion(FILE *f, const struct cli_command *cmds, size_t n);

#endif
