/* images.c - the images table: which name points at which manifest. */
#include "store/internal.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int check_image(const struct store_image *i, struct err *e)
{
	if (!i->ref[0] || strlen(i->ref) >= STORE_REF_MAX)
		return err_set(e, EINVAL, "image name '%.40s' is empty or too long", i->ref);
	if (!i->digest[0] || !i->config_digest[0])
		return err_set(e, EINVAL, "image %s: no digest", i->ref);
	return 0;
}

static int bind_text(sqlite3_stmt *st, int i, const char *t)
{
	return sqlite3_bind_text(st, i, t ? t : "", -1, SQLITE_STATIC);
}

/* One statement of a transaction, bound with ref (1) and digest (2). */
static int step2(struct store *s, enum store_stmt id, const char *ref, const char *digest,
		 const char *what, struct err *e)
{
	sqlite3_stmt *st = store_stmt(s, id, e);

	if (!st)
		return -e->code;
	bind_text(st, 1, ref);
	bind_text(st, 2, digest);
	return store_exec_stmt(s, st, what, e);
}

int store_image_put(struct store *s, const struct store_image *i, struct err *e)
{
	STORE_ERR_LOCAL(e);
	sqlite3_stmt *st;

	if (check_image(i, e) < 0)
		return -e->code;
	if (store_begin(s, false, e) < 0)
		return -e->code;
	if (step2(s, ST_IMG_KEEP, i->ref, i->digest, "keep the replaced image", e) < 0 ||
	    step2(s, ST_IMG_UNNAMED_DEL, i->ref, i->digest, "name an unnamed image", e) < 0 ||
	    !(st = store_stmt(s, ST_IMG_PUT, e)))
		goto fail;
	bind_text(st, 1, i->ref);
	bind_text(st, 2, i->digest);
	bind_text(st, 3, i->config_digest);
	bind_text(st, 4, i->layers);
	sqlite3_bind_int64(st, 5, i->size);
	sqlite3_bind_int64(st, 6, i->created);
	sqlite3_bind_int64(st, 7, i->stored);
	if (store_exec_stmt(s, st, "store image", e) < 0)
		goto fail;
	return store_commit(s, e);
fail:
	store_rollback(s);
	return -e->code;
}

/* The row at st into out; layers duplicated (NULL and -ENOMEM on failure). */
static int image_read(sqlite3_stmt *st, struct store_image *out, struct err *e)
{
	const unsigned char *layers = sqlite3_column_text(st, 3);

	memset(out, 0, sizeof(*out));
	store_copy_text(out->ref, sizeof(out->ref), st, 0);
	store_copy_text(out->digest, sizeof(out->digest), st, 1);
	store_copy_text(out->config_digest, sizeof(out->config_digest), st, 2);
	out->size = sqlite3_column_int64(st, 4);
	out->created = sqlite3_column_int64(st, 5);
	out->stored = sqlite3_column_int64(st, 6);
	out->layers = strdup(layers ? (const char *)layers : "");
	return out->layers ? 0 : err_set(e, ENOMEM, "out of memory");
}

int store_image_get(struct store *s, const char *ref, struct store_image *out, struct err *e)
{
	STORE_ERR_LOCAL(e);
	sqlite3_stmt *st;
	int rc, ret;

	memset(out, 0, sizeof(*out));
	if (!(st = store_stmt(s, ST_IMG_GET, e)))
		return -e->code;
	bind_text(st, 1, ref);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW)
		ret = image_read(st, out, e);
	else if (rc == SQLITE_DONE)
		ret = err_set(e, ENOENT, "no image %s", ref);
	else
		ret = store_sqlerr(s, rc, "read image", e);
	sqlite3_reset(st);
	return ret;
}

int store_image_delete(struct store *s, const char *ref, struct err *e)
{
	STORE_ERR_LOCAL(e);
	sqlite3_stmt *st;
	int n;

	if (store_begin(s, false, e) < 0)
		return -e->code;
	if (!(st = store_stmt(s, ST_IMG_DEL, e))) {
		store_rollback(s);
		return -e->code;
	}
	bind_text(st, 1, ref);
	if (store_exec_stmt(s, st, "delete image", e) < 0) {
		store_rollback(s);
		return -e->code;
	}
	n = sqlite3_changes(s->db);
	if (store_commit(s, e) < 0)
		return -e->code;
	return n ? 0 : err_set(e, ENOENT, "no image %s", ref);
}

int store_image_list(struct store *s, store_image_fn *fn, void *ctx, struct err *e)
{
	STORE_ERR_LOCAL(e);
	ARRAY(struct store_image) r = { 0 };
	sqlite3_stmt *st;
	int rc, ret = 0;

	if (!(st = store_stmt(s, ST_IMG_LIST, e)))
		return -e->code;
	/* Collect first: fn may call back into the store. */
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		struct store_image *i = array_push(&r);

		if (!i) {
			err_set(e, ENOMEM, "out of memory");
			break;
		}
		if (image_read(st, i, e) < 0) {
			r.n--;
			break;
		}
	}
	sqlite3_reset(st);
	if (rc == SQLITE_ROW)
		ret = -e->code;
	else if (rc != SQLITE_DONE)
		ret = store_sqlerr(s, rc, "list images", e);
	for (size_t i = 0; i < r.n; i++) {
		if (ret == 0)
			ret = fn(ctx, &r.v[i]);
		free(r.v[i].layers);
	}
	array_free(&r);
	return ret;
}
