/* run.c - what a container runs from an image: its user resolved through the
 * image's own /etc/passwd and /etc/group, the overlay's lower directories,
 * its stop signal.
 *
 * The files are read from the layer directories themselves, top-most first,
 * as overlayfs would show them: the first layer that has the file gives it;
 * a whiteout (a 0:0 character device) of the file or of a directory above
 * it, or a directory that is opaque (trusted.overlay.opaque=y) without it,
 * hides the layers below. A symlink on the way is not followed (the image's
 * links point into a root that is not mounted here): the file is taken as
 * absent, which a name then reports. */
#include "runtime/image/image_int.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>
#include <unistd.h>

static bool diff_id_ok(const char *d)
{
	return !strncmp(d, "sha256:", 7) && strlen(d + 7) == 64 &&
	       strspn(d + 7, "0123456789abcdef") == 64;
}

int image_lowerdirs(const struct image_info *i, struct buf *out, struct err *e)
{
	if (!i->n_layers)
		return err_set(e, EINVAL, "image %s has no layers", i->ref);
	if (i->n_layers > IMAGE_LAYERS_MAX)
		return err_set(e, EINVAL, "image %s has %zu layers: at most %d can be mounted",
			       i->ref, i->n_layers, IMAGE_LAYERS_MAX);
	for (size_t k = 0; k < i->n_layers; k++)
		if (!diff_id_ok(i->layers[k].diff_id))
			return err_set(e, EINVAL, "image %s: layer %zu has no valid diff_id ('%s')",
				       i->ref, k + 1, i->layers[k].diff_id);
	for (size_t k = i->n_layers; k-- > 0;)
		buf_printf(out, "%s%s", k + 1 == i->n_layers ? "" : ":", i->layers[k].diff_id + 7);
	return 0;
}

static bool is_whiteout(const struct stat *st)
{
	return S_ISCHR(st->st_mode) && st->st_rdev == makedev(0, 0);
}

static bool is_opaque(const char *path)
{
	char v[2];

	return lgetxattr(path, "trusted.overlay.opaque", v, sizeof(v)) == 1 && v[0] == 'y';
}

/* rel ("etc/passwd") as i's layers merge it: 1 with the host path of the
 * regular file that shows in out, 0 when none does. */
static int layers_find(const struct image_info *i, const char *layers, const char *rel,
		       char *out, size_t size)
{
	for (size_t k = i->n_layers; k-- > 0;) {
		char path[PATH_MAX];
		const char *p = rel;
		bool opaque = false;
		size_t len;

		len = (size_t)snprintf(path, sizeof(path), "%s/%s", layers, i->layers[k].diff_id + 7);
		while (*p) {
			size_t n = strcspn(p, "/");
			struct stat st;

			if (len + 1 + n >= sizeof(path))
				return 0;
			len += (size_t)snprintf(path + len, sizeof(path) - len, "/%.*s", (int)n, p);
			if (lstat(path, &st) < 0)
				break;              /* not in this layer: maybe below */
			if (is_whiteout(&st))
				return 0;
			if (!p[n]) {
				if (!S_ISREG(st.st_mode))
					return 0;
				snprintf(out, size, "%s", path);
				return 1;
			}
			if (!S_ISDIR(st.st_mode))
				return 0;           /* a file or a link hides what is below */
			opaque |= is_opaque(path);
			p += n + 1;
		}
		if (opaque)
			return 0;
	}
	return 0;
}

/* The file rel of i into *text (NUL-terminated, malloc'd): 1, 0 when the
 * image has none, or -errno. */
static int layers_read(const struct image_info *i, const char *state_dir, const char *rel,
		       char **text, struct err *e)
{
	char layers[PATH_MAX], path[PATH_MAX];
	size_t len = 0;
	struct stat st;
	char *t;
	int fd;

	*text = NULL;
	snprintf(layers, sizeof(layers), "%s/images/layers", state_dir);
	if (!layers_find(i, layers, rel, path, sizeof(path)))
		return 0;
	fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		return err_sys(e, errno, "image %s: open /%s (%s)", i->ref, rel, path);
	if (fstat(fd, &st) < 0 || st.st_size > IMAGE_USER_FILE_MAX) {
		int en = errno;

		close(fd);
		if (st.st_size > IMAGE_USER_FILE_MAX)
			return err_set(e, EFBIG, "image %s: /%s is larger than %u bytes", i->ref,
				       rel, IMAGE_USER_FILE_MAX);
		return err_sys(e, en, "image %s: stat /%s", i->ref, rel);
	}
	t = malloc((size_t)st.st_size + 1);
	if (!t) {
		close(fd);
		return err_set(e, ENOMEM, "image %s: /%s: out of memory", i->ref, rel);
	}
	/* bounded by the size it had: a file that grows is read as it was */
	while (len < (size_t)st.st_size) {
		ssize_t r = read(fd, t + len, (size_t)st.st_size - len);

		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0) {
			int en = errno;

			close(fd);
			free(t);
			return err_sys(e, en, "image %s: read /%s", i->ref, rel);
		}
		if (!r)
			break;
		len += (size_t)r;
	}
	close(fd);
	t[len] = '\0';
	*text = t;
	return 1;
}

static bool parse_id(const char *s, size_t n, uint32_t *out)
{
	unsigned long long v = 0;

	if (!n || n > 10)
		return false;
	for (size_t k = 0; k < n; k++) {
		if (!isdigit((unsigned char)s[k]))
			return false;
		v = v * 10 + (unsigned)(s[k] - '0');
	}
	if (v >= UINT32_MAX)            /* (uid_t)-1 means "unchanged" to the kernel */
		return false;
	*out = (uint32_t)v;
	return true;
}

/* The fields of one "a:b:c" line: at most max, their starts and lengths. */
static size_t split_fields(const char *line, size_t len, const char **f, size_t *fl, size_t max)
{
	size_t n = 0;
	const char *p = line, *end = line + len;

	while (n < max) {
		const char *c = memchr(p, ':', (size_t)(end - p));

		f[n] = p;
		fl[n] = c ? (size_t)(c - p) : (size_t)(end - p);
		n++;
		if (!c)
			break;
		p = c + 1;
	}
	return n;
}

/* Each line of text, as fields, to fn until it returns true. */
typedef bool line_fn(void *ctx, const char **f, const size_t *fl, size_t n);
static void each_line(const char *text, size_t max, line_fn *fn, void *ctx)
{
	for (const char *p = text; p && *p;) {
		size_t len = strcspn(p, "\n"), fl[8], n;
		const char *f[8];

		if (len && *p != '#') {
			n = split_fields(p, len, f, fl, max < 8 ? max : 8);
			if (fn(ctx, f, fl, n))
				return;
		}
		p = p[len] ? p + len + 1 : NULL;
	}
}

static bool field_is(const char *f, size_t fl, const char *s)
{
	return fl == strlen(s) && !memcmp(f, s, fl);
}

/* passwd: name:x:uid:gid:gecos:home:shell, by name or by uid */
struct pw_find {
	const char *name;           /* NULL: by uid */
	uint32_t uid;
	bool found;
	char pw_name[256];
	uint32_t pw_uid, pw_gid;
	char home[256];
};

static bool pw_line(void *ctx, const char **f, const size_t *fl, size_t n)
{
	struct pw_find *q = ctx;
	uint32_t uid, gid;

	if (n < 4 || !parse_id(f[2], fl[2], &uid) || !parse_id(f[3], fl[3], &gid) ||
	    fl[0] >= sizeof(q->pw_name))
		return false;
	if (q->name ? !field_is(f[0], fl[0], q->name) : uid != q->uid)
		return false;
	q->found = true;
	snprintf(q->pw_name, sizeof(q->pw_name), "%.*s", (int)fl[0], f[0]);
	q->pw_uid = uid;
	q->pw_gid = gid;
	if (n >= 6 && fl[5] && fl[5] < sizeof(q->home))
		snprintf(q->home, sizeof(q->home), "%.*s", (int)fl[5], f[5]);
	return true;
}

/* group: name:x:gid:user,user */
struct gr_find {
	const char *name;           /* a group by name; NULL: the groups of member */
	bool found;
	uint32_t gid;
	const char *member;
	struct image_user *u;
};

static bool gr_line(void *ctx, const char **f, const size_t *fl, size_t n)
{
	struct gr_find *q = ctx;
	uint32_t gid;

	if (n < 3 || !parse_id(f[2], fl[2], &gid))
		return false;
	if (q->name) {
		if (!field_is(f[0], fl[0], q->name))
			return false;
		q->found = true;
		q->gid = gid;
		return true;
	}
	if (n < 4)
		return false;
	for (const char *m = f[3], *end = f[3] + fl[3]; m < end;) {
		const char *c = memchr(m, ',', (size_t)(end - m));
		size_t ml = c ? (size_t)(c - m) : (size_t)(end - m);
		bool dup = false;

		if (field_is(m, ml, q->member)) {
			for (size_t k = 0; k < q->u->n_groups; k++)
				dup |= q->u->groups[k] == gid;
			if (!dup && q->u->n_groups < ARRAY_SIZE(q->u->groups))
				q->u->groups[q->u->n_groups++] = gid;
			break;
		}
		m = c ? c + 1 : end;
	}
	return false;
}

int image_user_resolve(const struct image_info *i, const char *state_dir, const char *user,
		       struct image_user *out, struct err *e)
{
	char spec[256], *passwd = NULL, *group = NULL;
	const char *name, *grp;
	struct pw_find pw = { 0 };
	struct gr_find gr = { 0 };
	bool uid_num;
	char *colon;
	int ret = 0;

	memset(out, 0, sizeof(*out));
	if (snprintf(spec, sizeof(spec), "%s", user && *user ? user : "0") >= (int)sizeof(spec))
		return err_set(e, EINVAL, "image %s: user '%s' is too long", i->ref, user);
	colon = strchr(spec, ':');
	if (colon)
		*colon = '\0';
	name = spec;
	grp = colon ? colon + 1 : NULL;
	if (!*name || (grp && !*grp))
		return err_set(e, EINVAL, "image %s: user '%s': expected USER[:GROUP]", i->ref, user);
	uid_num = parse_id(name, strlen(name), &out->uid);
	ret = layers_read(i, state_dir, "etc/passwd", &passwd, e);
	if (ret < 0)
		goto done;
	if (passwd) {
		pw.name = uid_num ? NULL : name;
		pw.uid = out->uid;
		each_line(passwd, 7, pw_line, &pw);
	}
	if (!uid_num && !pw.found) {
		ret = err_set(e, ENOENT, "unknown user '%s' in image %s%s", name, i->ref,
			      passwd ? "" : " (it has no /etc/passwd)");
		goto done;
	}
	if (pw.found) {
		out->uid = pw.pw_uid;
		out->gid = pw.pw_gid;
	}
	snprintf(out->home, sizeof(out->home), "%s", pw.home[0] ? pw.home :
		 out->uid == 0 ? "/root" : "/");
	if (grp && parse_id(grp, strlen(grp), &out->gid)) {
		ret = 0;
		goto done;
	}
	if (grp || pw.found) {
		ret = layers_read(i, state_dir, "etc/group", &group, e);
		if (ret < 0)
			goto done;
	}
	if (grp) {
		gr.name = grp;
		if (group)
			each_line(group, 4, gr_line, &gr);
		if (!gr.found) {
			ret = err_set(e, ENOENT, "unknown group '%s' in image %s%s", grp, i->ref,
				      group ? "" : " (it has no /etc/group)");
			goto done;
		}
		out->gid = gr.gid;
	} else if (pw.found && group) {
		/* supplementary groups only in the implicit form, as runc */
		gr.member = pw.pw_name;
		gr.u = out;
		each_line(group, 4, gr_line, &gr);
	}
	ret = 0;
done:
	free(passwd);
	free(group);
	return ret < 0 ? ret : 0;
}

int image_signal_parse(const char *s)
{
	static const struct {
		const char *name;
		int sig;
	} names[] = {
		{ "HUP", SIGHUP }, { "INT", SIGINT }, { "QUIT", SIGQUIT }, { "ILL", SIGILL },
		{ "TRAP", SIGTRAP }, { "ABRT", SIGABRT }, { "IOT", SIGIOT }, { "BUS", SIGBUS },
		{ "FPE", SIGFPE }, { "KILL", SIGKILL }, { "USR1", SIGUSR1 }, { "SEGV", SIGSEGV },
		{ "USR2", SIGUSR2 }, { "PIPE", SIGPIPE }, { "ALRM", SIGALRM }, { "TERM", SIGTERM },
		{ "STKFLT", SIGSTKFLT }, { "CHLD", SIGCHLD }, { "CONT", SIGCONT },
		{ "STOP", SIGSTOP }, { "TSTP", SIGTSTP }, { "TTIN", SIGTTIN }, { "TTOU", SIGTTOU },
		{ "URG", SIGURG }, { "XCPU", SIGXCPU }, { "XFSZ", SIGXFSZ },
		{ "VTALRM", SIGVTALRM }, { "PROF", SIGPROF }, { "WINCH", SIGWINCH },
		{ "IO", SIGIO }, { "POLL", SIGPOLL }, { "PWR", SIGPWR }, { "SYS", SIGSYS },
	};
	char up[32];
	uint32_t n;
	size_t len;

	if (!s || !*s)
		return -1;
	if (parse_id(s, strlen(s), &n))
		return n >= 1 && n < (uint32_t)_NSIG ? (int)n : -1;
	for (len = 0; s[len] && len < sizeof(up) - 1; len++)
		up[len] = (char)toupper((unsigned char)s[len]);
	up[len] = '\0';
	if (s[len])
		return -1;
	s = !strncmp(up, "SIG", 3) ? up + 3 : up;
	for (size_t k = 0; k < ARRAY_SIZE(names); k++)
		if (!strcmp(s, names[k].name))
			return names[k].sig;
	if (!strncmp(s, "RTMIN", 5) || !strncmp(s, "RTMAX", 5)) {
		bool min = s[4] == 'N';
		int sig = min ? SIGRTMIN : SIGRTMAX;

		s += 5;
		if (*s) {
			if ((min && *s != '+') || (!min && *s != '-') ||
			    !parse_id(s + 1, strlen(s + 1), &n) || n > (uint32_t)(SIGRTMAX - SIGRTMIN))
				return -1;
			sig = min ? sig + (int)n : sig - (int)n;
		}
		return sig;
	}
	return -1;
}
