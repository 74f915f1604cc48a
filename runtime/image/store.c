/* store.c - the store of images: files under STATE_DIR/images (blobs,
 * unpacked layers, tmp/), the names in the state database, and the
 * collection of what no name uses any more.
 *
 * Every entry under blobs/ and layers/ is complete or absent: it is built
 * under tmp/ and renamed into place, and it leaves the same way (renamed
 * into tmp/ first, then deleted), so a crash in the middle of a delete
 * never leaves half a layer under its real name. tmp/ is emptied at
 * start-up (a pull writes no download there: layers are streamed from the
 * registry into their unpack directory, pull.c).
 *
 * Pulls and imports (worker threads) hold a shared flock on images/.lock
 * while they run; the collection takes it exclusively and without waiting,
 * and skips its file work when it cannot (a layer a running pull has just
 * unpacked is not yet named by any image, and must not go). The names are
 * dropped either way; the next remove or prune collects. */
#include "runtime/image/image_int.h"
#include "store/store.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static _Atomic unsigned tmp_seq;

static int images_path(const char *state_dir, const char *sub, char *path, struct err *e)
{
	if ((size_t)snprintf(path, PATH_MAX, "%s/images%s%s", state_dir, *sub ? "/" : "", sub) >=
	    PATH_MAX)
		return err_set(e, ENAMETOOLONG, "state directory '%.200s': path too long",
			       state_dir);
	return 0;
}

/* ---- deleting trees ------------------------------------------------------------
 * A layer holds read-only directories (a 0555 /usr) and may be deeper than
 * the file descriptors a process has: walk down and up again with one
 * descriptor (".." of a tree under tmp/ that only we touch is its parent),
 * making each directory writable before emptying it. */

static int tree_delete_at(int parent, const char *name, uint64_t *bytes, struct err *e)
{
	ARRAY(char *) names = { 0 };
	struct stat sb;
	int fd, ret = 0;

	if (fstatat(parent, name, &sb, AT_SYMLINK_NOFOLLOW) < 0)
		return errno == ENOENT ? 0 : err_sys(e, errno, "stat %s", name);
	if (!S_ISDIR(sb.st_mode)) {
		if (bytes && sb.st_nlink <= 1 && S_ISREG(sb.st_mode))
			*bytes += (uint64_t)sb.st_blocks * 512;
		if (unlinkat(parent, name, 0) < 0 && errno != ENOENT)
			return err_sys(e, errno, "delete %s", name);
		return 0;
	}
	fd = openat(parent, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		return err_sys(e, errno, "open %s", name);
	for (;;) {
		char *child = NULL;
		bool any = false;
		DIR *d;
		struct dirent *de;
		int dfd;

		if (fchmod(fd, 0700) < 0) {
			ret = err_sys(e, errno, "chmod a directory under %s", name);
			break;
		}
		dfd = dup(fd);
		if (dfd < 0 || !(d = fdopendir(dfd))) {
			ret = err_sys(e, errno, "read a directory under %s", name);
			if (dfd >= 0)
				close(dfd);
			break;
		}
		rewinddir(d);
		while ((de = readdir(d))) {
			if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
				continue;
			any = true;
			if (fstatat(fd, de->d_name, &sb, AT_SYMLINK_NOFOLLOW) < 0) {
				if (errno == ENOENT)
					continue;
				ret = err_sys(e, errno, "stat %s under %s", de->d_name, name);
				break;
			}
			if (S_ISDIR(sb.st_mode)) {
				if (!(child = strdup(de->d_name)))
					ret = err_set(e, ENOMEM, "out of memory");
				break;
			}
			if (bytes && sb.st_nlink <= 1 && S_ISREG(sb.st_mode))
				*bytes += (uint64_t)sb.st_blocks * 512;
			if (unlinkat(fd, de->d_name, 0) < 0 && errno != ENOENT) {
				ret = err_sys(e, errno, "delete %s under %s", de->d_name, name);
				break;
			}
		}
		closedir(d);
		if (ret < 0)
			break;
		if (child) {
			int nfd = openat(fd, child, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
			char **slot;

			if (nfd < 0) {
				ret = err_sys(e, errno, "open %s under %s", child, name);
				free(child);
				break;
			}
			if (!(slot = array_push(&names))) {
				close(nfd);
				free(child);
				ret = err_set(e, ENOMEM, "out of memory");
				break;
			}
			*slot = child;
			close(fd);
			fd = nfd;
			continue;
		}
		if (any)
			continue;           /* entries went while we read: look again */
		if (!names.n)
			break;              /* the top directory is empty */
		/* this directory is empty: up to its parent, and remove it */
		{
			int pfd = openat(fd, "..", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
			char *me = names.v[--names.n];

			if (pfd < 0) {
				ret = err_sys(e, errno, "open the parent of %s under %s", me, name);
				free(me);
				break;
			}
			close(fd);
			fd = pfd;
			if (unlinkat(fd, me, AT_REMOVEDIR) < 0 && errno != ENOENT) {
				ret = err_sys(e, errno, "delete %s under %s", me, name);
				free(me);
				break;
			}
			free(me);
		}
	}
	close(fd);
	for (size_t i = 0; i < names.n; i++)
		free(names.v[i]);
	array_free(&names);
	if (ret < 0)
		return ret;
	if (unlinkat(parent, name, AT_REMOVEDIR) < 0 && errno != ENOENT)
		return err_sys(e, errno, "delete %s", name);
	return 0;
}

static int tree_delete(const char *path, uint64_t *bytes, struct err *e)
{
	char dir[PATH_MAX], *slash;
	int pfd, ret;

	snprintf(dir, sizeof(dir), "%s", path);
	slash = strrchr(dir, '/');
	if (!slash || !slash[1])
		return err_set(e, EINVAL, "delete %s: not a path to an entry", path);
	*slash = '\0';
	pfd = open(*dir ? dir : "/", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (pfd < 0)
		return errno == ENOENT ? 0 : err_sys(e, errno, "open %s", dir);
	ret = tree_delete_at(pfd, slash + 1, bytes, e);
	close(pfd);
	return ret < 0 ? err_wrap(e, "delete %s", path) : 0;
}

int image_tree_delete(const char *path, struct err *e)
{
	return tree_delete(path, NULL, e);
}

void image_err_full(struct err *e, const char *state_dir)
{
	size_t n;

	if (!e || (e->code != ENOSPC && e->code != EDQUOT) || strstr(e->msg, "/images is full"))
		return;
	n = strlen(e->msg);
	snprintf(e->msg + n, sizeof(e->msg) - n, " (%s/images is full)", state_dir);
}

/* Every entry of dir (images/tmp). */
static int empty_dir(const char *dir, struct err *e)
{
	DIR *d = opendir(dir);
	struct dirent *de;
	int ret = 0;

	if (!d)
		return err_sys(e, errno, "open %s", dir);
	while ((de = readdir(d))) {
		if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
			continue;
		if (tree_delete_at(dirfd(d), de->d_name, NULL, e) < 0) {
			ret = err_wrap(e, "empty %s", dir);
			break;
		}
	}
	closedir(d);
	return ret;
}

int image_dir_init(const char *state_dir, struct err *e)
{
	static const char *const dirs[] = { "blobs/sha256", "layers", "tmp" };
	char path[PATH_MAX];

	for (size_t i = 0; i < ARRAY_SIZE(dirs); i++) {
		if (images_path(state_dir, dirs[i], path, e) < 0 ||
		    mkdir_p("image directory", path, 0700, e) < 0)
			return -e->code;
	}
	return empty_dir(path, e);
}

/* ---- blobs and layers -------------------------------------------------------------- */

static const char *hex_of(const char *digest)
{
	return digest + 7;
}

int image_blob_path(const char *state_dir, const char *digest, char *path, struct err *e)
{
	char sub[96];

	if (!image_digest_valid(digest))
		return err_set(e, EINVAL, "'%.80s' is not a sha256 digest", digest);
	snprintf(sub, sizeof(sub), "blobs/sha256/%s", hex_of(digest));
	return images_path(state_dir, sub, path, e);
}

int image_blob_write(const char *state_dir, const char *digest, const void *p, size_t n,
		     struct err *e)
{
	char path[PATH_MAX], tmp[PATH_MAX], dir[PATH_MAX], got[IMAGE_DIGEST_SIZE], name[128];
	int fd, rc;

	if (image_blob_path(state_dir, digest, path, e) < 0)
		return -e->code;
	image_digest_of(p, n, got);
	if (strcmp(got, digest))
		return err_set(e, EBADMSG, "blob %s: its content is %s", digest, got);
	if (access(path, F_OK) == 0)
		return 0;
	snprintf(name, sizeof(name), "tmp/blob-%.16s-%u", hex_of(digest), tmp_seq++);
	if (images_path(state_dir, name, tmp, e) < 0 ||
	    images_path(state_dir, "blobs/sha256", dir, e) < 0)
		return -e->code;
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0)
		return err_sys(e, errno, "create %s", tmp);
	if ((rc = write_all(fd, p, n)) < 0 || (fsync(fd) < 0 && (rc = -errno))) {
		close(fd);
		unlink(tmp);
		return err_sys(e, -rc, "write %s", tmp);
	}
	close(fd);
	if (rename(tmp, path) < 0) {
		rc = errno;
		unlink(tmp);
		return err_sys(e, rc, "rename %s to %s", tmp, path);
	}
	return fsync_dir(dir, e);
}

int image_blob_read(const char *state_dir, const char *digest, struct buf *out, struct err *e)
{
	char path[PATH_MAX], got[IMAGE_DIGEST_SIZE], chunk[16384];
	int fd;
	ssize_t r;

	buf_reset(out);
	if (image_blob_path(state_dir, digest, path, e) < 0)
		return -e->code;
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return err_sys(e, errno, "blob %s", digest);
	while ((r = read(fd, chunk, sizeof(chunk))) != 0) {
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0) {
			int err = errno;

			close(fd);
			return err_sys(e, err, "read %s", path);
		}
		if (out->len + (size_t)r > IMAGE_JSON_MAX) {
			close(fd);
			return err_set(e, E2BIG, "blob %s is larger than %u bytes", digest,
				       IMAGE_JSON_MAX);
		}
		buf_append(out, chunk, (size_t)r);
	}
	close(fd);
	if (!out->data)
		buf_append(out, "", 0);
	image_digest_of(out->data, out->len, got);
	if (strcmp(got, digest))
		return err_set(e, EBADMSG, "blob %s is damaged: its content is %s", digest, got);
	return 0;
}

static int layer_path(const char *state_dir, const char *diff_id, char *path, struct err *e)
{
	char sub[96];

	if (!image_digest_valid(diff_id))
		return err_set(e, EINVAL, "'%.80s' is not a sha256 digest", diff_id);
	snprintf(sub, sizeof(sub), "layers/%s", hex_of(diff_id));
	return images_path(state_dir, sub, path, e);
}

bool image_layer_present(const char *state_dir, const char *diff_id)
{
	char path[PATH_MAX];
	struct stat sb;

	return layer_path(state_dir, diff_id, path, NULL) == 0 && lstat(path, &sb) == 0 &&
	       S_ISDIR(sb.st_mode);
}

/* nftw has no context argument; a thread's own sum. */
static _Thread_local uint64_t du_bytes;

static int du_one(const char *path, const struct stat *sb, int flag, struct FTW *f)
{
	(void)path; (void)f;
	if (flag == FTW_F && S_ISREG(sb->st_mode))
		du_bytes += (uint64_t)sb->st_size;
	return 0;
}

uint64_t image_layer_bytes(const char *state_dir, const char *diff_id)
{
	char path[PATH_MAX];

	if (layer_path(state_dir, diff_id, path, NULL) < 0)
		return 0;
	du_bytes = 0;
	nftw(path, du_one, 8, FTW_PHYS);
	return du_bytes;
}

int image_tmp_dir(const char *state_dir, const char *prefix, char *path, struct err *e)
{
	char sub[64];

	snprintf(sub, sizeof(sub), "tmp/%.20s-XXXXXX", prefix);
	if (images_path(state_dir, sub, path, e) < 0)
		return -e->code;
	if (!mkdtemp(path))
		return err_sys(e, errno, "create a directory under %s/images/tmp", state_dir);
	return 0;
}

int image_layer_commit(const char *state_dir, const char *dir, const char *diff_id,
		       struct err *e)
{
	char path[PATH_MAX], layers[PATH_MAX];
	int fd;

	if (layer_path(state_dir, diff_id, path, e) < 0 ||
	    images_path(state_dir, "layers", layers, e) < 0)
		return -e->code;
	if (image_layer_present(state_dir, diff_id))
		return image_tree_delete(dir, e) < 0 ? -e->code : 0;
	/* the layer's files reach the flash before its name does */
	fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return err_sys(e, errno, "open %s", dir);
	if (syncfs(fd) < 0) {
		int err = errno;

		close(fd);
		return err_sys(e, err, "sync the layer %s", diff_id);
	}
	close(fd);
	if (rename(dir, path) < 0) {
		/* another worker put it there first */
		if ((errno == EEXIST || errno == ENOTEMPTY) && image_layer_present(state_dir, diff_id))
			return image_tree_delete(dir, e) < 0 ? -e->code : 0;
		return err_sys(e, errno, "rename %s to %s", dir, path);
	}
	return fsync_dir(layers, e) < 0 ? -e->code : 1;
}

/* ---- images: info, results --------------------------------------------------------- */

void image_info_free(struct image_info *i)
{
	if (!i)
		return;
	free(i->layers);
	image_config_free(&i->config);
	memset(i, 0, sizeof(*i));
}

void image_result_free(struct image_result *r)
{
	if (!r)
		return;
	for (size_t i = 0; i < r->n_images; i++)
		image_info_free(&r->images[i]);
	free(r->images);
	memset(r, 0, sizeof(*r));
}

int image_info_fill(struct image_info *i, const char *ref, const char *digest,
		    const struct image_manifest *m, const char *config, size_t config_len,
		    const char *what, struct err *e)
{
	char (*ids)[IMAGE_DIGEST_SIZE] = calloc(IMAGE_LAYERS_MAX, IMAGE_DIGEST_SIZE);
	size_t n_ids = 0;

	memset(i, 0, sizeof(*i));
	if (!ids)
		return err_set(e, ENOMEM, "out of memory");
	if (image_config_parse(config, config_len, &i->config, ids, &n_ids, e) < 0) {
		free(ids);
		return err_wrap(e, "%s: configuration %s", what, m->config_digest);
	}
	if (n_ids != m->n_layers) {
		free(ids);
		image_info_free(i);
		return err_set(e, EINVAL, "%s: the manifest has %zu layers but the configuration "
			       "%zu diff_ids", what, m->n_layers, n_ids);
	}
	i->layers = calloc(m->n_layers ? m->n_layers : 1, sizeof(*i->layers));
	if (!i->layers) {
		free(ids);
		image_info_free(i);
		return err_set(e, ENOMEM, "out of memory");
	}
	for (size_t k = 0; k < m->n_layers; k++) {
		i->layers[k] = m->layers[k];
		memcpy(i->layers[k].diff_id, ids[k], IMAGE_DIGEST_SIZE);
	}
	free(ids);
	i->n_layers = m->n_layers;
	snprintf(i->ref, sizeof(i->ref), "%s", ref);
	snprintf(i->digest, sizeof(i->digest), "%s", digest);
	snprintf(i->config_digest, sizeof(i->config_digest), "%s", m->config_digest);
	i->created = i->config.created;
	return 0;
}

/* ---- the names (daemon side) -------------------------------------------------------- */

int image_record(struct store *st, const struct image_info *i, struct err *e)
{
	struct store_image row = { 0 };
	struct buf layers;
	int ret;

	if (strlen(i->ref) >= sizeof(row.ref))
		return err_set(e, ENAMETOOLONG, "image name '%.60s...' is too long", i->ref);
	snprintf(row.ref, sizeof(row.ref), "%s", i->ref);
	snprintf(row.digest, sizeof(row.digest), "%s", i->digest);
	snprintf(row.config_digest, sizeof(row.config_digest), "%s", i->config_digest);
	buf_init(&layers);
	for (size_t k = 0; k < i->n_layers; k++)
		buf_printf(&layers, "%s%s %s %" PRIu64, k ? "\n" : "", i->layers[k].digest,
			   i->layers[k].diff_id, i->layers[k].size);
	row.layers = layers.data ? layers.data : "";
	row.size = (int64_t)i->size;
	row.created = i->created;
	row.stored = i->stored ? i->stored : (int64_t)time(NULL);
	ret = store_image_put(st, &row, e);
	buf_free(&layers);
	return ret < 0 ? err_wrap(e, "record image %s", i->ref) : 0;
}

/* A row's layers text into i->layers. */
static int layers_parse(const char *text, struct image_info *i, struct err *e)
{
	size_t n = 0, cap = 0;
	const char *p = text;

	for (const char *c = text; *c; c++)
		cap += *c == '\n';
	cap += 1;
	if (cap > IMAGE_LAYERS_MAX)
		return err_set(e, EBADMSG, "image %s: %zu layers in the store", i->ref, cap);
	i->layers = calloc(cap, sizeof(*i->layers));
	if (!i->layers)
		return err_set(e, ENOMEM, "out of memory");
	while (*p) {
		struct image_layer_desc *l = &i->layers[n];
		const char *end = strchr(p, '\n');
		char line[256];
		size_t len = end ? (size_t)(end - p) : strlen(p);
		unsigned long long size;

		if (len >= sizeof(line) || n >= cap)
			return err_set(e, EBADMSG, "image %s: layer %zu is damaged in the store",
				       i->ref, n);
		memcpy(line, p, len);
		line[len] = '\0';
		if (sscanf(line, "%71s %71s %llu", l->digest, l->diff_id, &size) != 3 ||
		    !image_digest_valid(l->digest) || !image_digest_valid(l->diff_id))
			return err_set(e, EBADMSG, "image %s: layer %zu is damaged in the store",
				       i->ref, n);
		l->size = size;
		n++;
		p += len + (end != NULL);
	}
	i->n_layers = n;
	return 0;
}

/* i from a store row; the configuration read from its blob when state_dir. */
static int info_from_row(const struct store_image *row, const char *state_dir,
			 struct image_info *i, struct err *e)
{
	struct buf cfg;
	int ret = 0;

	memset(i, 0, sizeof(*i));
	snprintf(i->ref, sizeof(i->ref), "%s", row->ref);
	snprintf(i->digest, sizeof(i->digest), "%s", row->digest);
	snprintf(i->config_digest, sizeof(i->config_digest), "%s", row->config_digest);
	i->size = (uint64_t)row->size;
	i->created = row->created;
	i->stored = row->stored;
	if (layers_parse(row->layers ? row->layers : "", i, e) < 0) {
		image_info_free(i);
		return -e->code;
	}
	if (!state_dir)
		return 0;
	buf_init(&cfg);
	if (image_blob_read(state_dir, row->config_digest, &cfg, e) < 0 ||
	    image_config_parse(cfg.data, cfg.len, &i->config, NULL, NULL, e) < 0) {
		err_wrap(e, "image %s", row->ref);
		image_info_free(i);
		ret = -e->code;
	}
	buf_free(&cfg);
	return ret;
}

struct find_digest {
	const char *digest;
	struct store_image row;
	bool found;
};

static int find_digest_row(void *ctx, const struct store_image *row)
{
	struct find_digest *f = ctx;

	if (f->found || strcmp(row->digest, f->digest))
		return 0;
	f->row = *row;
	f->row.layers = strdup(row->layers ? row->layers : "");
	f->found = true;
	return f->row.layers ? 0 : -ENOMEM;
}

/* The store's name for what the user typed: a digest as it is, a
 * reference in its canonical form. */
static int canonical(const char *ref, char *out, struct err *e)
{
	struct image_ref r;

	if (image_digest_valid(ref)) {
		snprintf(out, IMAGE_REF_MAX, "%s", ref);
		return 0;
	}
	if (image_ref_parse(ref, &r, e) < 0)
		return -e->code;
	image_ref_format(&r, out, IMAGE_REF_MAX);
	return 0;
}

int image_lookup(struct store *st, const char *state_dir, const char *ref, struct image_info *i,
		 struct err *e)
{
	struct store_image row;
	char name[IMAGE_REF_MAX];
	int ret;

	memset(i, 0, sizeof(*i));
	if (canonical(ref, name, e) < 0)
		return -e->code;
	ret = store_image_get(st, name, &row, e);
	if (ret == -ENOENT && image_digest_valid(name)) {
		/* a digest names the image of any name that points at it */
		struct find_digest f = { .digest = name };

		ret = store_image_list(st, find_digest_row, &f, e);
		if (ret == 0 && !f.found)
			ret = -ENOENT;
		if (ret == 0)
			row = f.row;
		else
			free(f.row.layers);
	}
	if (ret == -ENOENT)
		return err_set(e, ENOENT, "image %s is not here: pull it", ref);
	if (ret < 0)
		return ret;
	ret = info_from_row(&row, state_dir, i, e);
	free(row.layers);
	return ret;
}

struct list_ctx {
	const char *state_dir;
	image_list_fn *fn;
	void *ctx;
};

static int list_row(void *ctx, const struct store_image *row)
{
	struct list_ctx *l = ctx;
	struct image_info i;
	struct err e;
	int ret;

	/* An image whose configuration blob is gone or damaged is still listed
	 * (so that it can be removed), with an empty configuration. */
	if (info_from_row(row, l->state_dir, &i, &e) < 0 &&
	    info_from_row(row, NULL, &i, &e) < 0)
		return -e.code;
	ret = l->fn(l->ctx, &i);
	image_info_free(&i);
	return ret;
}

int image_list(struct store *st, const char *state_dir, image_list_fn *fn, void *ctx,
	       struct err *e)
{
	struct list_ctx l = { state_dir, fn, ctx };

	return store_image_list(st, list_row, &l, e);
}

/* ---- collection ---------------------------------------------------------------------- */

/* What the images left in the store use: layer and blob hex names. */
struct used {
	ARRAY(char *) layers;
	ARRAY(char *) blobs;
	bool oom;
};

static void used_add(struct used *u, bool layer, const char *digest)
{
	char **slot = layer ? array_push(&u->layers) : array_push(&u->blobs);

	if (!slot || !(*slot = strdup(hex_of(digest)))) {
		if (slot)
			layer ? u->layers.n-- : u->blobs.n--;
		u->oom = true;
	}
}

static int used_row(void *ctx, const struct store_image *row)
{
	struct used *u = ctx;
	struct image_info i;
	struct err e;

	if (image_digest_valid(row->digest))
		used_add(u, false, row->digest);
	if (image_digest_valid(row->config_digest))
		used_add(u, false, row->config_digest);
	if (info_from_row(row, NULL, &i, &e) < 0)
		return -e.code;     /* a damaged row: collect nothing rather than too much */
	for (size_t k = 0; k < i.n_layers; k++)
		used_add(u, true, i.layers[k].diff_id);
	image_info_free(&i);
	return 0;
}

static void used_free(struct used *u)
{
	for (size_t k = 0; k < u->layers.n; k++)
		free(u->layers.v[k]);
	for (size_t k = 0; k < u->blobs.n; k++)
		free(u->blobs.v[k]);
	array_free(&u->layers);
	array_free(&u->blobs);
}

static bool is_used(char **v, size_t n, const char *name)
{
	for (size_t k = 0; k < n; k++)
		if (!strcmp(v[k], name))
			return true;
	return false;
}

static bool hex64(const char *s)
{
	char d[IMAGE_DIGEST_SIZE];

	if (strlen(s) != 64)
		return false;
	memcpy(d, "sha256:", 7);
	memcpy(d + 7, s, 65);
	return image_digest_valid(d);
}

/* Every entry of images/SUB not in used: renamed into tmp/, then deleted. */
static int collect_dir(const char *state_dir, const char *sub, char **used, size_t n_used,
		       uint64_t *bytes, struct err *e)
{
	char dir[PATH_MAX], from[PATH_MAX], to[PATH_MAX], name[128];
	struct dirent *de;
	bool moved = false;
	int ret = 0;
	DIR *d;

	if (images_path(state_dir, sub, dir, e) < 0)
		return -e->code;
	if (!(d = opendir(dir)))
		return errno == ENOENT ? 0 : err_sys(e, errno, "open %s", dir);
	while ((de = readdir(d))) {
		if (!hex64(de->d_name) || is_used(used, n_used, de->d_name))
			continue;
		snprintf(name, sizeof(name), "tmp/gc-%.16s-%u", de->d_name, tmp_seq++);
		if (images_path(state_dir, name, to, e) < 0)
			break;
		if ((size_t)snprintf(from, sizeof(from), "%s/%s", dir, de->d_name) >= sizeof(from)) {
			ret = err_set(e, ENAMETOOLONG, "%s: path too long", dir);
			break;
		}
		if (rename(from, to) < 0) {
			if (errno == ENOENT)
				continue;
			ret = err_sys(e, errno, "rename %s to %s", from, to);
			break;
		}
		moved = true;
		if (tree_delete(to, bytes, e) < 0) {
			ret = -e->code;
			break;
		}
	}
	closedir(d);
	/* the names are gone for good before we say so */
	if (moved && fsync_dir(dir, ret < 0 ? NULL : e) < 0 && ret == 0)
		ret = -e->code;
	return ret;
}

/* Delete every layer and blob no image in the store uses; bytes freed into
 * *bytes. Skipped (0) while a pull or import holds images/.lock. */
static int collect(struct store *st, const char *state_dir, uint64_t *bytes, struct err *e)
{
	struct used u = { 0 };
	char lock[PATH_MAX];
	int fd, ret;

	if (images_path(state_dir, ".lock", lock, e) < 0)
		return -e->code;
	fd = open(lock, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	if (fd < 0)
		return err_sys(e, errno, "open %s", lock);
	if (flock(fd, LOCK_EX | LOCK_NB) < 0) {
		close(fd);
		return 0;           /* a pull or import runs: the next collection */
	}
	ret = store_image_list(st, used_row, &u, e);
	if (ret == 0 && u.oom)
		ret = err_set(e, ENOMEM, "out of memory");
	if (ret == 0)
		ret = collect_dir(state_dir, "layers", u.layers.v, u.layers.n, bytes, e);
	if (ret == 0)
		ret = collect_dir(state_dir, "blobs/sha256", u.blobs.v, u.blobs.n, bytes, e);
	used_free(&u);
	close(fd);
	return ret < 0 ? err_wrap(e, "collect unused layers and blobs") : 0;
}

int image_work_lock(const char *state_dir, struct err *e)
{
	char lock[PATH_MAX];
	int fd;

	if (images_path(state_dir, ".lock", lock, e) < 0)
		return -e->code;
	fd = open(lock, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	if (fd < 0)
		return err_sys(e, errno, "open %s", lock);
	while (flock(fd, LOCK_SH) < 0) {
		if (errno != EINTR) {
			int err = errno;

			close(fd);
			return err_sys(e, err, "lock %s", lock);
		}
	}
	return fd;
}

int image_remove(struct store *st, const char *state_dir, const char *ref, struct err *e)
{
	char name[IMAGE_REF_MAX];
	uint64_t bytes = 0;
	int ret;

	if (canonical(ref, name, e) < 0)
		return -e->code;
	ret = store_image_delete(st, name, e);
	if (ret == -ENOENT)
		return err_set(e, ENOENT, "image %s is not here", ref);
	if (ret < 0)
		return ret;
	return collect(st, state_dir, &bytes, e);
}

struct prune_ctx {
	bool all;
	image_in_use_fn *in_use;
	void *ctx;
	ARRAY(char *) drop;
	bool oom;
};

static int prune_row(void *ctx, const struct store_image *row)
{
	struct prune_ctx *p = ctx;
	struct image_info i;
	struct err e;
	char **slot;

	if (!p->all && !image_digest_valid(row->ref))
		return 0;           /* named: only prune --all drops it */
	if (info_from_row(row, NULL, &i, &e) < 0)
		return 0;
	if (p->in_use && p->in_use(p->ctx, &i)) {
		image_info_free(&i);
		return 0;
	}
	image_info_free(&i);
	if (!(slot = array_push(&p->drop)) || !(*slot = strdup(row->ref))) {
		if (slot)
			p->drop.n--;
		p->oom = true;
	}
	return 0;
}

int64_t image_prune(struct store *st, const char *state_dir, bool all, image_in_use_fn *in_use,
		    void *ctx, struct err *e)
{
	struct prune_ctx p = { .all = all, .in_use = in_use, .ctx = ctx };
	uint64_t bytes = 0;
	int ret;

	ret = store_image_list(st, prune_row, &p, e);
	if (ret == 0 && p.oom)
		ret = err_set(e, ENOMEM, "out of memory");
	for (size_t k = 0; k < p.drop.n; k++) {
		if (ret == 0 && (ret = store_image_delete(st, p.drop.v[k], e)) == -ENOENT)
			ret = 0;
		free(p.drop.v[k]);
	}
	array_free(&p.drop);
	if (ret == 0)
		ret = collect(st, state_dir, &bytes, e);
	if (ret < 0)
		return ret;
	return bytes > INT64_MAX ? INT64_MAX : (int64_t)bytes;
}
