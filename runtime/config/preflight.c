/* preflight.c - what a configuration needs from the filesystem: a
 * container's rootfs must exist (an error: `config check` and a reload
 * refuse the configuration), and its command should be found in it (a
 * warning: the container would fail to start).
 *
 * Kept apart from loading, which reads only the configuration's own files:
 * at the daemon's start-up a missing rootfs is that container's error (it
 * fails to start and says why), not a reason to leave every other
 * container without its network after a power cut. */
#include "runtime/config/config_int.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#define ROOT_LINKS_MAX 40           /* symlinks followed in one lookup, as the kernel's */
#define DEFAULT_PATH "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

/* path as the container will see it inside root, symlinks (absolute ones
 * too) followed inside root. Returns 0 with the host path of the last
 * component in out, -ENOENT, -ENOTDIR, -ELOOP or -ENAMETOOLONG. */
static int root_resolve(const char *root, const char *path, char *out, size_t size)
{
	char done[PATH_MAX] = "", todo[PATH_MAX], host[PATH_MAX], link[PATH_MAX];
	int links = 0;

	if (snprintf(todo, sizeof(todo), "%s", path) >= (int)sizeof(todo))
		return -ENAMETOOLONG;
	for (;;) {
		char *p = todo + strspn(todo, "/"), *slash;
		size_t len;
		struct stat st;
		ssize_t n;

		if (!*p)
			break;
		len = strcspn(p, "/");
		slash = p + len;
		if (len == 1 && p[0] == '.') {
			memmove(todo, slash, strlen(slash) + 1);
			continue;
		}
		if (len == 2 && p[0] == '.' && p[1] == '.') {
			char *up = strrchr(done, '/');

			if (up)
				*up = '\0';     /* never above root */
			memmove(todo, slash, strlen(slash) + 1);
			continue;
		}
		if (strlen(done) + 1 + len >= sizeof(done) ||
		    snprintf(host, sizeof(host), "%s%s/%.*s", root, done, (int)len, p) >=
		    (int)sizeof(host))
			return -ENAMETOOLONG;
		if (lstat(host, &st) < 0)
			return -errno;
		if (!S_ISLNK(st.st_mode)) {
			size_t dl = strlen(done);

			snprintf(done + dl, sizeof(done) - dl, "/%.*s", (int)len, p);
			memmove(todo, slash, strlen(slash) + 1);
			if (*slash && !S_ISDIR(st.st_mode))
				return -ENOTDIR;
			continue;
		}
		if (++links > ROOT_LINKS_MAX)
			return -ELOOP;
		n = readlink(host, link, sizeof(link) - 1);
		if (n < 0)
			return -errno;
		link[n] = '\0';
		if (link[0] == '/')
			done[0] = '\0';     /* absolute: from the container's root */
		if (strlen(link) + strlen(slash) + 1 >= sizeof(todo))
			return -ENAMETOOLONG;
		memmove(todo + n, slash, strlen(slash) + 1);
		memcpy(todo, link, (size_t)n);
	}
	if (snprintf(out, size, "%s%s", root, *done ? done : "/") >= (int)size)
		return -ENAMETOOLONG;
	return 0;
}

/* The PATH the container's process gets: its env's, else the default. */
static const char *container_path(const struct cfg_container *c)
{
	for (size_t i = 0; i < c->n_env; i++)
		if (!strncmp(c->env[i], "PATH=", 5))
			return c->env[i] + 5;
	return DEFAULT_PATH;
}

static bool root_executable(const char *root, const char *path)
{
	char host[PATH_MAX];
	struct stat st;

	return root_resolve(root, path, host, sizeof(host)) == 0 && stat(host, &st) == 0 &&
	       S_ISREG(st.st_mode) && (st.st_mode & 0111);
}

int config_container_preflight(const struct cfg_container *c, bool *fatal, struct err *e)
{
	const char *cmd = c->argc ? c->argv[0] : NULL;
	struct stat st;

	*fatal = false;
	if (!c->rootfs)
		return 0;           /* an image: checked when it is in the store */
	*fatal = true;
	if (stat(c->rootfs, &st) < 0)
		return err_sys(e, errno, "rootfs %s", c->rootfs);
	if (!S_ISDIR(st.st_mode))
		return err_set(e, ENOTDIR, "rootfs %s is not a directory", c->rootfs);
	*fatal = false;
	if (!cmd)
		return 0;
	if (strchr(cmd, '/')) {
		if (!root_executable(c->rootfs, cmd))
			return err_set(e, ENOENT, "command '%s' is not an executable file in the "
				       "rootfs %s", cmd, c->rootfs);
		return 0;
	}
	for (const char *p = container_path(c); *p;) {
		size_t len = strcspn(p, ":");
		char full[PATH_MAX];

		if (len && snprintf(full, sizeof(full), "%.*s/%s", (int)len, p, cmd) <
		    (int)sizeof(full) && root_executable(c->rootfs, full))
			return 0;
		p += len + (p[len] == ':');
	}
	return err_set(e, ENOENT, "command '%s' is not found in the rootfs %s (PATH %s)", cmd,
		       c->rootfs, container_path(c));
}

void config_preflight(const struct config *cfg, const struct config *old,
		      struct config_errors *errs, struct config_errors *warnings)
{
	for (size_t i = 0; i < cfg->n_containers; i++) {
		const struct cfg_container *c = cfg->containers[i], *was;
		struct err e = { 0 };
		char *msg;
		bool fatal;

		was = old ? config_container(old, c->name) : NULL;
		if (was && was->hash == c->hash)
			continue;           /* checked when it was loaded */
		if (config_container_preflight(c, &fatal, &e) == 0)
			continue;
		if (asprintf(&msg, "%s:%d: [container] %s%s", c->file,
			     fatal ? c->lines.rootfs : c->lines.command, e.msg,
			     fatal ? "" : ": the container would fail to start") < 0)
			continue;
		config_errors_add(fatal ? errs : warnings, c->file, fatal ? c->lines.rootfs :
				  c->lines.command, msg);
	}
}
