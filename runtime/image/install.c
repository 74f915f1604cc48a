/* install.c - one layer from its bytes to layers/HEX: unpacked under tmp/,
 * checked, renamed into place (apart from store.c, which the daemon's
 * side uses without the unpacker). */
#include "runtime/image/image_int.h"

#include <errno.h>
#include <limits.h>
#include <string.h>

int image_layer_install(const char *state_dir, struct image_src in, const char *what,
			const char *want_digest, const char *want_diff_id,
			const struct unpack_opts *uo, struct unpack_result *r, struct err *e)
{
	const char *layer = want_digest ? want_digest : want_diff_id;
	char dir[PATH_MAX];
	struct err ignore;
	int ret;

	memset(r, 0, sizeof(*r));
	if (image_tmp_dir(state_dir, "layer", dir, e) < 0) {
		image_err_full(e, state_dir);
		return err_wrap(e, "%s: layer %s: unpack", what, layer);
	}
	if ((ret = image_layer_unpack(in, dir, uo, r, e)) < 0) {
		/* bytes that are not the blob: that is the cause, not what the
		 * unpacker made of them */
		if (want_digest && r->digest[0] && strcmp(r->digest, want_digest)) {
			err_set(e, EBADMSG, "%s: layer %s: the blob's digest is %s, not %s", what,
				layer, r->digest, want_digest);
			ret = -EBADMSG;
			goto fail;
		}
		image_err_full(e, state_dir);
		ret = err_wrap(e, "%s: layer %s: unpack", what, layer);
		goto fail;
	}
	if (want_digest && strcmp(r->digest, want_digest)) {
		ret = err_set(e, EBADMSG, "%s: layer %s: the blob's digest is %s, not %s", what,
			      layer, r->digest, want_digest);
		goto fail;
	}
	if (strcmp(r->diff_id, want_diff_id)) {
		ret = err_set(e, EBADMSG, "%s: layer %s: its uncompressed digest is %s, not the "
			      "configuration's diff_id %s", what, layer, r->diff_id, want_diff_id);
		goto fail;
	}
	ret = image_layer_commit(state_dir, dir, want_diff_id, e);
	if (ret < 0) {
		image_err_full(e, state_dir);
		err_wrap(e, "%s: layer %s", what, layer);
		goto fail;
	}
	return ret;
fail:
	image_tree_delete(dir, &ignore);
	return ret;
}
