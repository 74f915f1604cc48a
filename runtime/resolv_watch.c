/* resolv_watch.c - follow the resolv.conf that DNS upstreams come from when
 * [dns] upstream is not given, however it changes.
 *
 * DHCP clients and resolvconf either rewrite the file in place (same inode:
 * IN_MODIFY, IN_CLOSE_WRITE) or write a new one and rename it over the old
 * (IN_MOVED_TO in its directory); some delete and create it. So inotify
 * watches both the directory, for events naming the file, and the file
 * itself, for writes that reach it by another path (a bind mount, a hard
 * link). When the path is a symbolic link (systemd-resolved, resolvconf),
 * the directory of its target is watched too, for the name of the target
 * (which need not exist yet).
 * After each change settles (RESOLV_SETTLE_MS: a rewrite is a truncate and
 * some writes, a burst of events) the watches are placed again (the file is
 * another inode after a rename, the link may point elsewhere) and the owner
 * is told once.
 */
#include "runtime/daemon_int.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <unistd.h>

#define RESOLV_SETTLE_MS 100

#define DIR_EVENTS (IN_CREATE | IN_MOVED_TO | IN_MOVED_FROM | IN_DELETE | IN_MODIFY | \
		    IN_CLOSE_WRITE | IN_ONLYDIR)
#define FILE_EVENTS (IN_MODIFY | IN_CLOSE_WRITE | IN_ATTRIB | IN_DELETE_SELF | IN_MOVE_SELF)

/* "/etc/resolv.conf" into "/etc" and "resolv.conf"; false if either does
 * not fit. A name without '/' is in ".". */
static bool split_path(const char *path, char *dir, size_t dsize, char *name, size_t nsize)
{
	const char *slash = strrchr(path, '/');
	size_t dl = slash ? (size_t)(slash - path) : 1;
	const char *base = slash ? slash + 1 : path;

	if (slash && dl == 0)
		dl = 1;             /* "/resolv.conf": the root */
	if (dl >= dsize || strlen(base) >= nsize || !*base)
		return false;
	memcpy(dir, slash ? path : ".", dl);
	dir[dl] = '\0';
	snprintf(name, nsize, "%s", base);
	return true;
}

/* Where path leads when it is a symbolic link: its final target, or, while
 * that does not exist yet (systemd-resolved's stub file before the service
 * starts), where the link points. False when path is no link. */
static bool link_target(const char *path, char *out, size_t size)
{
	char text[PATH_MAX];
	struct stat st;
	ssize_t n;
	size_t dl;

	if (lstat(path, &st) < 0 || !S_ISLNK(st.st_mode))
		return false;
	if (size >= PATH_MAX && realpath(path, out))
		return true;
	n = readlink(path, text, sizeof(text) - 1);
	if (n <= 0)
		return false;
	text[n] = '\0';
	/* a relative link is relative to the link's directory */
	dl = text[0] == '/' || !strrchr(path, '/') ? 0 : (size_t)(strrchr(path, '/') - path + 1);
	if (dl + (size_t)n >= size)
		return false;
	memcpy(out, path, dl);
	memcpy(out + dl, text, (size_t)n + 1);
	return true;
}

/* Place the watches for the path as it is now, and drop those it no longer
 * needs (one inode watched twice, e.g. a link and its target in the same
 * directory, is one watch: it goes only when neither needs it). Returns 0,
 * or the errno of the watch on its directory, without which nothing can be
 * followed. */
static int resolv_watch_arm(struct resolv_watch *w)
{
	char real[PATH_MAX], dir[PATH_MAX];
	bool linked = link_target(w->path, real, sizeof(real));
	int old[3] = { w->wd_dir[0], w->wd_dir[1], w->wd_file };
	int dir_errno = ENAMETOOLONG;

	w->wd_dir[0] = w->wd_dir[1] = -1;
	w->names[1][0] = '\0';
	if (split_path(w->path, dir, sizeof(dir), w->names[0], sizeof(w->names[0]))) {
		w->wd_dir[0] = inotify_add_watch(w->fd.fd, dir, DIR_EVENTS);
		dir_errno = w->wd_dir[0] < 0 ? errno : 0;
	}
	if (linked && split_path(real, dir, sizeof(dir), w->names[1], sizeof(w->names[1])))
		w->wd_dir[1] = inotify_add_watch(w->fd.fd, dir, DIR_EVENTS);
	/* absent for now: the directory watch sees it come */
	w->wd_file = inotify_add_watch(w->fd.fd, w->path, FILE_EVENTS);
	for (int i = 0; i < 3; i++)
		if (old[i] >= 0 && old[i] != w->wd_dir[0] && old[i] != w->wd_dir[1] &&
		    old[i] != w->wd_file)
			inotify_rm_watch(w->fd.fd, old[i]);     /* fails harmlessly if gone */
	return dir_errno;
}

static bool resolv_watch_relevant(const struct resolv_watch *w, const struct inotify_event *ev)
{
	if (ev->mask & IN_Q_OVERFLOW)
		return true;        /* events were lost: look again */
	if (ev->wd == w->wd_file)
		return !(ev->mask & IN_IGNORED);
	for (int i = 0; i < 2; i++)
		if (ev->wd == w->wd_dir[i] && ev->wd >= 0 && ev->len &&
		    !strcmp(ev->name, w->names[i]))
			return true;
	return false;
}

static void resolv_watch_on_events(struct loop_fd *f, uint32_t events)
{
	struct resolv_watch *w = container_of(f, struct resolv_watch, fd);
	char buf[4096] __attribute__((aligned(__alignof__(struct inotify_event))));
	bool changed = false;
	ssize_t n;

	(void)events;
	while ((n = read(f->fd, buf, sizeof(buf))) > 0) {
		for (ssize_t off = 0; off + (ssize_t)sizeof(struct inotify_event) <= n;) {
			const struct inotify_event *ev = (const void *)(buf + off);

			changed |= resolv_watch_relevant(w, ev);
			off += (ssize_t)(sizeof(*ev) + ev->len);
		}
	}
	if (changed && !w->settle.pending)
		loop_timer_set(w->loop, &w->settle, RESOLV_SETTLE_MS);
}

static void resolv_watch_on_settle(struct loop_timer *t)
{
	struct resolv_watch *w = container_of(t, struct resolv_watch, settle);

	resolv_watch_arm(w);        /* a directory gone is noticed at the next reload */
	w->on_change(w);
}

int resolv_watch_start(struct resolv_watch *w, struct loop *l, const char *path,
		       resolv_watch_fn *on_change, struct err *e)
{
	int fd, ret;

	if (w->active && !strcmp(w->path, path))
		return 0;
	resolv_watch_stop(w);
	if (strlen(path) >= sizeof(w->path))
		return err_set(e, ENAMETOOLONG, "follow %s: path too long", path);
	fd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
	if (fd < 0)
		return err_sys(e, errno, "follow %s: inotify", path);
	memset(w, 0, sizeof(*w));
	w->loop = l;
	w->on_change = on_change;
	w->fd.fd = fd;
	w->fd.cb = resolv_watch_on_events;
	w->settle.cb = resolv_watch_on_settle;
	w->wd_file = w->wd_dir[0] = w->wd_dir[1] = -1;
	snprintf(w->path, sizeof(w->path), "%s", path);
	if (loop_fd_add(l, &w->fd, EPOLLIN, e) < 0) {
		close(fd);
		return -1;
	}
	w->active = true;
	ret = resolv_watch_arm(w);
	if (ret) {
		resolv_watch_stop(w);
		return err_sys(e, ret, "follow %s: watch its directory", path);
	}
	return 0;
}

void resolv_watch_stop(struct resolv_watch *w)
{
	if (!w->active)
		return;
	loop_timer_cancel(w->loop, &w->settle);
	loop_fd_del(w->loop, &w->fd);
	close(w->fd.fd);
	w->active = false;
}
