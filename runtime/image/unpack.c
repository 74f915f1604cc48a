/* unpack.c - runtime/image: apply one layer (a tar, gzip-compressed or not)
 * into an empty directory, as an overlayfs lower layer.
 *
 * Nothing in a layer is trusted. Every path is made relative to the layer's
 * directory fd, one component at a time with O_NOFOLLOW|O_DIRECTORY, so a
 * symlink in the layer (absolute or not) is never followed, by us or by the
 * kernel on our behalf: "evil -> /" then "evil/etc/passwd" fails instead of
 * writing the host's file. Memory stays bounded whatever the layer's size:
 * one 64 KiB input buffer, one 64 KiB copy buffer, zlib's window, the tar
 * reader's block and the names of the directories (their mtimes are set at
 * the end, since creating their children changes them). */
#include "runtime/image/image_int.h"

#include <bearssl.h>
#include <dirent.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>
#include <unistd.h>
#include <zlib.h>

#define IO_BUF (64u << 10)

/* The layer as read: raw bytes (digest) → gzip or not → tar bytes (diff_id). */
struct layer_in {
	struct image_src raw;
	br_sha256_context digest, diff_id;
	uint64_t bytes_in, bytes_tar;
	uint8_t *buf;               /* IO_BUF of raw input */
	size_t pos, len;            /* unconsumed input: buf[pos..len) */
	bool eof;
	bool raw_failed;            /* the source's own read failed */
	bool gzip, z_ready, z_done;
	z_stream z;
};

/* Refill buf from the raw source (only when it is empty). 0, or -errno. */
static int raw_fill(struct layer_in *l, struct err *e)
{
	ssize_t r;

	if (l->pos < l->len || l->eof)
		return 0;
	r = l->raw.read(l->raw.ctx, l->buf, IO_BUF, e);
	if (r < 0) {
		l->raw_failed = true;
		return err_wrap(e, "reading the layer");
	}
	l->pos = 0;
	l->len = (size_t)r;
	l->eof = r == 0;
	br_sha256_update(&l->digest, l->buf, (size_t)r);
	l->bytes_in += (uint64_t)r;
	return 0;
}

static ssize_t gz_read(struct layer_in *l, void *p, size_t n, struct err *e)
{
	for (;;) {
		int ret, zr;
		size_t out_before;

		if (l->z_done)
			return 0;
		ret = raw_fill(l, e);
		if (ret < 0)
			return ret;
		l->z.next_in = l->buf + l->pos;
		l->z.avail_in = (uInt)(l->len - l->pos);
		l->z.next_out = p;
		l->z.avail_out = (uInt)(n > UINT32_MAX ? UINT32_MAX : n);
		out_before = l->z.avail_out;
		zr = inflate(&l->z, Z_NO_FLUSH);
		l->pos = l->len - l->z.avail_in;
		size_t got = out_before - l->z.avail_out;

		if (zr == Z_STREAM_END) {
			/* gzip members may follow one another (RFC 1952 §2.2) */
			ret = raw_fill(l, e);
			if (ret < 0)
				return ret;
			if (l->pos == l->len)
				l->z_done = true;
			else if (inflateReset(&l->z) != Z_OK)
				return err_set(e, EIO, "gzip: cannot start the next member");
		} else if (zr == Z_BUF_ERROR) {
			if (l->eof && !got)
				return err_set(e, EIO, "gzip: the compressed layer ends early (after %"
					       PRIu64 " bytes)", l->bytes_in);
		} else if (zr != Z_OK) {
			return err_set(e, EINVAL, "gzip: %s (compressed byte %" PRIu64 ")",
				       l->z.msg ? l->z.msg : "corrupt data",
				       l->bytes_in - (l->len - l->pos));
		}
		if (got)
			return (ssize_t)got;
		if (l->eof && l->pos == l->len && !l->z_done)
			return err_set(e, EIO, "gzip: the compressed layer ends early (after %"
				       PRIu64 " bytes)", l->bytes_in);
	}
}

static ssize_t layer_read(void *ctx, void *p, size_t n, struct err *e)
{
	struct layer_in *l = ctx;
	ssize_t r;

	if (l->gzip) {
		r = gz_read(l, p, n, e);
	} else {
		int ret = raw_fill(l, e);

		if (ret < 0)
			return ret;
		r = (ssize_t)(l->len - l->pos < n ? l->len - l->pos : n);
		memcpy(p, l->buf + l->pos, (size_t)r);
		l->pos += (size_t)r;
	}
	if (r > 0) {
		br_sha256_update(&l->diff_id, p, (size_t)r);
		l->bytes_tar += (uint64_t)r;
	}
	return r;
}

/* ---- paths -------------------------------------------------------------------- */

struct dir_time {
	char *name;
	int64_t mtime;
};

struct unpacker {
	int root;
	const struct unpack_opts *o;
	struct unpack_result *r;
	char *copy;                 /* IO_BUF */
	ARRAY(struct dir_time) dirs;
	const char *name;           /* the entry being applied, for errors */
};

static int entry_err(const struct unpacker *u, struct err *e, int code, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));
static int entry_err(const struct unpacker *u, struct err *e, int code, const char *fmt, ...)
{
	char why[ERR_MSG_MAX];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(why, sizeof(why), fmt, ap);
	va_end(ap);
	return err_set(e, code, "layer entry '%s': %s", u->name, why);
}

static int entry_sys(const struct unpacker *u, struct err *e, int code, const char *what)
{
	return err_sys(e, code, "layer entry '%s': %s", u->name, what);
}

/* Open the directory name[0..len) under root, one component at a time and
 * never through a symlink; missing components are created (0755) when
 * create. Returns an fd or -errno (e names the component). */
static int open_dir(struct unpacker *u, const char *name, size_t len, bool create, struct err *e)
{
	int fd = dup(u->root);
	size_t i = 0;

	if (fd < 0)
		return entry_sys(u, e, errno, "dup");
	while (i < len) {
		char comp[NAME_MAX + 1];
		size_t k = i;
		int next;

		while (k < len && name[k] != '/')
			k++;
		if (k - i > NAME_MAX) {
			close(fd);
			return entry_err(u, e, ENAMETOOLONG, "a component is longer than %d bytes", NAME_MAX);
		}
		memcpy(comp, name + i, k - i);
		comp[k - i] = '\0';
		next = openat(fd, comp, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		if (next < 0 && errno == ENOENT && create) {
			if (mkdirat(fd, comp, 0755) < 0 && errno != EEXIST) {
				int err = errno;

				close(fd);
				return err_sys(e, err, "layer entry '%s': create directory '%.*s'",
					       u->name, (int)k, name);
			}
			next = openat(fd, comp, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		}
		if (next < 0) {
			int err = errno;
			struct stat st;

			if ((err == ELOOP || err == ENOTDIR) &&
			    fstatat(fd, comp, &st, AT_SYMLINK_NOFOLLOW) == 0) {
				close(fd);
				if (S_ISLNK(st.st_mode))
					return entry_err(u, e, ELOOP, "the path passes through the symlink '%.*s'",
							 (int)k, name);
				return entry_err(u, e, ENOTDIR, "the path passes through '%.*s', which is not a directory",
						 (int)k, name);
			}
			close(fd);
			return err_sys(e, err, "layer entry '%s': open directory '%.*s'", u->name,
				       (int)k, name);
		}
		close(fd);
		fd = next;
		i = k + 1;
	}
	return fd;
}

/* Remove leaf under dirfd, a directory with everything in it. */
static int remove_tree(const struct unpacker *u, int dirfd, const char *leaf, int depth,
		       struct err *e)
{
	struct stat st;
	DIR *d;
	struct dirent *de;
	int fd;

	if (fstatat(dirfd, leaf, &st, AT_SYMLINK_NOFOLLOW) < 0)
		return errno == ENOENT ? 0 : entry_sys(u, e, errno, "stat what it replaces");
	if (!S_ISDIR(st.st_mode)) {
		if (unlinkat(dirfd, leaf, 0) < 0)
			return entry_sys(u, e, errno, "remove what it replaces");
		return 0;
	}
	if (depth > TAR_NAME_MAX / 2)
		return entry_err(u, e, ELOOP, "directories nested too deep to remove");
	fd = openat(dirfd, leaf, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		return entry_sys(u, e, errno, "open the directory it replaces");
	d = fdopendir(fd);
	if (!d) {
		close(fd);
		return entry_sys(u, e, errno, "read the directory it replaces");
	}
	while ((de = readdir(d))) {
		int ret;

		if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
			continue;
		ret = remove_tree(u, fd, de->d_name, depth + 1, e);
		if (ret < 0) {
			closedir(d);
			return ret;
		}
	}
	closedir(d);
	if (unlinkat(dirfd, leaf, AT_REMOVEDIR) < 0)
		return entry_sys(u, e, errno, "remove the directory it replaces");
	return 0;
}

/* ---- metadata ------------------------------------------------------------------ */

static int set_xattrs(struct unpacker *u, const struct tar_entry *t, int fd, int dirfd,
		      const char *leaf, struct err *e)
{
	for (size_t i = 0; i < t->n_xattrs; i++) {
		const struct tar_xattr *x = &t->xattrs[i];
		int ret;

		/* overlayfs's own attributes come from whiteouts, never from an
		 * archive (a redirect or metacopy could point outside the layer) */
		if (strncmp(x->name, "trusted.overlay.", 16) == 0) {
			u->r->xattrs_skipped++;
			continue;
		}
		if (fd >= 0) {
			ret = fsetxattr(fd, x->name, x->value, x->len, 0);
		} else {
			char path[64 + NAME_MAX];

			snprintf(path, sizeof(path), "/proc/self/fd/%d/%s", dirfd, leaf);
			ret = lsetxattr(path, x->name, x->value, x->len, 0);
		}
		if (ret < 0) {
			if (errno == EOPNOTSUPP || errno == EPERM || errno == ENOTSUP) {
				u->r->xattrs_skipped++;
				continue;
			}
			return err_sys(e, errno, "layer entry '%s': set xattr '%s'", u->name, x->name);
		}
	}
	return 0;
}

/* Ownership, then mode (chown clears set-id bits), then xattrs (chown also
 * clears security.capability), then mtime. fd: the entry opened, or -1 (a
 * node reached through dirfd/leaf; symlinks get no mode). */
static int set_meta(struct unpacker *u, const struct tar_entry *t, int fd, int dirfd,
		    const char *leaf, bool mtime, struct err *e)
{
	bool link = t->type == TAR_SYMLINK;
	int ret;

	if ((fd >= 0 ? fchown(fd, t->uid, t->gid) :
	     fchownat(dirfd, leaf, t->uid, t->gid, AT_SYMLINK_NOFOLLOW)) < 0)
		return entry_sys(u, e, errno, "chown");
	if (!link && (fd >= 0 ? fchmod(fd, t->mode) : fchmodat(dirfd, leaf, t->mode, 0)) < 0)
		return entry_sys(u, e, errno, "chmod");
	ret = set_xattrs(u, t, fd, dirfd, leaf, e);
	if (ret < 0)
		return ret;
	if (mtime) {
		struct timespec ts[2] = { { t->mtime, 0 }, { t->mtime, 0 } };

		if ((fd >= 0 ? futimens(fd, ts) :
		     utimensat(dirfd, leaf, ts, AT_SYMLINK_NOFOLLOW)) < 0)
			return entry_sys(u, e, errno, "set mtime");
	}
	return 0;
}

/* ---- entries ------------------------------------------------------------------- */

static int make_file(struct unpacker *u, struct tar_reader *tr, const struct tar_entry *t,
		     int dirfd, const char *leaf, struct err *e)
{
	struct image_src d = tar_data(tr);
	int fd, ret = 0;

	fd = openat(dirfd, leaf, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (fd < 0)
		return entry_sys(u, e, errno, "create");
	for (;;) {
		ssize_t r = d.read(d.ctx, u->copy, IO_BUF, e);

		if (r < 0) {
			ret = (int)r;
			break;
		}
		if (r == 0)
			break;
		ret = write_all(fd, u->copy, (size_t)r);
		if (ret < 0) {
			ret = entry_sys(u, e, -ret, "write");
			break;
		}
		u->r->bytes_out += (uint64_t)r;
	}
	if (ret == 0)
		ret = set_meta(u, t, fd, dirfd, leaf, true, e);
	close(fd);
	return ret;
}

/* Does name have a ".." component? */
static bool has_dotdot(const char *s)
{
	for (const char *p = s; (p = strstr(p, "..")); p += 2)
		if ((p == s || p[-1] == '/') && (p[2] == '\0' || p[2] == '/'))
			return true;
	return false;
}

static int remember_dir(struct unpacker *u, const char *name, int64_t mtime, struct err *e)
{
	struct dir_time *d = array_push(&u->dirs);

	if (!d || !(d->name = strdup(name))) {
		if (d)
			u->dirs.n--;
		return entry_err(u, e, ENOMEM, "out of memory");
	}
	d->mtime = mtime;
	return 0;
}

static int apply(struct unpacker *u, struct tar_reader *tr, const struct tar_entry *t,
		 struct err *e)
{
	const char *slash = strrchr(t->name, '/');
	const char *leaf = slash ? slash + 1 : t->name;
	size_t plen = slash ? (size_t)(slash - t->name) : 0;
	struct stat st;
	int dirfd, ret = 0;
	bool exists;

	if (has_dotdot(t->name))
		return entry_err(u, e, EPERM, "a name with '..' is refused");
	if (!t->name[0]) {
		/* "./": the layer's own directory */
		if (t->type != TAR_DIR)
			return entry_err(u, e, EINVAL, "an entry without a name");
		ret = set_meta(u, t, u->root, -1, NULL, false, e);
		return ret < 0 ? ret : remember_dir(u, "", t->mtime, e);
	}
	if (strlen(leaf) > NAME_MAX)
		return entry_err(u, e, ENAMETOOLONG, "a component is longer than %d bytes", NAME_MAX);
	dirfd = open_dir(u, t->name, plen, true, e);
	if (dirfd < 0)
		return dirfd;

	/* whiteouts (OCI image spec, "Whiteouts") in overlayfs's form */
	if (strncmp(leaf, ".wh.", 4) == 0) {
		const char *target = leaf + 4;

		if (strcmp(target, ".wh..opq") == 0) {
			if (fsetxattr(dirfd, "trusted.overlay.opaque", "y", 1, 0) < 0)
				ret = entry_sys(u, e, errno, "mark the directory opaque (trusted.overlay.opaque)");
		} else if (strncmp(target, ".wh.", 4) == 0) {
			/* other AUFS metadata (.wh..wh.plnk, ...): nothing for overlayfs */
		} else if (!*target || strcmp(target, ".") == 0 || strcmp(target, "..") == 0) {
			ret = entry_err(u, e, EINVAL, "a whiteout without a name");
		} else {
			ret = remove_tree(u, dirfd, target, 0, e);
			if (ret == 0 && mknodat(dirfd, target, S_IFCHR | 0, makedev(0, 0)) < 0)
				ret = entry_sys(u, e, errno, "create the whiteout (a 0:0 character device)");
		}
		close(dirfd);
		return ret;
	}

	exists = fstatat(dirfd, leaf, &st, AT_SYMLINK_NOFOLLOW) == 0;
	if (exists && !(t->type == TAR_DIR && S_ISDIR(st.st_mode))) {
		/* a later entry replaces an earlier one */
		ret = remove_tree(u, dirfd, leaf, 0, e);
		exists = false;
	}
	if (ret < 0)
		goto out;

	switch (t->type) {
	case TAR_FILE:
		ret = make_file(u, tr, t, dirfd, leaf, e);
		break;
	case TAR_DIR: {
		int fd;

		if (!exists && mkdirat(dirfd, leaf, 0700) < 0) {
			ret = entry_sys(u, e, errno, "mkdir");
			break;
		}
		fd = openat(dirfd, leaf, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		if (fd < 0) {
			ret = entry_sys(u, e, errno, "open the directory");
			break;
		}
		ret = set_meta(u, t, fd, dirfd, leaf, false, e);
		close(fd);
		if (ret == 0)
			ret = remember_dir(u, t->name, t->mtime, e);
		break;
	}
	case TAR_SYMLINK:
		if (!t->link[0]) {
			ret = entry_err(u, e, EINVAL, "a symlink to nothing");
			break;
		}
		if (symlinkat(t->link, dirfd, leaf) < 0) {
			ret = entry_sys(u, e, errno, "symlink");
			break;
		}
		ret = set_meta(u, t, -1, dirfd, leaf, true, e);
		break;
	case TAR_HARDLINK: {
		const char *ts = strrchr(t->link, '/');
		const char *tleaf = ts ? ts + 1 : t->link;
		int tfd;

		if (!t->link[0] || has_dotdot(t->link)) {
			ret = entry_err(u, e, EPERM, "a hard link to '%s' is refused", t->link);
			break;
		}
		tfd = open_dir(u, t->link, ts ? (size_t)(ts - t->link) : 0, false, e);
		if (tfd < 0) {
			ret = entry_err(u, e, EPERM, "a hard link to '%s', which is not a file of this layer",
					t->link);
			break;
		}
		if (fstatat(tfd, tleaf, &st, AT_SYMLINK_NOFOLLOW) < 0 || !S_ISREG(st.st_mode)) {
			ret = entry_err(u, e, EPERM, "a hard link to '%s', which is not a file of this layer",
					t->link);
		} else if (linkat(tfd, tleaf, dirfd, leaf, 0) < 0) {
			ret = entry_sys(u, e, errno, "hard link");
		}
		close(tfd);
		break;
	}
	case TAR_CHAR:
	case TAR_BLOCK:
		if (!u->o || !u->o->allow_devices) {
			ret = entry_err(u, e, EPERM, "a %s device node (%u:%u) is refused ([images] "
					"allow_devices = yes accepts them)",
					t->type == TAR_CHAR ? "character" : "block", t->devmajor,
					t->devminor);
			break;
		}
		/* fall through */
	case TAR_FIFO: {
		mode_t kind = t->type == TAR_CHAR ? S_IFCHR : t->type == TAR_BLOCK ? S_IFBLK : S_IFIFO;

		if (mknodat(dirfd, leaf, kind | 0600, makedev(t->devmajor, t->devminor)) < 0) {
			ret = entry_sys(u, e, errno, "mknod");
			break;
		}
		ret = set_meta(u, t, -1, dirfd, leaf, true, e);
		break;
	}
	}
out:
	close(dirfd);
	return ret;
}

/* Directories' mtimes, once nothing more is created in them. One that a
 * later entry replaced (or a whiteout removed) is gone: not an error. */
static int set_dir_times(struct unpacker *u, struct err *e)
{
	for (size_t i = 0; i < u->dirs.n; i++) {
		const struct dir_time *d = &u->dirs.v[i];
		struct timespec ts[2] = { { d->mtime, 0 }, { d->mtime, 0 } };
		struct err ignored;
		int fd;

		u->name = d->name;
		fd = d->name[0] ? open_dir(u, d->name, strlen(d->name), false, &ignored) : dup(u->root);
		if (fd < 0)
			continue;
		if (futimens(fd, ts) < 0) {
			int err = errno;

			close(fd);
			return entry_sys(u, e, err, "set mtime");
		}
		close(fd);
	}
	return 0;
}

/* After a failure of the layer's content: the rest of the raw input read
 * (not unpacked) into r->digest and r->bytes_in, so that the caller can
 * tell bytes that are not the blob (a damaged download) from a bad layer.
 * r->digest stays "" when the input fails too. */
static void digest_rest(struct layer_in *l, struct unpack_result *r)
{
	struct err ignore;
	uint8_t sha[32];

	while (!l->eof) {
		ssize_t n = l->raw.read(l->raw.ctx, l->buf, IO_BUF, &ignore);

		if (n < 0)
			return;
		l->eof = n == 0;
		br_sha256_update(&l->digest, l->buf, (size_t)n);
		l->bytes_in += (uint64_t)n;
	}
	br_sha256_out(&l->digest, sha);
	image_digest_format(sha, r->digest);
	r->bytes_in = l->bytes_in;
}

int image_layer_unpack(struct image_src in, const char *dir, const struct unpack_opts *o,
		       struct unpack_result *r, struct err *e)
{
	struct layer_in l = { .raw = in };
	struct unpacker u = { .root = -1, .o = o, .r = r };
	struct tar_reader *tr = NULL;
	struct tar_entry *t = NULL;
	uint8_t sha[32];
	int ret;

	memset(r, 0, sizeof(*r));
	u.name = "";
	br_sha256_init(&l.digest);
	br_sha256_init(&l.diff_id);
	l.buf = malloc(IO_BUF);
	u.copy = malloc(IO_BUF);
	t = malloc(sizeof(*t));
	if (!l.buf || !u.copy || !t) {
		ret = err_set(e, ENOMEM, "unpack: out of memory");
		goto out;
	}
	u.root = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (u.root < 0) {
		ret = err_sys(e, errno, "open layer directory %s", dir);
		goto out;
	}

	/* gzip or not: its magic, 1f 8b (the first read may be short) */
	while (l.len < 2 && !l.eof) {
		ssize_t n = in.read(in.ctx, l.buf + l.len, IO_BUF - l.len, e);

		if (n < 0) {
			l.raw_failed = true;
			ret = err_wrap(e, "reading the layer");
			goto out;
		}
		l.eof = n == 0;
		br_sha256_update(&l.digest, l.buf + l.len, (size_t)n);
		l.bytes_in += (uint64_t)n;
		l.len += (size_t)n;
	}
	l.eof = false;          /* a later read says so again */
	if (l.len >= 2 && l.buf[0] == 0x1f && l.buf[1] == 0x8b) {
		l.gzip = r->gzip = true;
		if (inflateInit2(&l.z, 16 + MAX_WBITS) != Z_OK) {
			ret = err_set(e, ENOMEM, "gzip: cannot start the decompressor");
			goto out;
		}
		l.z_ready = true;
	}

	ret = tar_open(&tr, (struct image_src){ .read = layer_read, .ctx = &l }, e);
	if (ret < 0)
		goto out;
	while ((ret = tar_next(tr, t, e)) > 0) {
		r->entries++;
		u.name = t->name;
		ret = apply(&u, tr, t, e);
		if (ret < 0)
			goto out;
	}
	if (ret < 0)
		goto out;
	/* what follows the end blocks (the rest of the record, a last gzip
	 * trailer) still counts in both digests */
	for (;;) {
		ssize_t n = layer_read(&l, u.copy, IO_BUF, e);

		if (n < 0) {
			ret = (int)n;
			goto out;
		}
		if (n == 0)
			break;
	}
	ret = set_dir_times(&u, e);
	if (ret < 0)
		goto out;
	br_sha256_out(&l.digest, sha);
	image_digest_format(sha, r->digest);
	br_sha256_out(&l.diff_id, sha);
	image_digest_format(sha, r->diff_id);
	r->bytes_in = l.bytes_in;
	ret = 0;
out:
	if (ret < 0 && !l.raw_failed && l.buf && ret != -ENOSPC && ret != -EDQUOT &&
	    ret != -ENOMEM && ret != -ECANCELED)
		digest_rest(&l, r);
	tar_close(tr);
	if (l.z_ready)
		inflateEnd(&l.z);
	if (u.root >= 0)
		close(u.root);
	for (size_t i = 0; i < u.dirs.n; i++)
		free(u.dirs.v[i].name);
	array_free(&u.dirs);
	free(t);
	free(u.copy);
	free(l.buf);
	u.name = "";
	return ret;
}
