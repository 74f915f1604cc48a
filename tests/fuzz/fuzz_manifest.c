/* fuzz_manifest.c - manifests, indexes and image configurations from
 * arbitrary bytes (what a registry or an archive may hand us): each parser
 * either fails with a message or gives values within their bounds (digests
 * well-formed, counts within IMAGE_LAYERS_MAX and IMAGE_INDEX_MAX, strings
 * NUL-terminated in their fields), and frees what it allocated. */
#include "runtime/image/image_int.h"

#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size);

static void check_str(const char *s, size_t size)
{
	if (!memchr(s, '\0', size))
		abort();
}

int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size)
{
	static struct image_manifest m;
	char ids[IMAGE_LAYERS_MAX][IMAGE_DIGEST_SIZE];
	const char *text = (const char *)data;
	struct image_index x;
	struct image_config c;
	struct err e;
	size_t n;
	int i;

	if (size > JSON_MAX_SIZE)
		return 0;
	image_manifest_media(text, size, NULL);
	image_manifest_media(text, size, "application/vnd.oci.image.index.v1+json; x=y");

	if (image_manifest_parse(text, size, &m, &e) == 0) {
		if (m.n_layers > IMAGE_LAYERS_MAX || !image_digest_valid(m.config_digest))
			abort();
		for (size_t k = 0; k < m.n_layers; k++)
			if (!image_digest_valid(m.layers[k].digest) || m.layers[k].diff_id[0])
				abort();
	} else if (!e.msg[0]) {
		abort();
	}

	if (image_index_parse(text, size, &x, &e) == 0) {
		if (x.n > IMAGE_INDEX_MAX)
			abort();
		for (size_t k = 0; k < x.n; k++) {
			if (!image_digest_valid(x.v[k].digest))
				abort();
			check_str(x.v[k].platform, sizeof(x.v[k].platform));
			check_str(x.v[k].ref_name, sizeof(x.v[k].ref_name));
			image_platform_match(image_platform(), x.v[k].platform);
		}
		i = image_index_select(&x, NULL, "fuzz", &e);
		if (i >= (int)x.n || (i < 0 && (i != -ENOENT || strncmp(e.msg, "no ", 3))))
			abort();
		image_index_free(&x);
	} else if (!e.msg[0] || x.v) {
		abort();
	}

	if (image_config_parse(text, size, &c, ids, &n, &e) == 0) {
		if (n > IMAGE_LAYERS_MAX)
			abort();
		for (size_t k = 0; k < n; k++)
			if (!image_digest_valid(ids[k]))
				abort();
		check_str(c.arch, sizeof(c.arch));
		check_str(c.os, sizeof(c.os));
		check_str(c.variant, sizeof(c.variant));
		for (char **p = c.env; p && *p; p++)
			(void)strlen(*p);
		image_config_free(&c);
	} else if (!e.msg[0] || c.env || c.cmd || c.workdir) {
		abort();
	}
	/* without diff_ids: the part a container runs from */
	if (image_config_parse(text, size, &c, NULL, NULL, &e) == 0)
		image_config_free(&c);
	return 0;
}
