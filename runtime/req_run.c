/* req_run.c - `berth run` and `berth rm` on the daemon's side: the files
 * under containers.d are the truth, so run writes containers.d/NAME.ini and
 * rm removes a container's file, each followed by the reload `berth reload`
 * runs. All or nothing: the configuration as it would be is checked first,
 * as `config check` checks it, and nothing is written when it has errors; a
 * reload that fails anyway (a file changed meanwhile) takes the change back.
 * Done in the daemon, not the CLI, so that it works over remote TLS too. */
#include "runtime/daemon_int.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

int daemon_request_reload(struct daemon *d, bool dry_run, struct buf *out, struct err *e);

#define RUN_USAGE "usage: berth run NAME [--image REF | --rootfs DIR] [-p SPEC]... [-l K=V]... " \
	"[--network N]... [-e K=V]... [--restart P] [--health SPEC [--health-* V]...] [-- CMD...]"

/* The directory the daemon reads (as daemon_load_config), or NULL: the
 * embedded default, which has no directory to write into. */
static const char *config_dir(const struct daemon *d)
{
	return d->config_dir ? d->config_dir : config_default_dir();
}

/* ---- the configuration as it would be ------------------------------------ */

/* The text of dir/rel (at most CONFIG_FILE_MAX + 1 bytes: the loader says
 * when it is too long), NUL-terminated. 0, -EISDIR, or -errno. */
static int read_text(const char *dir, const char *rel, char **text, size_t *len)
{
	char path[4096];
	struct stat st;
	size_t n = 0;
	char *buf;
	int fd, ret;

	if ((size_t)snprintf(path, sizeof(path), "%s/%s", dir, rel) >= sizeof(path))
		return -ENAMETOOLONG;
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	ret = fstat(fd, &st) < 0 ? -errno : S_ISDIR(st.st_mode) ? -EISDIR : 0;
	if (ret < 0) {
		close(fd);
		return ret;
	}
	buf = malloc(CONFIG_FILE_MAX + 2);
	if (!buf) {
		close(fd);
		return -ENOMEM;
	}
	while (n < CONFIG_FILE_MAX + 1) {
		ssize_t r = read(fd, buf + n, CONFIG_FILE_MAX + 1 - n);

		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0) {
			ret = -errno;
			close(fd);
			free(buf);
			return ret;
		}
		if (!r)
			break;
		n += (size_t)r;
	}
	close(fd);
	buf[n] = '\0';
	*text = buf;
	*len = n;
	return 0;
}

/* Would the configuration in dir, without skip and with extra (each may be
 * NULL), load and pass preflight as a reload checks it? 0, or -EINVAL with
 * every error line (file:line: ...) in errors, or -errno. */
static int check_config(const struct daemon *d, const char *dir, const char *skip,
			const struct config_file *extra, struct buf *errors)
{
	struct config_errors errs = { 0 }, warnings = { 0 };
	struct config_opts opts = { .skip = skip, .extra = extra };
	struct config *cfg = NULL;
	int ret;

	ret = config_load(dir, &opts, &cfg, &errs);
	if (!ret) {
		config_preflight(cfg, d->cfg, &errs, &warnings);
		if (errs.n)
			ret = -EINVAL;
	}
	for (size_t i = 0; i < errs.n; i++)
		buf_printf(errors, "%s\n", errs.v[i].msg);
	if (ret < 0 && !errs.n)
		buf_printf(errors, "cannot load the configuration from %s: %s\n", dir, strerror(-ret));
	config_free(cfg);
	config_errors_free(&errs);
	config_errors_free(&warnings);
	return ret;
}

static size_t count_lines(const struct buf *b)
{
	size_t n = 0;

	for (size_t i = 0; i < b->len; i++)
		n += b->data[i] == '\n';
	return n;
}

/* ---- files that survive a power cut ------------------------------------- */

/* dir/containers.d/NAME.ini with text, flushed to the disk: after a power
 * cut the file is there whole or not at all (its temporary NAME.ini.tmp is
 * not a name the loader reads). */
static int write_ctr_file(const char *dir, const char *name, const char *text, size_t len,
			  struct err *e)
{
	char sub[4096], path[4400];

	snprintf(sub, sizeof(sub), "%s/containers.d", dir);
	if (access(sub, F_OK) < 0) {
		if (mkdir_p("directory", sub, 0755, e) < 0 || fsync_dir(dir, e) < 0)
			return -1;
	}
	snprintf(path, sizeof(path), "%s/%s.ini", sub, name);
	return file_write_atomic(path, text, len, 0644, true, e);
}

static int remove_file(const char *dir, const char *rel, struct err *e)
{
	char path[4400], *slash;

	snprintf(path, sizeof(path), "%s/%s", dir, rel);
	if (unlink(path) < 0)
		return err_sys(e, errno, "remove %s", path);
	slash = strrchr(path, '/');
	*slash = '\0';
	return fsync_dir(path, e);
}

/* ---- the file `berth run` writes ------------------------------------------ */

/* Characters a command word, list item or value may hold unquoted. */
static bool bare_char(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
	       strchr("_./:,@%+=-", c);
}

/* Would inih cut text, or could it not hold it on a line? (a newline; ';'
 * after a blank, which starts an inline comment; blanks at either end,
 * which it trims). */
static const char *ini_unsafe(const char *s)
{
	size_t n = strlen(s);

	if (strpbrk(s, "\n\r"))
		return "it holds a line break";
	for (size_t i = 1; i < n; i++)
		if (s[i] == ';' && (s[i - 1] == ' ' || s[i - 1] == '\t'))
			return "';' after a blank would start a comment";
	if (n && (s[0] == ' ' || s[0] == '\t' || s[n - 1] == ' ' || s[n - 1] == '\t'))
		return "blanks at its start or end would be lost";
	return NULL;
}

/* One line "KEY = VALUE" for a single value. */
static int put_value(struct buf *ini, const char *key, const char *value, struct err *e)
{
	const char *why = ini_unsafe(value);
	size_t at = ini->len;

	if (why)
		return err_set(e, EINVAL, "%s '%s': %s", key, value, why);
	buf_printf(ini, "%-7s = %s\n", key, value);
	if (ini->len - at - 1 > CONFIG_LINE_MAX)
		return err_set(e, EINVAL, "%s '%s': longer than a line of the file may be (%d "
			       "characters)", key, value, CONFIG_LINE_MAX);
	return 0;
}

/* "KEY = a, b, ..." over as many lines as it takes: a continuation line
 * starts with its comma, so that it never reads as a key of its own. */
static int put_list(struct buf *ini, const char *key, char *const *items, size_t n, struct err *e)
{
	size_t line_at = ini->len;

	if (!n)
		return 0;
	buf_printf(ini, "%-7s =", key);
	for (size_t i = 0; i < n; i++) {
		const char *why = ini_unsafe(items[i]);
		size_t len = strlen(items[i]);

		if (!why && strchr(items[i], ','))
			why = "a ',' separates items of the list";
		if (why)
			return err_set(e, EINVAL, "%s '%s': %s", key, items[i], why);
		if (i && ini->len - line_at + len + 2 > CONFIG_LINE_MAX) {
			buf_puts(ini, "\n\t,");
			line_at = ini->len - 2;
		} else if (i) {
			buf_puts(ini, ",");
		}
		if (ini->len - line_at + len + 1 > CONFIG_LINE_MAX)
			return err_set(e, EINVAL, "%s '%s': longer than a line of the file may be "
				       "(%d characters)", key, items[i], CONFIG_LINE_MAX);
		buf_printf(ini, " %s", items[i]);
	}
	buf_puts(ini, "\n");
	return 0;
}

/* A command word as `command =` splits it back (config_sections.c
 * split_command): bare, in single quotes, or with each special character
 * after a backslash; one that begins a continuation line never starts with
 * a letter (it could read as "KEY ="). */
static void quote_word(struct buf *b, const char *w, bool line_start)
{
	bool bare = *w != '\0', plain = !strchr(w, '\'');

	for (const char *p = w; *p; p++)
		bare = bare && bare_char(*p);
	if (plain && ini_unsafe(w) == NULL && !(line_start && *w != '\0' && bare)) {
		if (bare) {
			buf_puts(b, w);
			return;
		}
		buf_printf(b, "'%s'", w);
		return;
	}
	if (plain && line_start && bare) {
		buf_printf(b, "'%s'", w);
		return;
	}
	if (!*w) {
		buf_puts(b, "''");
		return;
	}
	for (const char *p = w; *p; p++) {
		if (!bare_char(*p))
			buf_puts(b, "\\");
		buf_append(b, p, 1);
	}
}

static int put_command(struct buf *ini, char *const *cmd, size_t n, struct err *e)
{
	size_t line_at = ini->len;
	struct buf w;

	if (!n)
		return 0;
	buf_init(&w);
	buf_puts(ini, "command =");
	for (size_t i = 0; i < n; i++) {
		if (strpbrk(cmd[i], "\n\r")) {
			buf_free(&w);
			return err_set(e, EINVAL, "the command's argument '%s' holds a line break, "
				       "which a container file cannot", cmd[i]);
		}
		buf_reset(&w);
		quote_word(&w, cmd[i], false);
		if (ini->len - line_at + w.len + 1 > CONFIG_LINE_MAX) {
			buf_puts(ini, "\n\t");
			line_at = ini->len - 1;
			buf_reset(&w);
			quote_word(&w, cmd[i], true);
			if (w.len + 1 > CONFIG_LINE_MAX) {
				buf_free(&w);
				return err_set(e, EINVAL, "the command's argument '%.40s...' is longer "
					       "than a line of a container file may be (%d characters)",
					       cmd[i], CONFIG_LINE_MAX);
			}
			buf_append(ini, w.data, w.len);
			continue;
		}
		buf_puts(ini, " ");
		buf_append(ini, w.data, w.len);
	}
	buf_puts(ini, "\n");
	buf_free(&w);
	return 0;
}

/* One named type for the lists: split_lines writes them through a pointer,
 * and two anonymous ARRAY(char *) are distinct types to the optimiser (with
 * strict aliasing, -Os read a->cmd.n as the 0 it was before the split). */
typedef ARRAY(char *) word_list;

/* The options that give one key one value: the request's word, the key.
 * image and rootfs go before the command in the file, the others after. */
static const struct { const char *word, *key; } run_values[] = {
	{ "--image", "image" }, { "--rootfs", "rootfs" }, { "--restart", "restart" },
	{ "--health", "health" }, { "--health-interval", "health_interval" },
	{ "--health-timeout", "health_timeout" }, { "--health-retries", "health_retries" },
	{ "--health-start-period", "health_start_period" },
	{ "--on-unhealthy", "on_unhealthy" },
};
#define RUN_VALUES_BEFORE_COMMAND 2

struct run_args {
	const char *name;
	const char *values[ARRAY_SIZE(run_values)];
	word_list ports, labels, networks, env, cmd;
	char *copies[5];            /* the split values (see run_args_parse) */
};

static void run_args_free(struct run_args *a)
{
	array_free(&a->ports);
	array_free(&a->labels);
	array_free(&a->networks);
	array_free(&a->env);
	array_free(&a->cmd);
	for (size_t i = 0; i < ARRAY_SIZE(a->copies); i++)
		free(a->copies[i]);
}

/* v's lines into list (a copy of v, kept in *copy). */
static int split_lines(const char *v, char **copy, word_list *list)
{
	char *p;

	free(*copy);
	if (!(*copy = strdup(v)))
		return -ENOMEM;
	for (p = *copy;; ) {
		char **slot = array_push(list), *nl = strchr(p, '\n');

		if (!slot)
			return -ENOMEM;
		*slot = p;
		if (!nl)
			return 0;
		*nl = '\0';
		p = nl + 1;
	}
}

/* The request's words: run NAME [--image REF] [--rootfs DIR] [-p SPECS]
 * [-l K=V...] [--network NS] [-e K=V...] [--restart P] [--command WORDS]:
 * each list one word, its items on lines (a request has at most
 * CTL_MAX_ARGS words; no item can hold a line break, a container file could
 * not). The CLI has made DIR absolute and the flags' other spellings these. */
static int run_args_parse(const struct ctl_request *rq, struct run_args *a, struct err *e)
{
	if (rq->argc < 2 || rq->argv[1][0] == '-' || rq->argc % 2)
		return err_set(e, EINVAL, RUN_USAGE);
	a->name = rq->argv[1];
	for (int i = 2; i + 1 < rq->argc; i += 2) {
		const char *o = rq->argv[i], *v = rq->argv[i + 1];
		static const char *const lists[] = { "-p", "-l", "--network", "-e", "--command" };
		word_list *const targets[] = { &a->ports, &a->labels, &a->networks, &a->env,
					       &a->cmd };
		size_t k;

		for (k = 0; k < ARRAY_SIZE(run_values); k++)
			if (!strcmp(o, run_values[k].word) && !a->values[k])
				break;
		if (k < ARRAY_SIZE(run_values)) {
			a->values[k] = v;
			continue;
		}
		for (k = 0; k < ARRAY_SIZE(lists); k++)
			if (!strcmp(o, lists[k]) && !a->copies[k])
				break;
		if (k == ARRAY_SIZE(lists))
			return err_set(e, EINVAL, "unknown or repeated option '%s' (%s)", o, RUN_USAGE);
		if (split_lines(v, &a->copies[k], targets[k]) < 0)
			return err_set(e, ENOMEM, "run");
	}
	return 0;
}

/* The container file of a: keys in the order of README's reference. */
static int run_ini(const struct run_args *a, struct buf *ini, struct err *e)
{
	buf_puts(ini, "; written by `berth run`: edit it and `berth reload`, or `berth rm`\n"
		      "[container]\n");
	for (size_t k = 0; k < RUN_VALUES_BEFORE_COMMAND; k++)
		if (a->values[k] && put_value(ini, run_values[k].key, a->values[k], e) < 0)
			return -1;
	if (put_command(ini, a->cmd.v, a->cmd.n, e) < 0)
		return -1;
	for (size_t i = 0; i < a->env.n; i++)
		if (put_value(ini, "env", a->env.v[i], e) < 0)
			return -1;
	if (put_list(ini, "labels", a->labels.v, a->labels.n, e) < 0 ||
	    put_list(ini, "networks", a->networks.v, a->networks.n, e) < 0 ||
	    put_list(ini, "ports", a->ports.v, a->ports.n, e) < 0)
		return -1;
	for (size_t k = RUN_VALUES_BEFORE_COMMAND; k < ARRAY_SIZE(run_values); k++)
		if (a->values[k] && put_value(ini, run_values[k].key, a->values[k], e) < 0)
			return -1;
	return 0;
}

int req_run(struct daemon *d, const struct ctl_request *rq, struct buf *out, struct err *e)
{
	const char *dir = config_dir(d);
	struct run_args a = { 0 };
	const struct cfg_container *c;
	char rel[CONFIG_NAME_MAX + 32], path[4400];
	struct buf ini, errors, reload;
	struct err we = { 0 };
	int ret = -1;

	if (run_args_parse(rq, &a, e) < 0)
		goto out_args;
	if (!config_dns_name_valid(a.name)) {
		err_set(e, EINVAL, "'%s' cannot name a container: a DNS label (a-z, 0-9 and '-', at "
			"most %d characters) is its name in DNS and its file's", a.name,
			CONFIG_NAME_MAX);
		goto out_args;
	}
	if (!dir) {
		err_set(e, EINVAL, "the daemon runs the embedded default configuration, which has "
			"no containers.d to write into: start it with -c DIR (or create %s)",
			CONFIG_DIR_DEFAULT);
		goto out_args;
	}
	snprintf(rel, sizeof(rel), "containers.d/%s.ini", a.name);
	snprintf(path, sizeof(path), "%s/%s", dir, rel);
	if ((c = daemon_container(d, d->cfg, a.name))) {
		err_set(e, EEXIST, "a container named '%s' exists (%s): `berth rm %s` first, or "
			"choose another name", c->name, c->cni ? "a CNI attachment" : c->file, c->name);
		goto out_args;
	}
	if (ctr_busy(&d->sup, a.name)) {
		err_set(e, EEXIST, "container %s was removed and is still stopping: try again once "
			"it is gone", a.name);
		goto out_args;
	}
	if (access(path, F_OK) == 0) {
		err_set(e, EEXIST, "%s exists (not applied yet: `berth reload`, or remove it)", path);
		goto out_args;
	}
	buf_init(&ini);
	buf_init(&errors);
	buf_init(&reload);
	if (run_ini(&a, &ini, e) < 0)
		goto out;
	ret = check_config(d, dir, NULL, &(struct config_file){ rel, ini.data, ini.len }, &errors);
	if (ret < 0) {
		size_t n = count_lines(&errors);

		err_set(e, -ret, "run rejected: %zu error%s in the configuration with %s; nothing "
			"was written", n, n == 1 ? "" : "s", rel);
		buf_append(out, errors.data ? errors.data : "", errors.len);
		goto out;
	}
	ret = write_ctr_file(dir, a.name, ini.data, ini.len, e);
	if (ret < 0)
		goto out;
	ret = daemon_request_reload(d, false, &reload, e);
	if (ret < 0) {
		/* something else changed meanwhile: take ours back */
		if (remove_file(dir, rel, &we) < 0)
			daemon_log(d, LOG_ERROR, "run %s: %s", a.name, we.msg);
		buf_append(out, reload.data ? reload.data : "", reload.len);
		goto out;
	}
	daemon_log(d, LOG_INFO, "run: wrote %s", path);
	buf_printf(out, "file=%s\n", rel);
	buf_append(out, reload.data ? reload.data : "", reload.len);
out:
	buf_free(&ini);
	buf_free(&errors);
	buf_free(&reload);
out_args:
	run_args_free(&a);
	return ret < 0 ? -1 : 0;
}

/* ---- rm ------------------------------------------------------------------------ */

int req_remove(struct daemon *d, const struct ctl_request *rq, struct buf *out, struct err *e)
{
	const char *dir = config_dir(d), *name = NULL;
	char rel[4096], cname[CONFIG_NAME_MAX + 1], *text = NULL;
	struct buf errors, reload;
	struct err we = { 0 };
	struct ctr_status st;
	const struct ctr *c;
	bool force = false, busy;
	size_t len = 0;
	int ret;

	for (int i = 1; i < rq->argc; i++) {
		if (!strcmp(rq->argv[i], "-f") && !force)
			force = true;
		else if (rq->argv[i][0] != '-' && !name)
			name = rq->argv[i];
		else
			return err_set(e, EINVAL, "usage: berth rm [-f] NAME");
	}
	if (!name)
		return err_set(e, EINVAL, "usage: berth rm [-f] NAME");
	c = daemon_ctr(d, name);
	if (!c) {
		if (ctr_busy(&d->sup, name))
			return err_set(e, ENOENT, "container %s was removed already and is stopping",
				       name);
		return err_set(e, ENOENT, "no container named '%s'", name);
	}
	if (c->cfg->cni)
		return err_set(e, EINVAL, "%s is a CNI attachment (container %s): its runtime "
			       "(podman, containerd, ...) removes it; berth keeps its network only",
			       c->cfg->name, c->cfg->cni->id);
	if (!dir || !c->cfg->file || !*c->cfg->file)
		return err_set(e, EINVAL, "container %s has no file to remove", c->cfg->name);
	ctr_status(&d->sup, c->cfg->name, &st);
	busy = ctr_busy(&d->sup, c->cfg->name) || !strcmp(st.state, "backoff");
	if (busy && !force)
		return err_set(e, EBUSY, "container %s is %s: stop it first (berth stop %s) or use "
			       "rm -f", c->cfg->name, st.state, c->cfg->name);
	/* the config and its strings go with the reload: copies */
	snprintf(cname, sizeof(cname), "%s", c->cfg->name);
	snprintf(rel, sizeof(rel), "%s", c->cfg->file);
	ret = read_text(dir, rel, &text, &len);
	if (ret < 0)
		return err_set(e, -ret, "read %s/%s: %s", dir, rel, strerror(-ret));
	buf_init(&errors);
	buf_init(&reload);
	ret = check_config(d, dir, rel, NULL, &errors);
	if (ret < 0) {
		size_t n = count_lines(&errors);

		err_set(e, -ret, "rm rejected: %zu error%s in the configuration without %s; nothing "
			"was removed", n, n == 1 ? "" : "s", rel);
		buf_append(out, errors.data ? errors.data : "", errors.len);
		goto out;
	}
	/* as docker rm -f: SIGKILL, no stop_timeout; the reload's stop
	 * follows a process already on its way out */
	if (force && ctr_busy(&d->sup, cname) && ctr_kill(&d->sup, cname, SIGKILL, &we) < 0)
		daemon_log(d, LOG_WARN, "rm -f %s: %s", cname, we.msg);
	ret = remove_file(dir, rel, e);
	if (ret < 0)
		goto out;
	ret = daemon_request_reload(d, false, &reload, e);
	if (ret < 0) {
		char stem[300];

		/* something else changed meanwhile: the file comes back */
		snprintf(stem, sizeof(stem), "%.*s", (int)strlen(rel) - 17, rel + 13);
		if (strncmp(rel, "containers.d/", 13) || strlen(rel) <= 17 ||
		    write_ctr_file(dir, stem, text, len, &we) < 0)
			daemon_log(d, LOG_ERROR, "rm %s: could not put %s back: %s", cname, rel,
				   we.msg);
		buf_append(out, reload.data ? reload.data : "", reload.len);
		goto out;
	}
	daemon_log(d, LOG_INFO, "rm: removed %s/%s", dir, rel);
	buf_printf(out, "file=%s\nwas=%s\n", rel, busy ? "running" : st.state);
	buf_append(out, reload.data ? reload.data : "", reload.len);
out:
	free(text);
	buf_free(&errors);
	buf_free(&reload);
	return ret < 0 ? -1 : 0;
}
