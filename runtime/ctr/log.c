/* log.c - container logs: the monitor appends and rotates once at the size
 * cap; the daemon reads the whole log, its tail, or what follows a cursor. */
#include "runtime/ctr/ctr.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static int log_path(char *buf, size_t size, const char *state_dir, const char *name,
		    const char *suffix)
{
	int n = snprintf(buf, size, "%s/logs/%s.log%s", state_dir, name, suffix);

	return n < 0 || (size_t)n >= size ? -ENAMETOOLONG : 0;
}

int ctr_log_open(struct ctr_log *l, const char *state_dir, const char *name, uint64_t max,
		 struct err *e)
{
	char dir[strlen(state_dir) + sizeof("/logs")];
	struct stat st;
	int n;

	l->fd = -1;
	l->dirfd = -1;
	l->size = 0;
	l->max = max ? max : CTR_LOG_SIZE_DEFAULT;
	n = snprintf(l->file, sizeof(l->file), "%s.log", name);
	if (n < 0 || (size_t)n >= sizeof(l->file))
		return err_set(e, ENAMETOOLONG, "log path for %s is too long", name);
	snprintf(dir, sizeof(dir), "%s/logs", state_dir);
	/* mkdir_p (and its 4 KiB buffer on the monitor's stack) only the
	 * first time */
	l->dirfd = open(dir, O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (l->dirfd < 0 && errno == ENOENT) {
		if (mkdir_p("log directory", dir, 0700, e) < 0)
			return -e->code;
		l->dirfd = open(dir, O_PATH | O_DIRECTORY | O_CLOEXEC);
	}
	if (l->dirfd < 0)
		return err_sys(e, errno, "open log directory %s", dir);
	l->fd = openat(l->dirfd, l->file, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0640);
	if (l->fd < 0)
		return err_sys(e, errno, "open log %s/%s", dir, l->file);
	l->size = fstat(l->fd, &st) == 0 ? (uint64_t)st.st_size : 0;
	return 0;
}

/* NAME.log becomes NAME.log.1 (replacing the previous one); a new NAME.log. */
static void log_rotate(struct ctr_log *l)
{
	char old[sizeof(l->file) + 2];
	int fd;

	snprintf(old, sizeof(old), "%s.1", l->file);
	if (renameat(l->dirfd, l->file, l->dirfd, old) < 0)
		return;             /* keep appending: better too big than lost */
	fd = openat(l->dirfd, l->file, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0640);
	if (fd < 0)
		return;
	close(l->fd);
	l->fd = fd;
	l->size = 0;
}

void ctr_log_write(struct ctr_log *l, const void *p, size_t n)
{
	const char *s = p;

	while (n && l->fd >= 0) {
		size_t room = l->size < l->max ? (size_t)(l->max - l->size) : 0;
		size_t k = n < room ? n : room;
		ssize_t w;

		if (!k) {
			log_rotate(l);
			if (l->size)            /* rotation failed: write past the cap */
				k = n;
			else
				continue;
		}
		w = write(l->fd, s, k);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return;             /* disk full: drop, never block the container */
		s += w;
		n -= (size_t)w;
		l->size += (uint64_t)w;
	}
}

void ctr_log_close(struct ctr_log *l)
{
	if (l->fd >= 0)
		close(l->fd);
	if (l->dirfd >= 0)
		close(l->dirfd);
	l->fd = -1;
	l->dirfd = -1;
}

/* Append the bytes of fd from off (at most max; max 0: all) to out; returns
 * the number appended. */
static size_t read_from(int fd, uint64_t off, size_t max, struct buf *out)
{
	char chunk[65536];
	size_t total = 0;

	for (;;) {
		size_t want = sizeof(chunk);
		ssize_t r;

		if (max && max - total < want)
			want = max - total;
		if (!want)
			break;
		r = pread(fd, chunk, want, (off_t)(off + total));
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			break;
		buf_append(out, chunk, (size_t)r);
		total += (size_t)r;
	}
	return total;
}

int ctr_log_read(const char *state_dir, const char *name, long tail, struct buf *out,
		 struct err *e)
{
	char path[4096];
	size_t start = out->len, from;
	int fds[2], found = 0;
	uint64_t size[2] = { 0, 0 }, skip;
	struct stat st;

	for (int k = 0; k < 2; k++) {   /* NAME.log.1, then NAME.log */
		if (log_path(path, sizeof(path), state_dir, name, k == 0 ? ".1" : "") < 0)
			return err_set(e, ENAMETOOLONG, "log path for %s is too long", name);
		fds[k] = open(path, O_RDONLY | O_CLOEXEC);
		if (fds[k] >= 0 && fstat(fds[k], &st) == 0)
			size[k] = (uint64_t)st.st_size;
		found += fds[k] >= 0;
	}
	/* one reply holds at most the newest CTR_LOG_READ_MAX bytes */
	skip = size[0] + size[1] > CTR_LOG_READ_MAX ? size[0] + size[1] - CTR_LOG_READ_MAX : 0;
	for (int k = 0; k < 2; k++) {
		uint64_t off = skip < size[k] ? skip : size[k];

		skip -= off;
		if (fds[k] < 0)
			continue;
		read_from(fds[k], off, (size_t)(size[k] - off), out);
		close(fds[k]);
	}
	if (!found)
		return 0;           /* never started: an empty log */
	if (tail < 0 || out->len == start)
		return 0;
	/* keep the last `tail` lines; an unfinished last line counts as one */
	from = out->len;
	if (out->data[from - 1] == '\n')
		from--;
	for (long lines = 0; from > start; from--) {
		if (out->data[from - 1] == '\n' && ++lines == tail)
			break;
	}
	if (tail == 0)
		from = out->len;
	memmove(out->data + start, out->data + from, out->len - from);
	out->len = start + (out->len - from);
	if (out->data)
		out->data[out->len] = '\0';
	return 0;
}

void ctr_log_cursor(const char *state_dir, const char *name, char *buf, size_t size)
{
	char path[4096];
	struct stat st;

	if (log_path(path, sizeof(path), state_dir, name, "") == 0 && stat(path, &st) == 0)
		snprintf(buf, size, "%" PRIu64 ":%" PRIu64, (uint64_t)st.st_ino, (uint64_t)st.st_size);
	else
		snprintf(buf, size, "0:0");
}

static int parse_cursor(const char *c, uint64_t *ino, uint64_t *off)
{
	char *end;

	errno = 0;
	*ino = strtoull(c, &end, 10);
	if (errno || *end != ':' || end == c)
		return -1;
	c = end + 1;
	*off = strtoull(c, &end, 10);
	if (errno || *end || end == c)
		return -1;
	return 0;
}

int ctr_log_from(const char *state_dir, const char *name, const char *cursor, struct buf *out,
		 char *next, size_t size, struct err *e)
{
	char cur_path[4096], old_path[4096 + 4];
	uint64_t ino, off, n_ino = 0, n_off = 0;
	struct stat cs, os;
	int cur, old;
	size_t got = 0;

	if (parse_cursor(cursor, &ino, &off) < 0)
		return err_set(e, EINVAL, "bad log cursor '%s' (expected INODE:OFFSET)", cursor);
	if (log_path(cur_path, sizeof(cur_path), state_dir, name, "") < 0)
		return err_set(e, ENAMETOOLONG, "log path for %s is too long", name);
	snprintf(old_path, sizeof(old_path), "%s.1", cur_path);
	/* open both first, then look at what was opened: a rotation in between
	 * shows as inode numbers, never as lost or repeated bytes */
	old = open(old_path, O_RDONLY | O_CLOEXEC);
	cur = open(cur_path, O_RDONLY | O_CLOEXEC);
	if (cur >= 0 && fstat(cur, &cs) == 0) {
		n_ino = (uint64_t)cs.st_ino;
	} else if (cur >= 0) {
		close(cur);
		cur = -1;
	}
	if (old >= 0 && fstat(old, &os) == 0 && ino && (uint64_t)os.st_ino == ino &&
	    (!n_ino || n_ino != ino)) {
		/* the cursor's file was rotated: its rest first */
		if (off < (uint64_t)os.st_size)
			got = read_from(old, off, CTR_LOG_CHUNK_MAX, out);
		if (off + got < (uint64_t)os.st_size) {
			n_ino = ino;
			n_off = off + got;
		} else if (cur >= 0) {
			n_off = read_from(cur, 0, CTR_LOG_CHUNK_MAX - got, out);
		}
	} else if (cur >= 0) {
		if (n_ino != ino || off > (uint64_t)cs.st_size)
			off = 0;            /* another file (or rotated twice): from its start */
		n_off = off + read_from(cur, off, CTR_LOG_CHUNK_MAX, out);
	}
	if (old >= 0)
		close(old);
	if (cur >= 0)
		close(cur);
	snprintf(next, size, "%" PRIu64 ":%" PRIu64, n_ino, n_off);
	return 0;
}
