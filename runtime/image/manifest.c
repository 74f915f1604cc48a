/* manifest.c - OCI indexes and manifests, Docker manifest lists and v2
 * manifests, image configurations: what an image is made of and what a
 * container runs from it.
 *
 * Every document comes from a registry or an archive, so none is trusted:
 * strings are bounded, arrays counted, digests checked for form, and every
 * refusal says which field held what. */
#include "runtime/image/image_int.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MEDIA_MAX 128                   /* a media type */
#define CONFIG_LIST_MAX 4096            /* Env, Cmd, Entrypoint, ExposedPorts entries */
#define CONFIG_STRING_MAX 65536         /* one of their strings */

static const struct {
	const char *name;
	enum image_media media;
} medias[] = {
	{ "application/vnd.oci.image.index.v1+json", MEDIA_OCI_INDEX },
	{ "application/vnd.oci.image.manifest.v1+json", MEDIA_OCI_MANIFEST },
	{ "application/vnd.docker.distribution.manifest.list.v2+json", MEDIA_DOCKER_LIST },
	{ "application/vnd.docker.distribution.manifest.v2+json", MEDIA_DOCKER_MANIFEST },
};

/* Layers berth unpacks: a tar, gzip-compressed or not (unpack.c tells
 * which from the bytes). */
static const char *const layer_medias[] = {
	"application/vnd.oci.image.layer.v1.tar",
	"application/vnd.oci.image.layer.v1.tar+gzip",
	"application/vnd.docker.image.rootfs.diff.tar",
	"application/vnd.docker.image.rootfs.diff.tar.gzip",
};

static const char *const config_medias[] = {
	"application/vnd.oci.image.config.v1+json",
	"application/vnd.docker.container.image.v1+json",
};

enum image_media image_media_parse(const char *s)
{
	size_t n;

	if (!s)
		return MEDIA_UNKNOWN;
	/* a Content-Type may carry parameters ("; charset=utf-8") */
	n = strcspn(s, "; \t");
	for (size_t i = 0; i < ARRAY_SIZE(medias); i++)
		if (strlen(medias[i].name) == n && !strncasecmp(s, medias[i].name, n))
			return medias[i].media;
	return MEDIA_UNKNOWN;
}

const char *image_platform(void)
{
#if defined(__x86_64__)
	return "linux/amd64";
#elif defined(__aarch64__)
	return "linux/arm64/v8";
#else
#error "berth images: which platform is this?"
#endif
}

/* ---- small readers ---------------------------------------------------------- */

/* The string at t (what names it in messages) into buf[size]. */
static int get_string(const struct json_doc *d, const struct json_tok *t, const char *what,
		      char *buf, size_t size, struct err *e)
{
	if (json_string(d, t, buf, size, e) < 0)
		return err_wrap(e, "%s", what);
	return 0;
}

/* A digest member: required, well-formed. */
static int get_digest(const struct json_doc *d, const struct json_tok *obj, const char *what,
		      char *out, struct err *e)
{
	const struct json_tok *t = json_get(d, obj, "digest");
	char buf[IMAGE_DIGEST_SIZE + 64];

	if (!t)
		return err_set(e, EINVAL, "%s: no digest", what);
	if (get_string(d, t, what, buf, sizeof(buf), e) < 0)
		return -e->code;
	if (!image_digest_valid(buf)) {
		if (!strncmp(buf, "sha256:", 7) || !strchr(buf, ':'))
			return err_set(e, EINVAL, "%s: digest '%.80s' is not sha256:<64 hex digits>",
				       what, buf);
		return err_set(e, EINVAL, "%s: digest algorithm of '%.80s' is not supported "
			       "(only sha256)", what, buf);
	}
	memcpy(out, buf, IMAGE_DIGEST_SIZE);
	return 0;
}

static int get_size(const struct json_doc *d, const struct json_tok *obj, const char *what,
		    uint64_t *out, struct err *e)
{
	const struct json_tok *t = json_get(d, obj, "size");
	long long v;

	*out = 0;
	if (!t)
		return 0;
	if (json_int(d, t, 0, INT64_MAX, &v, e) < 0)
		return err_wrap(e, "%s: size", what);
	*out = (uint64_t)v;
	return 0;
}

/* An optional media type member into buf ("" when absent). */
static int get_media(const struct json_doc *d, const struct json_tok *obj, const char *what,
		     char buf[MEDIA_MAX], struct err *e)
{
	const struct json_tok *t = json_get(d, obj, "mediaType");

	buf[0] = '\0';
	return t ? get_string(d, t, what, buf, MEDIA_MAX, e) : 0;
}

static int parse_root(struct json_doc *d, const char *text, size_t len, const char *what,
		      struct err *e)
{
	if (json_parse(d, text, len, e) < 0) {
		json_free(d);
		return err_wrap(e, "%s", what);
	}
	if (json_root(d)->type != JSON_OBJECT) {
		err_set(e, EINVAL, "%s: expected an object, found %s", what,
			json_type_name(json_root(d)->type));
		json_free(d);
		return -EINVAL;
	}
	return 0;
}

enum image_media image_manifest_media(const char *text, size_t len, const char *content_type)
{
	struct json_doc d = { 0 };
	enum image_media m = MEDIA_UNKNOWN;
	const struct json_tok *root;
	char media[MEDIA_MAX];
	struct err e;

	if (json_parse(&d, text, len, &e) == 0 && (root = json_root(&d))->type == JSON_OBJECT) {
		if (get_media(&d, root, "mediaType", media, &e) == 0 && media[0])
			m = image_media_parse(media);
		else if (content_type && image_media_parse(content_type))
			m = image_media_parse(content_type);
		else if (json_get(&d, root, "manifests"))
			m = MEDIA_OCI_INDEX;
		else if (json_get(&d, root, "config") && json_get(&d, root, "layers"))
			m = MEDIA_OCI_MANIFEST;
	}
	json_free(&d);
	return m;
}

/* ---- indexes and manifest lists --------------------------------------------- */

static bool platform_part_ok(const char *s)
{
	if (!*s)
		return false;
	for (; *s; s++)
		if (!isalnum((unsigned char)*s) && !strchr("_.-", *s))
			return false;
	return true;
}

/* "os/arch[/variant]" from a platform object; "" when absent. */
static int get_platform(const struct json_doc *d, const struct json_tok *obj, const char *what,
			char out[64], struct err *e)
{
	const struct json_tok *p = json_get(d, obj, "platform");
	char os[20], arch[20], variant[20] = "";

	out[0] = '\0';
	if (!p)
		return 0;
	if (p->type != JSON_OBJECT)
		return err_set(e, EINVAL, "%s: platform: expected an object, found %s", what,
			       json_type_name(p->type));
	if (get_string(d, json_get(d, p, "os"), "platform.os", os, sizeof(os), e) < 0 ||
	    get_string(d, json_get(d, p, "architecture"), "platform.architecture", arch,
		       sizeof(arch), e) < 0 ||
	    (json_get(d, p, "variant") &&
	     get_string(d, json_get(d, p, "variant"), "platform.variant", variant,
			sizeof(variant), e) < 0))
		return err_wrap(e, "%s", what);
	if (!platform_part_ok(os) || !platform_part_ok(arch) ||
	    (variant[0] && !platform_part_ok(variant)))
		return err_set(e, EINVAL, "%s: platform '%s/%s%s%s' is not a platform", what, os,
			       arch, variant[0] ? "/" : "", variant);
	snprintf(out, 64, "%s/%s%s%s", os, arch, variant[0] ? "/" : "", variant);
	return 0;
}

void image_index_free(struct image_index *x)
{
	free(x->v);
	x->v = NULL;
	x->n = 0;
}

int image_index_parse(const char *text, size_t len, struct image_index *x, struct err *e)
{
	struct json_doc d = { 0 };
	const struct json_tok *root, *list, *el;
	char media[MEDIA_MAX], what[48];
	size_t i = 0;
	long long ver;

	x->v = NULL;
	x->n = 0;
	if (parse_root(&d, text, len, "index", e) < 0)
		return -e->code;
	root = json_root(&d);
	if (json_get(&d, root, "schemaVersion") &&
	    (json_int(&d, json_get(&d, root, "schemaVersion"), 2, 2, &ver, e) < 0)) {
		err_wrap(e, "index: schemaVersion");
		goto fail;
	}
	list = json_get(&d, root, "manifests");
	if (!list || list->type != JSON_ARRAY) {
		err_set(e, EINVAL, "index: manifests: expected an array, found %s",
			list ? json_type_name(list->type) : "nothing");
		goto fail;
	}
	if (list->n > IMAGE_INDEX_MAX) {
		err_set(e, E2BIG, "index: %u manifests, more than %d", list->n, IMAGE_INDEX_MAX);
		goto fail;
	}
	x->v = calloc(list->n ? list->n : 1, sizeof(*x->v));
	if (!x->v) {
		err_set(e, ENOMEM, "out of memory");
		goto fail;
	}
	for (el = json_first(&d, list); el; el = json_next(&d, list, el), i++) {
		struct image_index_entry *en = &x->v[i];
		const struct json_tok *ann;

		snprintf(what, sizeof(what), "index: manifests[%zu]", i);
		if (el->type != JSON_OBJECT) {
			err_set(e, EINVAL, "%s: expected an object, found %s", what,
				json_type_name(el->type));
			goto fail;
		}
		if (get_digest(&d, el, what, en->digest, e) < 0 ||
		    get_size(&d, el, what, &en->size, e) < 0 ||
		    get_media(&d, el, what, media, e) < 0 ||
		    get_platform(&d, el, what, en->platform, e) < 0)
			goto fail;
		en->media = image_media_parse(media);
		ann = json_get(&d, el, "annotations");
		if (ann && ann->type == JSON_OBJECT &&
		    json_get(&d, ann, "org.opencontainers.image.ref.name") &&
		    get_string(&d, json_get(&d, ann, "org.opencontainers.image.ref.name"),
			       "annotations: org.opencontainers.image.ref.name", en->ref_name,
			       sizeof(en->ref_name), e) < 0) {
			err_wrap(e, "%s", what);
			goto fail;
		}
	}
	x->n = i;
	json_free(&d);
	return 0;
fail:
	json_free(&d);
	image_index_free(x);
	return -e->code;
}

/* "os", "arch", "variant" of "os/arch[/variant]". */
static void platform_split(const char *p, char os[64], char arch[64], char variant[64])
{
	char buf[64], *a, *v;

	snprintf(buf, sizeof(buf), "%s", p);
	a = strchr(buf, '/');
	if (a)
		*a++ = '\0';
	v = a ? strchr(a, '/') : NULL;
	if (v)
		*v++ = '\0';
	snprintf(os, 64, "%s", buf);
	snprintf(arch, 64, "%s", a ? a : "");
	snprintf(variant, 64, "%s", v ? v : "");
}

/* containerd's normalisation: arm64's only variant is v8, amd64's baseline v1. */
static const char *variant_norm(const char *arch, const char *variant)
{
	if (!strcmp(arch, "arm64") && !strcmp(variant, "v8"))
		return "";
	if (!strcmp(arch, "amd64") && !strcmp(variant, "v1"))
		return "";
	return variant;
}

static const char *arch_norm(const char *arch)
{
	if (!strcmp(arch, "aarch64"))
		return "arm64";
	if (!strcmp(arch, "x86_64") || !strcmp(arch, "x86-64"))
		return "amd64";
	return arch;
}

bool image_platform_match(const char *want, const char *have)
{
	char wo[64], wa[64], wv[64], ho[64], ha[64], hv[64];

	platform_split(want, wo, wa, wv);
	platform_split(have, ho, ha, hv);
	if (strcmp(wo, ho) || strcmp(arch_norm(wa), arch_norm(ha)))
		return false;
	return !strcmp(variant_norm(arch_norm(wa), wv), variant_norm(arch_norm(ha), hv));
}

int image_index_select(const struct image_index *x, const char *platform, const char *what,
		       struct err *e)
{
	struct buf have;
	int found = -1;

	if (!platform)
		platform = image_platform();
	for (size_t i = 0; i < x->n; i++) {
		const struct image_index_entry *en = &x->v[i];

		if (en->media != MEDIA_OCI_MANIFEST && en->media != MEDIA_DOCKER_MANIFEST &&
		    en->media != MEDIA_UNKNOWN)
			continue;
		if (!en->platform[0] || !image_platform_match(platform, en->platform))
			continue;
		if (!strcmp(en->platform, platform))
			return (int)i;      /* the exact spelling wins */
		if (found < 0)
			found = (int)i;
	}
	if (found >= 0)
		return found;
	/* Say what there is: the platforms of runnable images, once each
	 * (attestations are "unknown/unknown"). */
	buf_init(&have);
	for (size_t i = 0; i < x->n; i++) {
		const char *p = x->v[i].platform;
		bool seen = false;

		if (!p[0] || !strncmp(p, "unknown/", 8))
			continue;
		for (size_t j = 0; j < i; j++)
			seen = seen || !strcmp(x->v[j].platform, p);
		if (!seen)
			buf_printf(&have, "%s%s", have.len ? ", " : "", p);
	}
	if (have.len)
		err_set(e, ENOENT, "no %s image in %s: it has %s", platform, what, have.data);
	else
		err_set(e, ENOENT, "no %s image in %s: it names no platform", platform, what);
	buf_free(&have);
	return -ENOENT;
}

/* ---- manifests ---------------------------------------------------------------- */

static bool in_list(const char *s, const char *const *list, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (!strcmp(s, list[i]))
			return true;
	return false;
}

int image_manifest_parse(const char *text, size_t len, struct image_manifest *m, struct err *e)
{
	struct json_doc d = { 0 };
	const struct json_tok *root, *cfg, *layers, *el;
	char media[MEDIA_MAX], what[48];
	long long ver;
	size_t i = 0;

	memset(m, 0, sizeof(*m));
	if (parse_root(&d, text, len, "manifest", e) < 0)
		return -e->code;
	root = json_root(&d);
	if (json_int(&d, json_get(&d, root, "schemaVersion"), 2, 2, &ver, e) < 0) {
		err_wrap(e, "manifest: schemaVersion");
		goto fail;
	}
	if (get_media(&d, root, "manifest: mediaType", media, e) < 0)
		goto fail;
	m->media = media[0] ? image_media_parse(media) : MEDIA_OCI_MANIFEST;
	if (m->media != MEDIA_OCI_MANIFEST && m->media != MEDIA_DOCKER_MANIFEST) {
		err_set(e, EINVAL, "manifest: media type %s is not an image manifest", media);
		goto fail;
	}
	cfg = json_get(&d, root, "config");
	if (!cfg || cfg->type != JSON_OBJECT) {
		err_set(e, EINVAL, "manifest: config: expected an object, found %s",
			cfg ? json_type_name(cfg->type) : "nothing");
		goto fail;
	}
	if (get_digest(&d, cfg, "manifest: config", m->config_digest, e) < 0 ||
	    get_size(&d, cfg, "manifest: config", &m->config_size, e) < 0 ||
	    get_media(&d, cfg, "manifest: config: mediaType", media, e) < 0)
		goto fail;
	/* An artefact (a Helm chart, a signature) is no container image. */
	if (media[0] && !in_list(media, config_medias, ARRAY_SIZE(config_medias))) {
		err_set(e, EINVAL, "manifest: not a container image: its configuration is %s",
			media);
		goto fail;
	}
	layers = json_get(&d, root, "layers");
	if (!layers || layers->type != JSON_ARRAY) {
		err_set(e, EINVAL, "manifest: layers: expected an array, found %s",
			layers ? json_type_name(layers->type) : "nothing");
		goto fail;
	}
	if (layers->n > IMAGE_LAYERS_MAX) {
		err_set(e, E2BIG, "manifest: %u layers, more than berth stacks (%d)", layers->n,
			IMAGE_LAYERS_MAX);
		goto fail;
	}
	for (el = json_first(&d, layers); el; el = json_next(&d, layers, el), i++) {
		struct image_layer_desc *l = &m->layers[i];

		snprintf(what, sizeof(what), "manifest: layers[%zu]", i);
		if (el->type != JSON_OBJECT) {
			err_set(e, EINVAL, "%s: expected an object, found %s", what,
				json_type_name(el->type));
			goto fail;
		}
		if (get_digest(&d, el, what, l->digest, e) < 0 ||
		    get_size(&d, el, what, &l->size, e) < 0 ||
		    get_media(&d, el, what, media, e) < 0)
			goto fail;
		if (!in_list(media, layer_medias, ARRAY_SIZE(layer_medias))) {
			err_set(e, EINVAL, "manifest: layer %s: layer media type %s is not supported "
				"(only tar and tar+gzip)", l->digest, media[0] ? media : "(none)");
			goto fail;
		}
	}
	m->n_layers = i;
	json_free(&d);
	return 0;
fail:
	json_free(&d);
	return -e->code;
}

/* ---- configurations ------------------------------------------------------------ */

void image_config_free(struct image_config *c)
{
	char **lists[] = { c->entrypoint, c->cmd, c->env, c->exposed };

	for (size_t i = 0; i < ARRAY_SIZE(lists); i++) {
		for (char **p = lists[i]; p && *p; p++)
			free(*p);
		free(lists[i]);
	}
	free(c->workdir);
	free(c->user);
	free(c->stop_signal);
	memset(c, 0, sizeof(*c));
}

/* A string token, allocated; its unescaped text is never longer than its
 * escaped one, so the token's length bounds the buffer. */
static int dup_string(const struct json_doc *d, const struct json_tok *t, const char *what,
		      size_t max, char **out, struct err *e)
{
	size_t n;
	char *s;

	if (!t || t->type != JSON_STRING)
		return err_set(e, EINVAL, "%s: expected a string, found %s", what,
			       t ? json_type_name(t->type) : "nothing");
	n = t->end - t->start;
	if (n > max + 2)
		n = max + 2;
	s = malloc(n);
	if (!s)
		return err_set(e, ENOMEM, "out of memory");
	if (json_string(d, t, s, n, e) < 0) {
		free(s);
		return err_wrap(e, "%s", what);
	}
	*out = s;
	return 0;
}

/* An optional string member of obj: NULL when absent, null or "". */
static int opt_string(const struct json_doc *d, const struct json_tok *obj, const char *key,
		      size_t max, char **out, struct err *e)
{
	const struct json_tok *t = json_get(d, obj, key);

	*out = NULL;
	if (!t || t->type == JSON_NULL)
		return 0;
	if (dup_string(d, t, key, max, out, e) < 0)
		return err_wrap(e, "configuration: config");
	if (!**out) {
		free(*out);
		*out = NULL;
	}
	return 0;
}

/* An optional list: the strings of an array, or (keys) the keys of an
 * object; NULL-terminated; NULL when absent or null. */
static int opt_list(const struct json_doc *d, const struct json_tok *obj, const char *key,
		    bool keys, char ***out, struct err *e)
{
	const struct json_tok *t = json_get(d, obj, key), *el;
	char what[48];
	size_t i = 0;

	*out = NULL;
	if (!t || t->type == JSON_NULL)
		return 0;
	if (t->type != (keys ? JSON_OBJECT : JSON_ARRAY))
		return err_set(e, EINVAL, "configuration: config: %s: expected %s, found %s", key,
			       keys ? "an object" : "an array", json_type_name(t->type));
	if (t->n > CONFIG_LIST_MAX)
		return err_set(e, E2BIG, "configuration: config: %s: %u entries, more than %d", key,
			       t->n, CONFIG_LIST_MAX);
	*out = calloc(t->n + 1, sizeof(char *));
	if (!*out)
		return err_set(e, ENOMEM, "out of memory");
	for (el = json_first(d, t); el; el = json_next(d, t, el), i++) {
		snprintf(what, sizeof(what), "%s[%zu]", key, i);
		if (dup_string(d, el, what, CONFIG_STRING_MAX, &(*out)[i], e) < 0)
			return err_wrap(e, "configuration: config");
	}
	return 0;
}

static int days_from_civil(int y, unsigned m, unsigned d)
{
	/* Howard Hinnant's algorithm: days since 1970-01-01, proleptic Gregorian. */
	y -= m <= 2;
	int era = (y >= 0 ? y : y - 399) / 400;
	unsigned yoe = (unsigned)(y - era * 400);
	unsigned doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
	unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;

	return era * 146097 + (int)doe - 719468;
}

static bool num(const char **p, int digits, int *out)
{
	int v = 0;

	for (int i = 0; i < digits; i++, (*p)++) {
		if (!isdigit((unsigned char)**p))
			return false;
		v = v * 10 + (**p - '0');
	}
	*out = v;
	return true;
}

/* RFC 3339 ("2023-05-19T20:19:03.569414542Z", "...+02:00") into unix seconds. */
static int rfc3339(const char *s, int64_t *out)
{
	static const int mdays[] = { 31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31 };
	int y, mo, d, h, mi, sec, oh = 0, om = 0, sign = 0;
	const char *p = s;

	if (!num(&p, 4, &y) || *p++ != '-' || !num(&p, 2, &mo) || *p++ != '-' ||
	    !num(&p, 2, &d) || (*p != 'T' && *p != 't' && *p != ' ') || !*p++ ||
	    !num(&p, 2, &h) || *p++ != ':' || !num(&p, 2, &mi) || *p++ != ':' ||
	    !num(&p, 2, &sec))
		return -1;
	if (mo < 1 || mo > 12 || d < 1 || d > mdays[mo - 1] || h > 23 || mi > 59 || sec > 60)
		return -1;
	if (*p == '.') {
		p++;
		if (!isdigit((unsigned char)*p))
			return -1;
		while (isdigit((unsigned char)*p))
			p++;
	}
	if (*p == 'Z' || *p == 'z') {
		p++;
	} else if (*p == '+' || *p == '-') {
		sign = *p++ == '-' ? -1 : 1;
		if (!num(&p, 2, &oh) || *p++ != ':' || !num(&p, 2, &om) || oh > 23 || om > 59)
			return -1;
	} else {
		return -1;
	}
	if (*p)
		return -1;
	*out = (int64_t)days_from_civil(y, (unsigned)mo, (unsigned)d) * 86400 + h * 3600 +
	       mi * 60 + sec - sign * (oh * 3600 + om * 60);
	return 0;
}

/* A short fixed-size member ("architecture") into out[16]. */
static int short_string(const struct json_doc *d, const struct json_tok *root, const char *key,
			char out[16], struct err *e)
{
	const struct json_tok *t = json_get(d, root, key);

	out[0] = '\0';
	if (!t || t->type == JSON_NULL)
		return 0;
	if (json_string(d, t, out, 16, e) < 0)
		return err_wrap(e, "configuration: %s", key);
	return 0;
}

int image_config_parse(const char *text, size_t len, struct image_config *c,
		       char (*diff_ids)[IMAGE_DIGEST_SIZE], size_t *n_diff_ids, struct err *e)
{
	struct json_doc d = { 0 };
	const struct json_tok *root, *cfg, *t, *rootfs, *ids, *el;
	char created[64];
	size_t i = 0;

	memset(c, 0, sizeof(*c));
	if (n_diff_ids)
		*n_diff_ids = 0;
	if (parse_root(&d, text, len, "configuration", e) < 0)
		return -e->code;
	root = json_root(&d);
	if (short_string(&d, root, "architecture", c->arch, e) < 0 ||
	    short_string(&d, root, "os", c->os, e) < 0 ||
	    short_string(&d, root, "variant", c->variant, e) < 0)
		goto fail;
	t = json_get(&d, root, "created");
	if (t && t->type != JSON_NULL) {
		if (json_string(&d, t, created, sizeof(created), e) < 0) {
			err_wrap(e, "configuration: created");
			goto fail;
		}
		if (rfc3339(created, &c->created) < 0) {
			err_set(e, EINVAL, "configuration: created: '%s' is not an RFC 3339 time",
				created);
			goto fail;
		}
	}
	cfg = json_get(&d, root, "config");
	if (cfg && cfg->type != JSON_NULL) {
		if (cfg->type != JSON_OBJECT) {
			err_set(e, EINVAL, "configuration: config: expected an object, found %s",
				json_type_name(cfg->type));
			goto fail;
		}
		if (opt_list(&d, cfg, "Entrypoint", false, &c->entrypoint, e) < 0 ||
		    opt_list(&d, cfg, "Cmd", false, &c->cmd, e) < 0 ||
		    opt_list(&d, cfg, "Env", false, &c->env, e) < 0 ||
		    opt_list(&d, cfg, "ExposedPorts", true, &c->exposed, e) < 0 ||
		    opt_string(&d, cfg, "WorkingDir", 4096, &c->workdir, e) < 0 ||
		    opt_string(&d, cfg, "User", 256, &c->user, e) < 0 ||
		    opt_string(&d, cfg, "StopSignal", 32, &c->stop_signal, e) < 0)
			goto fail;
	}
	if (!diff_ids) {
		json_free(&d);
		return 0;
	}
	rootfs = json_get(&d, root, "rootfs");
	ids = rootfs && rootfs->type == JSON_OBJECT ? json_get(&d, rootfs, "diff_ids") : NULL;
	if (!ids || ids->type != JSON_ARRAY) {
		err_set(e, EINVAL, "configuration: rootfs.diff_ids: expected an array, found %s",
			ids ? json_type_name(ids->type) : "nothing");
		goto fail;
	}
	if (ids->n > IMAGE_LAYERS_MAX) {
		err_set(e, E2BIG, "configuration: %u layers, more than berth stacks (%d)", ids->n,
			IMAGE_LAYERS_MAX);
		goto fail;
	}
	for (el = json_first(&d, ids); el; el = json_next(&d, ids, el), i++) {
		char buf[IMAGE_DIGEST_SIZE + 64];

		if (json_string(&d, el, buf, sizeof(buf), e) < 0) {
			err_wrap(e, "configuration: rootfs.diff_ids[%zu]", i);
			goto fail;
		}
		if (!image_digest_valid(buf)) {
			err_set(e, EINVAL, "configuration: rootfs.diff_ids[%zu]: '%.80s' is not "
				"sha256:<64 hex digits>", i, buf);
			goto fail;
		}
		memcpy(diff_ids[i], buf, IMAGE_DIGEST_SIZE);
	}
	*n_diff_ids = i;
	json_free(&d);
	return 0;
fail:
	json_free(&d);
	image_config_free(c);
	return -e->code;
}
