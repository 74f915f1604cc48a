/* pull.c - fetch an image from a registry for this machine's platform.
 *
 * The order makes a failure at any step leave nothing half-written: the
 * manifest and configuration are checked first (in memory), each missing
 * layer's blob is streamed from the registry straight into the unpacker
 * (registry_blob_open: no copy of the compressed blob is ever written, so
 * flash gets each layer once, unpacked), into tmp/layer-XXXXXX, checked
 * (blob digest and diff_id) and renamed into layers/, and only when every
 * layer is there are the manifest and configuration written under blobs/.
 * A failed pull may leave whole layers under layers/ (the retry uses them;
 * prune collects them if no retry comes); nothing under tmp/.
 *
 * The trade-off: a connection that breaks mid-blob resumes in place (the
 * stream asks for the rest with a Range request, the unpacker never
 * notices: the common case on a flaky link), but a layer whose pull ends
 * (a cancel, a daemon restart, retries used up) starts over at the next
 * pull: its unpacker's state was in memory. Layers already in place stay.
 *
 * Errors name the image once, as its canonical reference, then the step:
 *   "127.0.0.1:5000/app:1: manifest 1: HTTP 404 (manifest unknown)"
 *   "127.0.0.1:5000/app:1: layer sha256:ab..: download: HTTP 500 (...)"
 *   "127.0.0.1:5000/app:1: layer sha256:ab..: unpack: layer entry 'x': ..."
 * (the registry's own "REGISTRY/REPO: " and "blob DIGEST: " are dropped:
 * they would name the image, or the layer, a second time). */
#include "runtime/image/image_int.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

struct pull {
	const char *state_dir;
	const struct unpack_opts *uo;
	char name[IMAGE_REF_MAX];           /* canonical: how errors name the image */
	char repo[600];                     /* "REGISTRY/REPO": how the registry's begin */
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

/* A blob's stream as the pull reads it: e with the download's own failure
 * (REF: STEP: download: WHY) when the stream ended with one. */
static int download_err(struct pull *pl, struct registry_blob *b, const char *digest,
			struct err *e)
{
	const struct err *be = registry_blob_error(b);

	if (!be)
		return 0;
	*e = *be;
	reg_strip(pl, e, digest);
	return err_wrap(e, "download");
}

/* A blob small enough for memory (a configuration), checked against its
 * digest. Errors: "download: WHY", or the digest's. */
static int get_small_blob(struct pull *pl, const char *digest, uint64_t size, struct buf *body,
			  struct err *e)
{
	struct registry_blob *b;
	struct image_src src;
	char got[IMAGE_DIGEST_SIZE];
	int ret = 0;

	if (size > IMAGE_JSON_MAX)
		return err_set(e, E2BIG, "%llu bytes, more than %u", (unsigned long long)size,
			       IMAGE_JSON_MAX);
	if (registry_blob_open(pl->reg, digest, size, NULL, &b, e) < 0) {
		reg_strip(pl, e, digest);
		return err_wrap(e, "download");
	}
	src = registry_blob_src(b);
	buf_reset(body);
	buf_append(body, "", 0);
	for (;;) {
		char chunk[16384];
		ssize_t r = src.read(src.ctx, chunk, sizeof(chunk), e);

		if (r < 0) {
			ret = download_err(pl, b, digest, e);
			break;
		}
		if (r == 0)
			break;
		if (body->len + (size_t)r > IMAGE_JSON_MAX) {
			ret = err_set(e, E2BIG, "more than %u bytes", IMAGE_JSON_MAX);
			break;
		}
		buf_append(body, chunk, (size_t)r);
	}
	if (ret == 0) {
		pl->out->bytes_fetched += registry_blob_bytes(b);
		image_digest_of(body->data, body->len, got);
		if (strcmp(got, digest))
			ret = err_set(e, EBADMSG, "the registry sent content whose digest is %s",
				      got);
	}
	registry_blob_close(b);
	return ret;
}

/* One layer: its blob streamed from the registry straight into the
 * unpacker (image_layer_install checks the digests and puts it in place).
 * Errors: "REF: layer D: STEP: WHY". */
static int pull_layer(struct pull *pl, const struct image_layer_desc *l, struct err *e)
{
	struct registry_blob *b;
	struct unpack_result r;
	int ret;

	atomic_store(&pl->p->step, IMAGE_STEP_FETCH);
	if (registry_blob_open(pl->reg, l->digest, l->size, &pl->p->part, &b, e) < 0) {
		reg_strip(pl, e, l->digest);
		err_wrap(e, "download");
		atomic_store(&pl->p->part, 0);
		return err_wrap(e, "%s: layer %s", pl->name, l->digest);
	}
	ret = image_layer_install(pl->state_dir, registry_blob_src(b), pl->name, l->digest,
				  l->diff_id, pl->uo, &r, e);
	if (ret < 0 && registry_blob_error(b)) {
		/* the network's failure, not the unpacker's: said as such */
		download_err(pl, b, l->digest, e);
		err_wrap(e, "%s: layer %s", pl->name, l->digest);
	}
	pl->out->bytes_fetched += registry_blob_bytes(b);
	registry_blob_close(b);
	atomic_store(&pl->p->part, 0);
	if (ret < 0)
		return ret;
	atomic_fetch_add(&pl->p->done, l->size);
	pl->out->bytes_written += r.bytes_out;
	if (ret == 1)
		pl->out->layers_new++;
	else
		pl->out->layers_shared++;
	return 0;
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
	if (get_small_blob(&pl, m->config_digest, m->config_size, &config, e) < 0) {
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
