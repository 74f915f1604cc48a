/* pull.c - fetch an image from a registry for this machine's platform.
 *
 * The order makes a failure at any step leave nothing half-written: the
 * manifest and configuration are checked first (in memory), each missing
 * layer is downloaded into tmp/HEX.part, unpacked into tmp/layer-XXXXXX,
 * checked (blob digest and diff_id) and renamed into layers/, and only
 * when every layer is there are the manifest and configuration written
 * under blobs/. A failed pull may leave whole layers under layers/ (the
 * retry uses them; prune collects them if no retry comes) and, on purpose,
 * the .part of the layer it was fetching: a later pull of the same image
 * (in this daemon or the next: start-up keeps tmp/HEX.part) resumes it
 * with a Range request (registry_get_blob verifies the whole blob's
 * sha256, so a damaged .part costs one failed attempt, after which it is
 * truncated, never a bad layer); a .part that is already whole (a pull
 * cancelled while it unpacked) is checked here and not fetched again.
 * Everything else it made under tmp/ is removed.
 *
 * A full disk is the exception: when the download or the unpack runs out
 * of space (ENOSPC, EDQUOT) the .part goes too. Kept, it would hold the
 * space the next attempt needs (the blob and its unpacked layer are on the
 * disk together while it unpacks), so that freeing a little would not be
 * enough for a retry; the download starts over once there is room.
 *
 * Errors name the image once, as its canonical reference, then the step:
 *   "127.0.0.1:5000/app:1: manifest 1: HTTP 404 (manifest unknown)"
 *   "127.0.0.1:5000/app:1: layer sha256:ab..: download: HTTP 500 (...)"
 *   "127.0.0.1:5000/app:1: layer sha256:ab..: unpack: layer entry 'x': ..."
 * (the registry's own "REGISTRY/REPO: " and "blob DIGEST: " are dropped:
 * they would name the image, or the layer, a second time). */
#include "runtime/image/image.h"

#include <bearssl.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

struct pull {
	const char *state_dir;
	const struct unpack_opts *uo;
	char name[IMAGE_REF_MAX];           /* canonical: how errors name the image */
	char repo[600];                     /* "REGISTRY/REPO": how the registry's begin */
	atomic_bool *cancel;
	struct registry *reg;
	struct image_progress *p;
	struct image_result *out;
};

/* Drop prefix from the start of e's message, when it is there. */
static void strip_prefix(struct err *e, const char *prefix)
{
	size_t n = strlen(prefix);

	if (!strncmp(e->msg, prefix, n))
		memmove(e->msg, e->msg + n, strlen(e->msg + n) + 1);
}

/* A registry error without what the pull says itself: "REGISTRY/REPO: "
 * and, for a blob, "blob DIGEST: ". */
static void reg_strip(const struct pull *pl, struct err *e, const char *blob)
{
	char pre[700];

	snprintf(pre, sizeof(pre), "%s: ", pl->repo);
	strip_prefix(e, pre);
	if (blob) {
		snprintf(pre, sizeof(pre), "blob %s: ", blob);
		strip_prefix(e, pre);
	}
}

static bool no_space(int code)
{
	return code == ENOSPC || code == EDQUOT;
}

/* A file read up to its end that stops at the pull's cancel flag: the
 * unpack of a big layer ends at once when the daemon stops. */
struct cancel_src {
	struct image_src src;
	struct image_fd_src fd;
	atomic_bool *cancel;
};

static ssize_t cancel_read(void *ctx, void *p, size_t n, struct err *e)
{
	struct cancel_src *c = ctx;

	if (c->cancel && atomic_load(c->cancel))
		return err_set(e, ECANCELED, "cancelled");
	return c->fd.src.read(c->fd.src.ctx, p, n, e);
}

/* Is what fd holds the whole blob digest (its sha256)? 1, 0 or -errno. */
static int part_whole(int fd, const char *digest, struct err *e)
{
	char got[IMAGE_DIGEST_SIZE], *chunk = malloc(65536);
	br_sha256_context h;
	uint8_t sha[32];
	off_t off = 0;

	if (!chunk)
		return err_set(e, ENOMEM, "out of memory");
	br_sha256_init(&h);
	for (;;) {
		ssize_t r = pread(fd, chunk, 65536, off);

		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0) {
			free(chunk);
			return err_sys(e, errno, "read the download");
		}
		if (r == 0)
			break;
		br_sha256_update(&h, chunk, (size_t)r);
		off += r;
	}
	free(chunk);
	br_sha256_out(&h, sha);
	image_digest_format(sha, got);
	return !strcmp(got, digest);
}

/* A blob small enough for memory (a configuration), fetched through a file
 * under tmp/ (registry_get_blob writes to a descriptor). */
static int get_small_blob(struct pull *pl, const char *digest, struct buf *body, struct err *e)
{
	char path[PATH_MAX];
	_Atomic uint64_t done = 0, total = 0;
	struct stat sb;
	int fd, ret = 0;

	if (image_tmp_dir(pl->state_dir, "blob", path, e) < 0)
		return -e->code;
	/* the directory itself is the unique name; the file inside it */
	strncat(path, "/b", sizeof(path) - strlen(path) - 1);
	fd = open(path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0) {
		ret = err_sys(e, errno, "create %s", path);
		goto out;
	}
	if (registry_get_blob(pl->reg, digest, fd, &done, &total, e) < 0) {
		reg_strip(pl, e, digest);
		ret = err_wrap(e, "download");
		goto out;
	}
	pl->out->bytes_fetched += done;
	if (fstat(fd, &sb) < 0) {
		ret = err_sys(e, errno, "stat %s", path);
		goto out;
	}
	if ((uint64_t)sb.st_size > IMAGE_JSON_MAX) {
		ret = err_set(e, E2BIG, "blob %s: %lld bytes, more than %u", digest,
			      (long long)sb.st_size, IMAGE_JSON_MAX);
		goto out;
	}
	buf_reset(body);
	buf_append(body, "", 0);
	if (lseek(fd, 0, SEEK_SET) < 0) {
		ret = err_sys(e, errno, "seek %s", path);
		goto out;
	}
	for (;;) {
		char chunk[16384];
		ssize_t r = read(fd, chunk, sizeof(chunk));

		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0) {
			ret = err_sys(e, errno, "read %s", path);
			goto out;
		}
		if (r == 0)
			break;
		buf_append(body, chunk, (size_t)r);
	}
out:
	if (fd >= 0)
		close(fd);
	*strrchr(path, '/') = '\0';
	{
		struct err ignore;

		image_tree_delete(path, &ignore);
	}
	return ret;
}

/* One layer: fetched into tmp/HEX.part (resumed when it is there), unpacked,
 * checked, put in place; the .part deleted. Errors: "REF: layer D: STEP". */
static int pull_layer(struct pull *pl, const struct image_layer_desc *l, struct err *e)
{
	char part[PATH_MAX];
	_Atomic uint64_t total = 0;
	struct cancel_src src;
	struct unpack_result r;
	struct stat sb;
	uint64_t before;
	int fd, ret;

	if ((size_t)snprintf(part, sizeof(part), "%s/images/tmp/%s.part", pl->state_dir,
			     l->digest + 7) >= sizeof(part))
		return err_set(e, ENAMETOOLONG, "%s: path too long", pl->state_dir);
	fd = open(part, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	if (fd < 0) {
		ret = err_sys(e, errno, "create %s", part);
		goto fail;
	}
	if (fstat(fd, &sb) < 0 || lseek(fd, 0, SEEK_END) < 0) {
		ret = err_sys(e, errno, "%s", part);
		goto fail;
	}
	before = (uint64_t)sb.st_size;
	atomic_store(&pl->p->part, before);
	atomic_store(&pl->p->step, IMAGE_STEP_FETCH);
	/* whole already (a pull stopped while it unpacked): no need to ask */
	ret = before && before == l->size ? part_whole(fd, l->digest, e) : 0;
	if (ret < 0)
		goto fail;
	if (!ret && registry_get_blob(pl->reg, l->digest, fd, &pl->p->part, &total, e) < 0) {
		ret = -e->code;
		reg_strip(pl, e, l->digest);
		/* kept for a resume, unless there is nothing to resume or the
		 * disk is full (the header says why) */
		if ((fstat(fd, &sb) == 0 && sb.st_size == 0) || no_space(-ret))
			unlink(part);
		err_wrap(e, "download");
		goto fail;
	}
	pl->out->bytes_fetched += atomic_load(&pl->p->part) > before ?
				  atomic_load(&pl->p->part) - before : 0;
	atomic_store(&pl->p->step, IMAGE_STEP_UNPACK);
	if (lseek(fd, 0, SEEK_SET) < 0) {
		ret = err_sys(e, errno, "seek %s", part);
		goto fail;
	}
	image_fd_src_init(&src.fd, fd, UINT64_MAX);
	src.src = (struct image_src){ .read = cancel_read, .ctx = &src };
	src.cancel = pl->cancel;
	ret = image_layer_install(pl->state_dir, src.src, pl->name, l->digest, l->diff_id, pl->uo,
				  &r, e);
	close(fd);
	fd = -1;
	if (ret < 0) {
		/* a blob that verified and then fails to unpack will fail again:
		 * no point in keeping it for a resume; but one whose unpack was
		 * stopped is whole, and the next pull unpacks it */
		if (ret != -ECANCELED)
			unlink(part);
		atomic_store(&pl->p->part, 0);
		return ret;
	}
	unlink(part);
	atomic_fetch_add(&pl->p->done, l->size);
	atomic_store(&pl->p->part, 0);
	pl->out->bytes_written += r.bytes_out;
	if (ret == 1)
		pl->out->layers_new++;
	else
		pl->out->layers_shared++;
	return 0;
fail:
	if (fd >= 0)
		close(fd);
	atomic_store(&pl->p->part, 0);
	image_err_full(e, pl->state_dir);
	return err_wrap(e, "%s: layer %s", pl->name, l->digest);
}

int image_pull(const char *state_dir, const char *ref, const struct registry_opts *o,
	       const struct unpack_opts *uo, struct image_progress *p, struct image_result *out,
	       struct err *e)
{
	struct pull pl = { .state_dir = state_dir, .uo = uo, .p = p, .out = out };
	struct registry_opts ro = *o;
	struct image_manifest *m = NULL;
	struct image_info *info = NULL;
	char media[128], digest[IMAGE_DIGEST_SIZE];
	struct image_ref iref;
	struct buf body, config;
	enum image_media kind;
	int lock = -1, ret = 0;
	uint64_t size = 0;

	memset(out, 0, sizeof(*out));
	buf_init(&body);
	buf_init(&config);
	if (image_ref_parse(ref, &iref, e) < 0)
		return -e->code;
	image_ref_format(&iref, pl.name, sizeof(pl.name));
	snprintf(pl.repo, sizeof(pl.repo), "%s/%s", iref.registry, iref.repo);
	if (!ro.cancel)
		ro.cancel = &p->cancel;
	pl.cancel = ro.cancel;
	atomic_store(&p->step, IMAGE_STEP_RESOLVE);
	if ((lock = image_work_lock(state_dir, e)) < 0)
		goto fail;
	if (registry_open(&pl.reg, &iref, &ro, e) < 0) {
		reg_strip(&pl, e, NULL);
		goto fail;
	}

	/* the manifest, through the index or list when there is one */
	if (registry_get_manifest(pl.reg, iref.digest[0] ? iref.digest : iref.tag, &body, media,
				  digest, e) < 0) {
		reg_strip(&pl, e, NULL);
		goto fail;
	}
	out->bytes_fetched += body.len;
	kind = image_manifest_media(body.data, body.len, media);
	if (kind == MEDIA_OCI_INDEX || kind == MEDIA_DOCKER_LIST) {
		struct image_index x;
		char want[IMAGE_DIGEST_SIZE];
		int i;

		if (image_index_parse(body.data, body.len, &x, e) < 0) {
			err_wrap(e, "%s", pl.name);
			goto fail;
		}
		i = image_index_select(&x, NULL, pl.name, e);
		if (i >= 0)
			memcpy(want, x.v[i].digest, sizeof(want));
		image_index_free(&x);
		if (i < 0)
			goto fail;
		buf_reset(&body);
		if (registry_get_manifest(pl.reg, want, &body, media, digest, e) < 0) {
			reg_strip(&pl, e, NULL);
			goto fail;
		}
		out->bytes_fetched += body.len;
		kind = image_manifest_media(body.data, body.len, media);
	}
	if (kind != MEDIA_OCI_MANIFEST && kind != MEDIA_DOCKER_MANIFEST) {
		err_set(e, EPROTO, "%s: the registry's answer is no image manifest (%s)", pl.name,
			media[0] ? media : "no media type");
		goto fail;
	}
	if (!(m = malloc(sizeof(*m))) || !(info = calloc(1, sizeof(*info)))) {
		err_set(e, ENOMEM, "out of memory");
		goto fail;
	}
	if (image_manifest_parse(body.data, body.len, m, e) < 0) {
		err_wrap(e, "%s: %s", pl.name, digest);
		goto fail;
	}
	if (get_small_blob(&pl, m->config_digest, &config, e) < 0) {
		image_err_full(e, state_dir);
		err_wrap(e, "%s: configuration %s", pl.name, m->config_digest);
		goto fail;
	}
	if (image_info_fill(info, pl.name, digest, m, config.data, config.len, pl.name, e) < 0)
		goto fail;

	/* the layers not here yet */
	for (size_t k = 0; k < info->n_layers; k++) {
		bool again = false;

		/* a layer an image holds twice is fetched once */
		for (size_t j = 0; j < k; j++)
			again = again || !strcmp(info->layers[j].diff_id, info->layers[k].diff_id);
		if (!again && !image_layer_present(state_dir, info->layers[k].diff_id))
			atomic_fetch_add(&p->total, info->layers[k].size);
	}
	for (size_t k = 0; k < info->n_layers; k++) {
		if (atomic_load(&p->cancel)) {
			err_set(e, ECANCELED, "%s: cancelled", pl.name);
			goto fail;
		}
		if (image_layer_present(state_dir, info->layers[k].diff_id)) {
			out->layers_shared++;
			continue;
		}
		if (pull_layer(&pl, &info->layers[k], e) < 0)
			goto fail;
	}
	for (size_t k = 0; k < info->n_layers; k++)
		size += image_layer_bytes(state_dir, info->layers[k].diff_id);
	info->size = size;

	/* last, what names the layers */
	if (image_blob_write(state_dir, m->config_digest, config.data, config.len, e) < 0 ||
	    image_blob_write(state_dir, digest, body.data, body.len, e) < 0) {
		image_err_full(e, state_dir);
		err_wrap(e, "%s", pl.name);
		goto fail;
	}
	out->images = info;
	out->n_images = 1;
	info = NULL;
	atomic_store(&p->step, IMAGE_STEP_DONE);
	goto out;
fail:
	/* every error names the image, once */
	if (!strstr(e->msg, pl.name))
		err_wrap(e, "%s", pl.name);
	ret = -e->code;
	image_result_free(out);
out:
	image_info_free(info);
	free(info);
	free(m);
	buf_free(&body);
	buf_free(&config);
	if (pl.reg)
		registry_close(pl.reg);
	close(lock);
	return ret;
}
