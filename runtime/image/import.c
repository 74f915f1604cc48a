/* import.c - images from a docker-archive (`docker save`, `podman save`),
 * an oci-archive (a tar of an OCI image layout) or an OCI image layout
 * directory.
 *
 * A tar is read twice: once with tar_next to index every entry's name,
 * offset and size, then each file it needs is read from its offset (the
 * small JSON files into memory, each layer straight into the unpacker). So
 * the archive must be a plain tar on a seekable file: a compressed archive
 * (`docker save | gzip`) is refused, saying so.
 *
 * What is imported:
 *  - docker-archive: every entry of manifest.json (Config, RepoTags, Layers).
 *    A layer's digest is not in the archive's manifest: it is the sha256 of
 *    the layer file as the archive holds it (for an uncompressed layer that
 *    is its diff_id). berth writes an OCI manifest for the image (config and
 *    layers as found) under blobs/, and that manifest's digest is the
 *    image's digest, so that lookup and inspect work as for a pull. A tar
 *    that has both manifest.json and index.json (docker 25's save) is read
 *    as a docker-archive: RepoTags are full names.
 *  - OCI layout (directory or archive): every manifest of index.json for
 *    this machine's platform: an entry with a platform that does not fit is
 *    skipped, a nested index is resolved to its entry for this platform, a
 *    manifest without a platform is taken when its configuration's os and
 *    architecture fit (or say nothing). When nothing fits: "no linux/amd64
 *    image in PATH: it has ...".
 *
 * Names:
 *  - docker-archive: each of RepoTags, in canonical form (one image_info per
 *    name; the same manifest).
 *  - OCI: the org.opencontainers.image.ref.name annotation when it is a
 *    reference (it has a '/' or a ':'); a bare tag ("v1", what skopeo and
 *    buildah write by default) names nothing by itself.
 *  - name, when given, is the name of the archive's image, taken as given
 *    (its tag, else ":latest"), and replaces the archive's names. An
 *    archive holding several images (for this platform) and a name is an
 *    error: one name cannot go to several images.
 *  - an image with no name at all is stored unnamed: its ref is its manifest
 *    digest ("sha256:..."), as a replaced image is; `image ls` shows it and
 *    prune drops it.
 *
 * Failure leaves nothing partial: each layer is unpacked under tmp/ and
 * renamed into layers/ only once checked (diff_id, and the blob's digest
 * where the archive states it); the manifests and configurations go under
 * blobs/ last, when every layer of every image is there. */
#include "runtime/image/image_int.h"

#include <bearssl.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define ARCHIVE_ENTRIES_MAX 100000      /* entries of one tar we index */
#define ARCHIVE_LINKS_MAX 8             /* symlink hops inside the archive */
#define REPO_TAGS_MAX 64

struct arc_entry {
	char *name, *link;
	uint64_t offset, size;
	enum tar_type type;
};

struct archive {
	const char *path;
	bool dir;                           /* an OCI layout directory */
	int fd;                             /* the tar, or the directory */
	ARRAY(struct arc_entry) ents;
};

/* One image to import. */
struct job {
	struct image_manifest m;
	char digest[IMAGE_DIGEST_SIZE];     /* of the manifest ("" until written) */
	struct buf manifest, config;
	char (*diff_ids)[IMAGE_DIGEST_SIZE];
	char *layer_files[IMAGE_LAYERS_MAX];        /* docker-archive: the layer entries */
	char **names;
	size_t n_names;
	char ref_name[IMAGE_REF_MAX];       /* OCI annotation */
};

struct import {
	const char *state_dir;
	const char *what;                   /* the path, for messages */
	const struct unpack_opts *uo;
	struct archive a;
	struct image_progress *p;
	struct image_result *out;
	ARRAY(struct job *) jobs;
	struct buf platforms;               /* seen and skipped, for the error */
};

/* ---- the archive -------------------------------------------------------------- */

static void arc_free(struct archive *a)
{
	for (size_t i = 0; i < a->ents.n; i++) {
		free(a->ents.v[i].name);
		free(a->ents.v[i].link);
	}
	array_free(&a->ents);
	if (a->fd >= 0)
		close(a->fd);
	a->fd = -1;
}

/* A name the archive's JSON gives us: relative, no "..". */
static bool name_ok(const char *n)
{
	if (!*n || *n == '/')
		return false;
	for (const char *c = n; *c; c = strchr(c, '/') ? strchr(c, '/') + 1 : c + strlen(c))
		if (!strncmp(c, "..", 2) && (c[2] == '/' || !c[2]))
			return false;
	return true;
}

static int arc_index(struct archive *a, struct err *e)
{
	struct tar_entry *ent = malloc(sizeof(*ent));
	struct image_fd_src src;
	struct tar_reader *t = NULL;
	uint8_t magic[2];
	int ret;

	if (!ent)
		return err_set(e, ENOMEM, "out of memory");
	if (pread(a->fd, magic, 2, 0) == 2 && magic[0] == 0x1f && magic[1] == 0x8b) {
		free(ent);
		return err_set(e, EINVAL, "%s is compressed (gzip): decompress it first", a->path);
	}
	image_fd_src_init(&src, a->fd, UINT64_MAX);
	if ((ret = tar_open(&t, src.src, e)) < 0)
		goto out;
	while ((ret = tar_next(t, ent, e)) > 0) {
		struct arc_entry *x;

		if (ent->type != TAR_FILE && ent->type != TAR_SYMLINK && ent->type != TAR_HARDLINK)
			continue;
		if (a->ents.n >= ARCHIVE_ENTRIES_MAX) {
			ret = err_set(e, E2BIG, "more than %d entries", ARCHIVE_ENTRIES_MAX);
			break;
		}
		if (!(x = array_push(&a->ents))) {
			ret = err_set(e, ENOMEM, "out of memory");
			break;
		}
		x->type = ent->type;
		x->offset = ent->offset;
		x->size = ent->type == TAR_FILE ? ent->size : 0;
		x->name = strdup(ent->name);
		x->link = ent->type != TAR_FILE ? strdup(ent->link) : NULL;
		if (!x->name || (ent->type != TAR_FILE && !x->link)) {
			ret = err_set(e, ENOMEM, "out of memory");
			break;
		}
	}
out:
	tar_close(t);
	free(ent);
	return ret < 0 ? err_wrap(e, "%s: not a readable tar archive", a->path) : 0;
}

static int arc_open(struct archive *a, const char *path, struct err *e)
{
	struct stat sb;

	a->path = path;
	a->fd = open(path, O_RDONLY | O_CLOEXEC);
	if (a->fd < 0)
		return err_sys(e, errno, "open %s", path);
	if (fstat(a->fd, &sb) < 0)
		return err_sys(e, errno, "stat %s", path);
	if (S_ISDIR(sb.st_mode)) {
		a->dir = true;
		return 0;
	}
	if (!S_ISREG(sb.st_mode))
		return err_set(e, EINVAL, "%s is neither a file nor a directory", path);
	return arc_index(a, e);
}

/* The entry name, following links inside the archive; NULL when absent. */
static const struct arc_entry *arc_lookup(const struct archive *a, const char *name)
{
	char cur[TAR_NAME_MAX * 2];

	snprintf(cur, sizeof(cur), "%s", name);
	for (int hop = 0; hop <= ARCHIVE_LINKS_MAX; hop++) {
		const struct arc_entry *x = NULL;

		/* the last entry of a name wins, as when a tar is extracted */
		for (size_t i = a->ents.n; i-- > 0;)
			if (!strcmp(a->ents.v[i].name, cur)) {
				x = &a->ents.v[i];
				break;
			}
		if (!x || x->type == TAR_FILE)
			return x;
		if (x->type == TAR_HARDLINK) {
			snprintf(cur, sizeof(cur), "%s", x->link);
		} else {
			/* a symlink: relative to its directory (docker save links
			 * identical layers: "../abc/layer.tar") */
			char base[TAR_NAME_MAX], *slash, *p;

			snprintf(base, sizeof(base), "%s", x->name);
			slash = strrchr(base, '/');
			if (x->link[0] == '/' || !slash)
				snprintf(cur, sizeof(cur), "%s", x->link[0] == '/' ? x->link + 1 : x->link);
			else {
				*slash = '\0';
				snprintf(cur, sizeof(cur), "%s/%s", base, x->link);
			}
			/* fold "dir/../" */
			while ((p = strstr(cur, "/../"))) {
				char *start = p;

				while (start > cur && start[-1] != '/')
					start--;
				memmove(start, p + 4, strlen(p + 4) + 1);
			}
			while (!strncmp(cur, "./", 2))
				memmove(cur, cur + 2, strlen(cur + 2) + 1);
		}
	}
	return NULL;
}

/* fd, offset and size of the file name. For a directory a new fd (the
 * caller closes it: *own); for a tar the archive's. */
static int arc_file(struct archive *a, const char *name, int *fd, uint64_t *offset,
		    uint64_t *size, bool *own, struct err *e)
{
	const struct arc_entry *x;
	struct stat sb;

	if (!name_ok(name))
		return err_set(e, EINVAL, "%s: '%.200s' is not a name inside the archive", a->path,
			       name);
	*own = false;
	if (a->dir) {
		int f = openat(a->fd, name, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);

		if (f < 0)
			return err_sys(e, errno, "%s/%s", a->path, name);
		if (fstat(f, &sb) < 0 || !S_ISREG(sb.st_mode)) {
			close(f);
			return err_set(e, EINVAL, "%s/%s is not a file", a->path, name);
		}
		*fd = f;
		*own = true;
		*offset = 0;
		*size = (uint64_t)sb.st_size;
		return 0;
	}
	if (!(x = arc_lookup(a, name)))
		return err_set(e, ENOENT, "%s: no %.200s in the archive", a->path, name);
	*fd = a->fd;
	*offset = x->offset;
	*size = x->size;
	return 0;
}

static bool arc_has(struct archive *a, const char *name)
{
	if (a->dir)
		return faccessat(a->fd, name, F_OK, 0) == 0;
	return arc_lookup(a, name) != NULL;
}

/* A small file (JSON) into out. */
static int arc_read(struct archive *a, const char *name, struct buf *out, struct err *e)
{
	uint64_t off, size, got = 0;
	bool own;
	int fd;

	if (arc_file(a, name, &fd, &off, &size, &own, e) < 0)
		return -e->code;
	buf_reset(out);
	if (size > IMAGE_JSON_MAX) {
		if (own)
			close(fd);
		return err_set(e, E2BIG, "%s: %s is larger than %u bytes", a->path, name,
			       IMAGE_JSON_MAX);
	}
	buf_append(out, "", 0);
	while (got < size) {
		char chunk[16384];
		size_t n = size - got < sizeof(chunk) ? (size_t)(size - got) : sizeof(chunk);
		ssize_t r = pread(fd, chunk, n, (off_t)(off + got));

		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0) {
			int err = r < 0 ? errno : EIO;

			if (own)
				close(fd);
			return r < 0 ? err_sys(e, err, "read %s in %s", name, a->path)
				     : err_set(e, EIO, "%s: %s is truncated", a->path, name);
		}
		buf_append(out, chunk, (size_t)r);
		got += (uint64_t)r;
	}
	if (own)
		close(fd);
	return 0;
}

/* An OCI blob, checked against its digest. */
static int blob_read(struct import *im, const char *digest, struct buf *out, struct err *e)
{
	char name[96], got[IMAGE_DIGEST_SIZE];

	snprintf(name, sizeof(name), "blobs/sha256/%s", digest + 7);
	if (arc_read(&im->a, name, out, e) < 0)
		return -e->code;
	image_digest_of(out->data, out->len, got);
	if (strcmp(got, digest))
		return err_set(e, EBADMSG, "%s: blob %s: its content is %s", im->what, digest, got);
	return 0;
}

/* ---- progress --------------------------------------------------------------------- */

struct count_src {
	struct image_src src;
	struct image_fd_src fd;
	_Atomic uint64_t *part;
	atomic_bool *cancel;
};

static ssize_t count_read(void *ctx, void *p, size_t n, struct err *e)
{
	struct count_src *c = ctx;
	ssize_t r;

	if (atomic_load(c->cancel))
		return err_set(e, ECANCELED, "cancelled");
	r = c->fd.src.read(c->fd.src.ctx, p, n, e);
	if (r > 0)
		atomic_fetch_add(c->part, (uint64_t)r);
	return r;
}

/* ---- jobs --------------------------------------------------------------------------- */

static void job_free(struct job *j)
{
	if (!j)
		return;
	buf_free(&j->manifest);
	buf_free(&j->config);
	free(j->diff_ids);
	for (size_t k = 0; k < IMAGE_LAYERS_MAX; k++)
		free(j->layer_files[k]);
	for (size_t k = 0; k < j->n_names; k++)
		free(j->names[k]);
	free(j->names);
	free(j);
}

static struct job *job_new(struct import *im, struct err *e)
{
	struct job *j = calloc(1, sizeof(*j)), **slot;

	if (j)
		j->diff_ids = calloc(IMAGE_LAYERS_MAX, IMAGE_DIGEST_SIZE);
	if (!j || !j->diff_ids || !(slot = array_push(&im->jobs))) {
		job_free(j);
		err_set(e, ENOMEM, "out of memory");
		return NULL;
	}
	*slot = j;
	buf_init(&j->manifest);
	buf_init(&j->config);
	return j;
}

/* Add a name (as the archive gives it) to j, canonical. */
static int job_name(struct import *im, struct job *j, const char *name, struct err *e)
{
	struct image_ref r;
	char canon[IMAGE_REF_MAX], **v;

	if (image_ref_parse(name, &r, e) < 0)
		return err_wrap(e, "%s: image name '%.100s'", im->what, name);
	image_ref_format(&r, canon, sizeof(canon));
	for (size_t k = 0; k < j->n_names; k++)
		if (!strcmp(j->names[k], canon))
			return 0;
	v = realloc(j->names, (j->n_names + 1) * sizeof(*v));
	if (!v)
		return err_set(e, ENOMEM, "out of memory");
	j->names = v;
	if (!(v[j->n_names] = strdup(canon)))
		return err_set(e, ENOMEM, "out of memory");
	j->n_names++;
	return 0;
}

/* The configuration's diff_ids, and that they fit this platform. false
 * (skipped) when its os/architecture are another platform's. */
static int job_config(struct import *im, struct job *j, size_t n_layers, struct err *e)
{
	struct image_config c;
	size_t n;
	char plat[64];

	if (image_config_parse(j->config.data, j->config.len, &c, j->diff_ids, &n, e) < 0)
		return err_wrap(e, "%s: configuration %s", im->what, j->m.config_digest);
	bool known = c.arch[0] && c.os[0];

	snprintf(plat, sizeof(plat), "%s/%s%s%s", c.os, c.arch, c.variant[0] ? "/" : "",
		 c.variant);
	image_config_free(&c);
	if (n != n_layers)
		return err_set(e, EINVAL, "%s: the manifest has %zu layers but the configuration "
			       "%zu diff_ids", im->what, n_layers, n);
	if (known && !image_platform_match(image_platform(), plat)) {
		buf_printf(&im->platforms, "%s%s", im->platforms.len ? ", " : "", plat);
		return 0;
	}
	return 1;
}

/* ---- docker-archive --------------------------------------------------------------- */

static int docker_jobs(struct import *im, struct err *e)
{
	struct json_doc d = { 0 };
	const struct json_tok *root, *el;
	struct buf text;
	size_t i = 0;
	int ret = 0;

	buf_init(&text);
	if (arc_read(&im->a, "manifest.json", &text, e) < 0)
		goto fail;
	if (json_parse(&d, text.data, text.len, e) < 0) {
		err_wrap(e, "%s: manifest.json", im->what);
		goto fail;
	}
	root = json_root(&d);
	if (root->type != JSON_ARRAY || root->n > IMAGE_INDEX_MAX) {
		err_set(e, EINVAL, "%s: manifest.json: expected an array of at most %d images",
			im->what, IMAGE_INDEX_MAX);
		goto fail;
	}
	for (el = json_first(&d, root); el; el = json_next(&d, root, el), i++) {
		const struct json_tok *cfg = json_get(&d, el, "Config");
		const struct json_tok *tags = json_get(&d, el, "RepoTags");
		const struct json_tok *layers = json_get(&d, el, "Layers"), *t;
		char name[TAR_NAME_MAX], what[48];
		struct job *j;
		size_t k = 0;
		int fit;

		snprintf(what, sizeof(what), "manifest.json[%zu]", i);
		if (!(j = job_new(im, e)))
			goto fail;
		if (json_string(&d, cfg, name, sizeof(name), e) < 0) {
			err_wrap(e, "%s: %s: Config", im->what, what);
			goto fail;
		}
		if (arc_read(&im->a, name, &j->config, e) < 0)
			goto fail;
		image_digest_of(j->config.data, j->config.len, j->m.config_digest);
		j->m.config_size = j->config.len;
		if (!layers || layers->type != JSON_ARRAY || layers->n > IMAGE_LAYERS_MAX) {
			err_set(e, EINVAL, "%s: %s: Layers: expected an array of at most %d names",
				im->what, what, IMAGE_LAYERS_MAX);
			goto fail;
		}
		for (t = json_first(&d, layers); t; t = json_next(&d, layers, t), k++) {
			if (json_string(&d, t, name, sizeof(name), e) < 0) {
				err_wrap(e, "%s: %s: Layers[%zu]", im->what, what, k);
				goto fail;
			}
			if (!arc_has(&im->a, name)) {
				err_set(e, ENOENT, "%s: %s: layer %s is not in the archive", im->what,
					what, name);
				goto fail;
			}
			if (!(j->layer_files[k] = strdup(name))) {
				err_set(e, ENOMEM, "out of memory");
				goto fail;
			}
		}
		j->m.n_layers = k;
		j->m.media = MEDIA_OCI_MANIFEST;
		if ((fit = job_config(im, j, k, e)) < 0)
			goto fail;
		if (!fit) {
			im->jobs.n--;
			job_free(j);
			continue;
		}
		for (k = 0; k < j->m.n_layers; k++)
			memcpy(j->m.layers[k].diff_id, j->diff_ids[k], IMAGE_DIGEST_SIZE);
		if (tags && tags->type == JSON_ARRAY) {
			if (tags->n > REPO_TAGS_MAX) {
				err_set(e, E2BIG, "%s: %s: more than %d RepoTags", im->what, what,
					REPO_TAGS_MAX);
				goto fail;
			}
			for (t = json_first(&d, tags); t; t = json_next(&d, tags, t)) {
				char tag[IMAGE_REF_MAX];

				if (json_string(&d, t, tag, sizeof(tag), e) < 0) {
					err_wrap(e, "%s: %s: RepoTags", im->what, what);
					goto fail;
				}
				if (job_name(im, j, tag, e) < 0)
					goto fail;
			}
		}
	}
	goto out;
fail:
	ret = -e->code;
out:
	json_free(&d);
	buf_free(&text);
	return ret;
}

/* ---- OCI layout ---------------------------------------------------------------------- */

/* One manifest of the layout (digest), named by ref_name; skipped when its
 * platform is another's. */
static int oci_manifest(struct import *im, const char *digest, const char *ref_name,
			struct err *e)
{
	struct job *j = job_new(im, e);
	int fit;

	if (!j)
		return -e->code;
	if (blob_read(im, digest, &j->manifest, e) < 0)
		return -e->code;
	if (image_manifest_parse(j->manifest.data, j->manifest.len, &j->m, e) < 0)
		return err_wrap(e, "%s: %s", im->what, digest);
	memcpy(j->digest, digest, IMAGE_DIGEST_SIZE);
	if (blob_read(im, j->m.config_digest, &j->config, e) < 0)
		return -e->code;
	if ((fit = job_config(im, j, j->m.n_layers, e)) < 0)
		return fit;
	if (!fit) {
		im->jobs.n--;
		job_free(j);
		return 0;
	}
	for (size_t k = 0; k < j->m.n_layers; k++)
		memcpy(j->m.layers[k].diff_id, j->diff_ids[k], IMAGE_DIGEST_SIZE);
	snprintf(j->ref_name, sizeof(j->ref_name), "%s", ref_name);
	/* a reference names the image; a bare tag does not */
	if (ref_name[0] && strpbrk(ref_name, "/:") && job_name(im, j, ref_name, e) < 0)
		return -e->code;
	return 0;
}

static int oci_jobs(struct import *im, struct err *e)
{
	struct image_index x = { 0 }, sub = { 0 };
	struct buf text;
	int ret = 0;

	buf_init(&text);
	if (!arc_has(&im->a, "oci-layout")) {
		ret = err_set(e, EINVAL, "%s: no oci-layout file: not an OCI image layout", im->what);
		goto out;
	}
	if (arc_read(&im->a, "index.json", &text, e) < 0 ||
	    image_index_parse(text.data, text.len, &x, e) < 0) {
		ret = err_wrap(e, "%s: index.json", im->what);
		goto out;
	}
	for (size_t i = 0; i < x.n && ret == 0; i++) {
		const struct image_index_entry *en = &x.v[i];

		if (en->media == MEDIA_OCI_INDEX || en->media == MEDIA_DOCKER_LIST) {
			int k;

			if (blob_read(im, en->digest, &text, e) < 0 ||
			    image_index_parse(text.data, text.len, &sub, e) < 0) {
				ret = err_wrap(e, "%s: index %s", im->what, en->digest);
				break;
			}
			k = image_index_select(&sub, NULL, im->what, e);
			if (k < 0) {
				/* note what it has, for the error if nothing fits */
				for (size_t s = 0; s < sub.n; s++)
					if (sub.v[s].platform[0] && strncmp(sub.v[s].platform, "unknown/", 8))
						buf_printf(&im->platforms, "%s%s",
							   im->platforms.len ? ", " : "",
							   sub.v[s].platform);
			} else {
				ret = oci_manifest(im, sub.v[k].digest, en->ref_name, e);
			}
			image_index_free(&sub);
			continue;
		}
		if (en->media != MEDIA_OCI_MANIFEST && en->media != MEDIA_DOCKER_MANIFEST &&
		    en->media != MEDIA_UNKNOWN)
			continue;
		if (en->platform[0] && !image_platform_match(image_platform(), en->platform)) {
			if (strncmp(en->platform, "unknown/", 8))
				buf_printf(&im->platforms, "%s%s", im->platforms.len ? ", " : "",
					   en->platform);
			continue;
		}
		ret = oci_manifest(im, en->digest, en->ref_name, e);
	}
out:
	image_index_free(&x);
	buf_free(&text);
	return ret;
}

/* ---- layers and results --------------------------------------------------------------- */

/* sha256 of an archive file's bytes (a docker-archive layer already unpacked). */
static int file_digest(struct import *im, const char *name, char out[IMAGE_DIGEST_SIZE],
		       struct err *e)
{
	uint64_t off, size, got = 0;
	br_sha256_context c;
	uint8_t sum[32], *chunk;
	bool own;
	int fd;

	if (arc_file(&im->a, name, &fd, &off, &size, &own, e) < 0)
		return -e->code;
	if (!(chunk = malloc(65536))) {
		if (own)
			close(fd);
		return err_set(e, ENOMEM, "out of memory");
	}
	br_sha256_init(&c);
	while (got < size) {
		size_t n = size - got < 65536 ? (size_t)(size - got) : 65536;
		ssize_t r = pread(fd, chunk, n, (off_t)(off + got));

		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0) {
			free(chunk);
			if (own)
				close(fd);
			return err_set(e, EIO, "%s: %s is truncated", im->what, name);
		}
		br_sha256_update(&c, chunk, (size_t)r);
		got += (uint64_t)r;
	}
	free(chunk);
	if (own)
		close(fd);
	br_sha256_out(&c, sum);
	image_digest_format(sum, out);
	return 0;
}

static bool file_gzip(struct import *im, const char *name)
{
	uint64_t off, size;
	uint8_t m[2];
	struct err e;
	bool own, gz;
	int fd;

	if (arc_file(&im->a, name, &fd, &off, &size, &own, &e) < 0)
		return false;
	gz = size >= 2 && pread(fd, m, 2, (off_t)off) == 2 && m[0] == 0x1f && m[1] == 0x8b;
	if (own)
		close(fd);
	return gz;
}

/* Layer k of j: the archive file that holds it. */
static int layer_file(struct job *j, size_t k, char *name, size_t size)
{
	if (j->layer_files[k])
		return snprintf(name, size, "%s", j->layer_files[k]);
	return snprintf(name, size, "blobs/sha256/%s", j->m.layers[k].digest + 7);
}

static int install_layer(struct import *im, struct job *j, size_t k, struct err *e)
{
	char name[TAR_NAME_MAX], what[IMAGE_REF_MAX + 64];
	struct count_src cs;
	struct unpack_result r;
	uint64_t off, size;
	bool own, docker = j->layer_files[k] != NULL;
	int fd, ret;

	layer_file(j, k, name, sizeof(name));
	/* the archive, and the image in it when it has a name */
	if (j->n_names)
		snprintf(what, sizeof(what), "%s (%s)", im->what, j->names[0]);
	else
		snprintf(what, sizeof(what), "%s", im->what);
	if (image_layer_present(im->state_dir, j->m.layers[k].diff_id)) {
		im->out->layers_shared++;
		if (docker && !j->m.layers[k].digest[0]) {
			if (file_gzip(im, name))
				return file_digest(im, name, j->m.layers[k].digest, e);
			memcpy(j->m.layers[k].digest, j->m.layers[k].diff_id, IMAGE_DIGEST_SIZE);
		}
		return 0;
	}
	if (arc_file(&im->a, name, &fd, &off, &size, &own, e) < 0)
		return -e->code;
	if (lseek(fd, (off_t)off, SEEK_SET) < 0) {
		ret = err_sys(e, errno, "seek in %s", im->what);
		if (own)
			close(fd);
		return ret;
	}
	image_fd_src_init(&cs.fd, fd, size);
	cs.src = (struct image_src){ .read = count_read, .ctx = &cs };
	cs.part = &im->p->part;
	cs.cancel = &im->p->cancel;
	atomic_store(&im->p->part, 0);
	ret = image_layer_install(im->state_dir, cs.src, what, docker ? NULL : j->m.layers[k].digest,
				  j->m.layers[k].diff_id, im->uo, &r, e);
	if (own)
		close(fd);
	atomic_store(&im->p->part, 0);
	if (ret < 0)
		return ret;
	atomic_fetch_add(&im->p->done, size);
	im->out->bytes_written += r.bytes_out;
	if (ret == 1)
		im->out->layers_new++;
	else
		im->out->layers_shared++;
	if (docker) {
		memcpy(j->m.layers[k].digest, r.digest, IMAGE_DIGEST_SIZE);
		j->m.layers[k].size = r.bytes_in;
	}
	return 0;
}

/* docker-archive: the OCI manifest berth writes for the image. */
static void docker_manifest(struct import *im, struct job *j)
{
	struct buf *b = &j->manifest;

	buf_reset(b);
	buf_printf(b, "{\"schemaVersion\":2,\"mediaType\":\"application/vnd.oci.image.manifest.v1+json\","
		   "\"config\":{\"mediaType\":\"application/vnd.oci.image.config.v1+json\","
		   "\"digest\":\"%s\",\"size\":%zu},\"layers\":[", j->m.config_digest, j->config.len);
	for (size_t k = 0; k < j->m.n_layers; k++) {
		char name[TAR_NAME_MAX];
		bool gz;

		layer_file(j, k, name, sizeof(name));
		gz = strcmp(j->m.layers[k].digest, j->m.layers[k].diff_id) != 0;
		if (!j->m.layers[k].size) {
			uint64_t off, size;
			bool own;
			int fd;
			struct err e;

			if (arc_file(&im->a, name, &fd, &off, &size, &own, &e) == 0) {
				j->m.layers[k].size = size;
				if (own)
					close(fd);
			}
		}
		buf_printf(b, "%s{\"mediaType\":\"application/vnd.oci.image.layer.v1.tar%s\","
			   "\"digest\":\"%s\",\"size\":%llu}", k ? "," : "", gz ? "+gzip" : "",
			   j->m.layers[k].digest, (unsigned long long)j->m.layers[k].size);
	}
	buf_puts(b, "]}");
	image_digest_of(b->data, b->len, j->digest);
}

static int add_result(struct import *im, struct job *j, const char *ref, struct err *e)
{
	struct image_result *out = im->out;
	struct image_info *v = realloc(out->images, (out->n_images + 1) * sizeof(*v)), *i;
	uint64_t size = 0;

	if (!v)
		return err_set(e, ENOMEM, "out of memory");
	out->images = v;
	i = &v[out->n_images];
	if (image_info_fill(i, ref, j->digest, &j->m, j->config.data, j->config.len, im->what,
			    e) < 0)
		return -e->code;
	out->n_images++;
	for (size_t k = 0; k < i->n_layers; k++)
		size += image_layer_bytes(im->state_dir, i->layers[k].diff_id);
	i->size = size;
	return 0;
}

int image_import(const char *state_dir, const char *path, const char *name,
		 const struct unpack_opts *uo, struct image_progress *p, struct image_result *out,
		 struct err *e)
{
	struct import im = { .state_dir = state_dir, .what = path, .uo = uo, .p = p, .out = out,
			     .a = { .fd = -1 } };
	int lock = -1, ret = 0;

	memset(out, 0, sizeof(*out));
	buf_init(&im.platforms);
	atomic_store(&p->step, IMAGE_STEP_RESOLVE);
	if ((lock = image_work_lock(state_dir, e)) < 0)
		goto fail;
	if (arc_open(&im.a, path, e) < 0)
		goto fail;
	if (!im.a.dir && arc_has(&im.a, "manifest.json"))
		ret = docker_jobs(&im, e);
	else if (arc_has(&im.a, "index.json"))
		ret = oci_jobs(&im, e);
	else
		ret = err_set(e, EINVAL, "%s: neither a docker-archive (manifest.json) nor an OCI "
			      "image layout (oci-layout, index.json)", path);
	if (ret < 0)
		goto fail;
	if (!im.jobs.n) {
		if (im.platforms.len)
			err_set(e, ENOENT, "no %s image in %s: it has %s", image_platform(), path,
				im.platforms.data);
		else
			err_set(e, ENOENT, "%s holds no image", path);
		goto fail;
	}
	if (name && *name && im.jobs.n > 1) {
		err_set(e, EINVAL, "%s holds %zu images: a name can only be given to one", path,
			im.jobs.n);
		goto fail;
	}
	if (name && *name) {
		struct job *j = im.jobs.v[0];

		for (size_t k = 0; k < j->n_names; k++)
			free(j->names[k]);
		j->n_names = 0;
		if (job_name(&im, j, name, e) < 0)
			goto fail;
	}

	/* the layers, every image's, each once */
	for (size_t i = 0; i < im.jobs.n; i++) {
		struct job *j = im.jobs.v[i];

		for (size_t k = 0; k < j->m.n_layers; k++) {
			char f[TAR_NAME_MAX];
			uint64_t off, size;
			bool own;
			int fd;

			bool again = false;

			/* a layer several images (or one, twice) hold is read once */
			for (size_t i2 = 0; i2 <= i && !again; i2++)
				for (size_t k2 = 0; k2 < (i2 == i ? k : im.jobs.v[i2]->m.n_layers); k2++)
					again = again || !strcmp(im.jobs.v[i2]->m.layers[k2].diff_id,
								 j->m.layers[k].diff_id);
			if (again || image_layer_present(state_dir, j->m.layers[k].diff_id))
				continue;
			layer_file(j, k, f, sizeof(f));
			if (arc_file(&im.a, f, &fd, &off, &size, &own, e) < 0)
				goto fail;
			if (own)
				close(fd);
			atomic_fetch_add(&p->total, size);
		}
	}
	atomic_store(&p->step, IMAGE_STEP_UNPACK);
	for (size_t i = 0; i < im.jobs.n; i++)
		for (size_t k = 0; k < im.jobs.v[i]->m.n_layers; k++)
			if (install_layer(&im, im.jobs.v[i], k, e) < 0)
				goto fail;

	/* then what names them */
	for (size_t i = 0; i < im.jobs.n; i++) {
		struct job *j = im.jobs.v[i];

		if (!j->digest[0])
			docker_manifest(&im, j);
		if (image_blob_write(state_dir, j->m.config_digest, j->config.data, j->config.len,
				     e) < 0 ||
		    image_blob_write(state_dir, j->digest, j->manifest.data, j->manifest.len, e) < 0) {
			image_err_full(e, state_dir);
			err_wrap(e, "%s", path);
			goto fail;
		}
		if (!j->n_names && add_result(&im, j, j->digest, e) < 0)
			goto fail;
		for (size_t k = 0; k < j->n_names; k++)
			if (add_result(&im, j, j->names[k], e) < 0)
				goto fail;
	}
	atomic_store(&p->step, IMAGE_STEP_DONE);
	goto out;
fail:
	/* every error names the archive */
	if (!strstr(e->msg, path))
		err_wrap(e, "%s", path);
	ret = -e->code;
	image_result_free(out);
out:
	for (size_t i = 0; i < im.jobs.n; i++)
		job_free(im.jobs.v[i]);
	array_free(&im.jobs);
	buf_free(&im.platforms);
	arc_free(&im.a);
	close(lock);
	return ret;
}
