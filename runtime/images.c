/* images.c - the daemon's side of images (issue 21): the `image` requests,
 * and the containers that run from an image: a reconcile starts the pulls
 * they need (it never waits for one), their specs say "pulling 37%" until
 * the image is here, and the end of a pull starts them. */
#include "runtime/daemon_int.h"
#include "store/store.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

/* A failed pull a container waits for is tried again after 10 s, 20 s, ...
 * at most 5 min (each try already retried transient errors itself), and at
 * once by a reload: a gateway whose link comes back gets its containers
 * without anyone reloading. */
#define IMAGE_RETRY_FIRST_MS 10000
#define IMAGE_RETRY_MAX_MS 300000

static uint64_t retry_delay(unsigned fails)
{
	uint64_t ms = IMAGE_RETRY_FIRST_MS;

	while (fails-- > 1 && ms < IMAGE_RETRY_MAX_MS)
		ms *= 2;
	return ms < IMAGE_RETRY_MAX_MS ? ms : IMAGE_RETRY_MAX_MS;
}

/* The container's image reference, canonical; false when it has none (or
 * it is not one: the spec says so). */
static bool ctr_image_ref(const struct ctr *c, char *ref, size_t size)
{
	if (c->cfg->cni || !c->cfg->image)
		return false;
	return image_mgr_canonical(c->cfg->image, ref, size, NULL) == 0;
}

/* Does c want a pull of its image now: it is not here, or pull = always
 * and no pull of it has ended well since c's definition came. */
static bool needs_pull(struct daemon *d, const struct ctr *c, const char *ref,
		       const struct image_info **info)
{
	struct image_known *k = image_mgr_known(&d->images, ref);

	*info = image_mgr_get(&d->images, ref, NULL);
	if (!*info)
		return c->cfg->pull != PULL_NEVER;
	return c->cfg->pull == PULL_ALWAYS && k->pulled_ms < c->image_since_ms;
}

/* Arm the retry timer for the earliest failed pull a container waits for. */
static void schedule_retry(struct daemon *d)
{
	uint64_t now = loop_now_ms(), next = 0;
	char ref[IMAGE_REF_MAX];

	for (size_t i = 0; i < d->n_ctrs; i++) {
		const struct ctr *c = &d->ctrs[i];
		const struct image_info *info;
		struct image_known *k;
		uint64_t due;

		if (!ctr_image_ref(c, ref, sizeof(ref)) || image_mgr_active(&d->images, ref) ||
		    !needs_pull(d, c, ref, &info))
			continue;
		k = image_mgr_known(&d->images, ref);
		due = k->fails ? k->failed_ms + retry_delay(k->fails) : now;
		if (!next || due < next)
			next = due;
	}
	if (next)
		loop_timer_set(&d->loop, &d->image_retry, next > now ? next - now : 0);
	else
		loop_timer_cancel(&d->loop, &d->image_retry);
}

void images_prepare(struct daemon *d, struct ctr *c, bool now)
{
	const struct image_info *info;
	char ref[IMAGE_REF_MAX];
	struct image_known *k;
	struct err e = { 0 };

	if (!ctr_image_ref(c, ref, sizeof(ref)) || image_mgr_active(&d->images, ref) ||
	    !needs_pull(d, c, ref, &info))
		return;
	k = image_mgr_known(&d->images, ref);
	if (k->fails && !now && loop_now_ms() < k->failed_ms + retry_delay(k->fails))
		return;             /* the retry timer comes back for it */
	if (!image_mgr_pull(&d->images, ref, &e))
		daemon_log(d, LOG_ERROR, "container %s: %s", c->cfg->name, e.msg);
	else
		daemon_log(d, LOG_INFO, "container %s: pulling %s", c->cfg->name, ref);
}

static void on_retry(struct loop_timer *t)
{
	struct daemon *d = container_of(t, struct daemon, image_retry);

	if (d->exiting || !d->cfg)
		return;
	for (size_t i = 0; i < d->n_ctrs; i++)
		images_prepare(d, &d->ctrs[i], false);
	schedule_retry(d);
}

void images_spec(struct daemon *d, const struct ctr *c, struct ctr_spec *sp)
{
	const struct image_info *info;
	struct image_known *k;
	struct image_job *j;
	struct err e = { 0 };
	char ref[IMAGE_REF_MAX];

	if (image_mgr_canonical(c->cfg->image, ref, sizeof(ref), &e) < 0) {
		snprintf(d->image_blocked, sizeof(d->image_blocked), "%s", e.msg);
		sp->blocked = d->image_blocked;
		sp->blocked_status = "bad image reference";
		return;
	}
	if ((j = image_mgr_active(&d->images, ref))) {
		snprintf(d->image_status, sizeof(d->image_status), j->state == IMAGE_JOB_QUEUED ?
			 "pulling (queued)" : "pulling %d%%", image_job_percent(j));
		snprintf(d->image_blocked, sizeof(d->image_blocked), "its image %s is being pulled",
			 ref);
		sp->blocked = d->image_blocked;
		sp->blocked_status = d->image_status;
		sp->blocked_wait = true;
		return;
	}
	k = image_mgr_known(&d->images, ref);
	if (!needs_pull(d, c, ref, &info) && info) {
		sp->image = info;
		return;
	}
	sp->blocked = d->image_blocked;
	if (!info && c->cfg->pull == PULL_NEVER) {
		snprintf(d->image_blocked, sizeof(d->image_blocked),
			 "image %s is not here (pull = never)", c->cfg->image);
		sp->blocked_status = "image not here";
	} else if (k->fails) {
		uint64_t due = k->failed_ms + retry_delay(k->fails), now = loop_now_ms();

		snprintf(d->image_blocked, sizeof(d->image_blocked), "%s (next pull in %llus)",
			 k->error, (unsigned long long)(due > now ? (due - now + 999) / 1000 : 0));
		sp->blocked_status = "image pull failed";
	} else {
		snprintf(d->image_blocked, sizeof(d->image_blocked), info ?
			 "waiting for a pull of %s (pull = always)" : "its image %s is not here yet",
			 ref);
		sp->blocked_status = "pulling (queued)";
		sp->blocked_wait = true;
	}
}

/* A pull or an import ended: the containers that waited for an image start
 * (those running stay on what they run until their next start). */
static void on_job_done(void *ctx, const struct image_job *j)
{
	struct daemon *d = ctx;
	struct err e = { 0 };

	if (j->state == IMAGE_JOB_DONE && j->kind == IMAGE_JOB_PULL)
		daemon_log(d, LOG_INFO, "image pulled %s: %s (%zu layers, %zu new)", j->ref,
			   j->digest, j->n_layers, j->layers_new);
	else if (j->state == IMAGE_JOB_DONE)
		daemon_log(d, LOG_INFO, "image imported %s from %s: %s%s", j->image, j->ref, j->digest,
			   j->n_images > 1 ? " (and more)" : "");
	else
		daemon_log(d, LOG_ERROR, "image %s failed: %s", j->kind == IMAGE_JOB_PULL ?
			   "pull" : "import", j->error);
	if (d->exiting || !d->cfg)
		return;
	for (size_t i = 0; i < d->n_ctrs; i++) {
		const struct ctr *c = &d->ctrs[i];

		if (c->cfg->cni || !c->cfg->image || ctr_busy(&d->sup, c->cfg->name))
			continue;
		err_clear(&e);
		if (ctr_sync(&d->sup, c->cfg->name, &e) < 0)
			daemon_log(d, LOG_ERROR, "container %s: %s", c->cfg->name, e.msg);
	}
	schedule_retry(d);
	requests_on_ctr_change(d);
}

int images_init(struct daemon *d, struct err *e)
{
	if (image_dir_init(d->state_dir, e) < 0)
		return -1;
	if (image_mgr_init(&d->images, &d->loop, d->store, d->state_dir, e) < 0)
		return -1;
	d->images.on_done = on_job_done;
	d->images.ctx = d;
	d->image_retry.cb = on_retry;
	images_configure(d);
	return 0;
}

void images_configure(struct daemon *d)
{
	struct unpack_opts uo = { .allow_devices = d->cfg->images.allow_devices };

	image_mgr_configure(&d->images, d->cfg->images.ca, d->cfg->images.credentials, &uo);
}

void images_close(struct daemon *d)
{
	loop_timer_cancel(&d->loop, &d->image_retry);
	image_mgr_close(&d->images);
}

static void json_strv(struct buf *out, char *const *v);
static void json_str_or_null(struct buf *out, const char *s);

void images_inspect(struct daemon *d, const struct cfg_container *c, struct buf *out)
{
	static const char *const pulls[] = { [PULL_MISSING] = "missing", [PULL_ALWAYS] = "always",
					     [PULL_NEVER] = "never" };
	const struct image_info *i = NULL;
	char ref[IMAGE_REF_MAX];

	if (!c->image) {
		buf_puts(out, "null");
		return;
	}
	if (image_mgr_canonical(c->image, ref, sizeof(ref), NULL) == 0)
		i = image_mgr_get(&d->images, ref, NULL);
	buf_puts(out, "{\"ref\":");
	buf_json_string(out, c->image);
	buf_printf(out, ",\"pull\":\"%s\",\"read_only\":%s,\"digest\":", pulls[c->pull],
		   c->read_only ? "true" : "false");
	json_str_or_null(out, i ? i->digest : NULL);
	buf_puts(out, ",\"exposed_ports\":");
	json_strv(out, i ? i->config.exposed : NULL);
	buf_puts(out, ",\"stop_signal\":");
	json_str_or_null(out, i ? i->config.stop_signal : NULL);
	buf_puts(out, "}");
}

/* ---- the requests ------------------------------------------------------------ */

/* The configured containers whose image is ref (by name), or whose image
 * as loaded has digest (a name since moved to another image). */
static void users_of(struct daemon *d, const char *ref, const char *digest,
		     void (*fn)(void *ctx, const char *name), void *ctx)
{
	char r[IMAGE_REF_MAX];

	for (size_t i = 0; i < d->n_ctrs; i++) {
		const struct ctr *c = &d->ctrs[i];
		const struct image_known *k;

		if (!ctr_image_ref(c, r, sizeof(r)))
			continue;
		k = image_mgr_known(&d->images, r);
		if (!strcmp(r, ref) || (digest && k->info && !strcmp(k->info->digest, digest)))
			fn(ctx, c->cfg->name);
	}
}

/* What the containers with a process run from: each one's overlay layers
 * as its spec file has them (the spec of its current start). A name may
 * since point at another image, or the container may be gone from the
 * configuration while it stops: what its process has mounted is used all
 * the same. */
struct running {
	ARRAY(struct running_one { char name[STORE_NAME_MAX]; char *layers; }) v;
	struct daemon *d;
};

static void running_add(void *ctx, const char *name)
{
	struct running *rn = ctx;
	struct running_one *one;
	char path[4096], *text;
	size_t len;
	FILE *f;

	snprintf(path, sizeof(path), "%s/ctr/%s/spec", rn->d->state_dir, name);
	if (!(f = fopen(path, "re")))
		return;
	text = malloc(CONFIG_FILE_MAX + 1);
	if (!text)
		abort();
	len = fread(text, 1, CONFIG_FILE_MAX, f);
	fclose(f);
	text[len] = '\0';
	/* NUL-terminated records: "layers=HEX:HEX:..." */
	for (size_t off = 0; off < len; off += strlen(text + off) + 1)
		if (!strncmp(text + off, "layers=", 7)) {
			if (!(one = array_push(&rn->v)) || !(one->layers = strdup(text + off + 7)))
				abort();
			snprintf(one->name, sizeof(one->name), "%s", name);
			break;
		}
	free(text);
}

static void running_collect(struct daemon *d, struct running *rn)
{
	memset(rn, 0, sizeof(*rn));
	rn->d = d;
	for (size_t i = 0; i < d->n_ctrs; i++)
		if (!d->ctrs[i].cfg->cni && !ctr_stopping(&d->sup, d->ctrs[i].cfg->name) &&
		    ctr_busy(&d->sup, d->ctrs[i].cfg->name))
			running_add(rn, d->ctrs[i].cfg->name);
	ctr_each_stopping(&d->sup, running_add, rn);
}

static void running_free(struct running *rn)
{
	for (size_t i = 0; i < rn->v.n; i++)
		free(rn->v.v[i].layers);
	array_free(&rn->v);
}

/* The container whose process runs from i's layers, or NULL. */
static const char *running_user(const struct running *rn, const struct image_info *i)
{
	const char *who = NULL;
	struct buf lower;

	buf_init(&lower);
	if (image_lowerdirs(i, &lower, NULL) == 0) {
		buf_append(&lower, "", 1);
		for (size_t k = 0; k < rn->v.n && !who; k++)
			if (!strcmp(rn->v.v[k].layers, lower.data))
				who = rn->v.v[k].name;
	}
	buf_free(&lower);
	return who;
}

struct like_ctx {
	const struct image_info *i;
	const char *lower;
	bool found;
};

static int like_one(void *ctx, const struct image_info *j)
{
	struct like_ctx *lc = ctx;
	struct buf lower;

	if (lc->found || !strcmp(j->ref, lc->i->ref))
		return 0;
	buf_init(&lower);
	if (image_lowerdirs(j, &lower, NULL) == 0) {
		buf_append(&lower, "", 1);
		lc->found = !strcmp(lower.data, lc->lower);
	}
	buf_free(&lower);
	return 0;
}

/* Has an image other than i (by name) the very layers of i? */
static bool other_image_like(struct daemon *d, const struct image_info *i)
{
	struct like_ctx lc = { i, NULL, false };
	struct buf lower;

	buf_init(&lower);
	if (image_lowerdirs(i, &lower, NULL) == 0) {
		buf_append(&lower, "", 1);
		lc.lower = lower.data;
		image_list(d->store, d->state_dir, like_one, &lc, NULL);
	}
	buf_free(&lower);
	return lc.found;
}

static void count_user(void *ctx, const char *name)
{
	(void)name;
	(*(size_t *)ctx)++;
}

static void first_user(void *ctx, const char *name)
{
	const char **first = ctx;

	if (!*first)
		*first = name;
}

static void json_user(void *ctx, const char *name)
{
	struct buf *out = ctx;

	buf_puts(out, out->data[out->len - 1] == '[' ? "" : ",");
	buf_json_string(out, name);
}

static void text_user(void *ctx, const char *name)
{
	struct buf *b = ctx;

	buf_printf(b, "%s%s", b->len ? "," : "", name);
}

static void fmt_size(char *buf, size_t size, uint64_t n)
{
	if (n >= 1000000000)
		snprintf(buf, size, "%.1f GB", (double)n / 1e9);
	else if (n >= 1000000)
		snprintf(buf, size, "%.1f MB", (double)n / 1e6);
	else if (n >= 1000)
		snprintf(buf, size, "%.1f kB", (double)n / 1e3);
	else
		snprintf(buf, size, "%llu B", (unsigned long long)n);
}

static void fmt_time(char *buf, size_t size, int64_t t)
{
	struct tm tm;
	time_t tt = (time_t)t;

	if (!t || !gmtime_r(&tt, &tm))
		snprintf(buf, size, "-");
	else
		strftime(buf, size, "%Y-%m-%d %H:%M", &tm);
}

static void json_strv(struct buf *out, char *const *v)
{
	if (!v) {
		buf_puts(out, "null");
		return;
	}
	buf_puts(out, "[");
	for (size_t i = 0; v[i]; i++) {
		buf_puts(out, i ? "," : "");
		buf_json_string(out, v[i]);
	}
	buf_puts(out, "]");
}

static void json_str_or_null(struct buf *out, const char *s)
{
	if (s && *s)
		buf_json_string(out, s);
	else
		buf_puts(out, "null");
}

static void job_json(struct buf *out, const struct image_job *j)
{
	buf_printf(out, "{\"job\":%u,\"kind\":\"%s\",\"ref\":", j->id,
		   j->kind == IMAGE_JOB_PULL ? "pull" : "import");
	buf_json_string(out, j->ref);
	buf_puts(out, ",\"name\":");
	json_str_or_null(out, j->name);
	buf_printf(out, ",\"state\":\"%s\",\"percent\":%d,\"done\":%llu,\"total\":%llu,\"error\":",
		   image_job_state_name(j), image_job_percent(j),
		   (unsigned long long)image_job_bytes(j),
		   (unsigned long long)atomic_load(&j->progress.total));
	json_str_or_null(out, j->state == IMAGE_JOB_FAILED ? j->error : NULL);
	buf_puts(out, ",\"image\":");
	json_str_or_null(out, j->image);
	buf_puts(out, ",\"digest\":");
	json_str_or_null(out, j->digest);
	buf_printf(out, ",\"images\":%zu,\"layers\":%zu,\"layers_new\":%zu,\"bytes_written\":%llu}\n",
		   j->n_images, j->n_layers, j->layers_new, (unsigned long long)j->bytes_written);
}

static void job_text(struct buf *out, const struct image_job *j)
{
	static const char *const cols[] = { "KEY", "VALUE" };
	char v[5][64];
	struct table t;

	table_init(&t, 2, cols);
	snprintf(v[0], sizeof(v[0]), "%u", j->id);
	table_add(&t, "job", v[0]);
	table_add(&t, "kind", j->kind == IMAGE_JOB_PULL ? "pull" : "import");
	table_add(&t, "ref", j->ref);
	if (j->name[0])
		table_add(&t, "name", j->name);
	table_add(&t, "state", image_job_state_name(j));
	snprintf(v[1], sizeof(v[1]), "%d%%", image_job_percent(j));
	table_add(&t, "percent", v[1]);
	snprintf(v[2], sizeof(v[2]), "%llu", (unsigned long long)image_job_bytes(j));
	table_add(&t, "done", v[2]);
	snprintf(v[3], sizeof(v[3]), "%llu", (unsigned long long)atomic_load(&j->progress.total));
	table_add(&t, "total", v[3]);
	if (j->state == IMAGE_JOB_FAILED)
		table_add(&t, "error", j->error);
	if (j->image[0])
		table_add(&t, "image", j->image);
	if (j->digest[0])
		table_add(&t, "digest", j->digest);
	if (j->state == IMAGE_JOB_DONE) {
		snprintf(v[4], sizeof(v[4]), "%zu (%zu new)", j->n_layers, j->layers_new);
		table_add(&t, "layers", v[4]);
	}
	table_render(&t, false, out);
	table_free(&t);
}

static int req_pull(struct daemon *d, const struct ctl_request *rq, struct buf *out,
		    struct err *e)
{
	struct image_job *j;

	if (rq->argc != 3)
		return err_set(e, EINVAL, "usage: berth image pull REF");
	if (!(j = image_mgr_pull(&d->images, rq->argv[2], e)))
		return -1;
	if (rq->json)
		job_json(out, j);
	else
		job_text(out, j);
	return 0;
}

static int req_import(struct daemon *d, const struct ctl_request *rq, struct buf *out,
		      struct err *e)
{
	const char *name = NULL;
	struct image_job *j;

	if (rq->argc == 5 && !strcmp(rq->argv[3], "--name"))
		name = rq->argv[4];
	else if (rq->argc != 3)
		return err_set(e, EINVAL, "usage: berth image import PATH [--name REF]");
	if (!(j = image_mgr_import(&d->images, rq->argv[2], name, e)))
		return -1;
	if (rq->json)
		job_json(out, j);
	else
		job_text(out, j);
	return 0;
}

static int req_status(struct daemon *d, const struct ctl_request *rq, struct buf *out,
		      struct err *e)
{
	const struct image_job *j;

	if (rq->argc != 3)
		return err_set(e, EINVAL, "usage: berth image status REF|JOB");
	if (!(j = image_mgr_job(&d->images, rq->argv[2])))
		return err_set(e, ENOENT, "no image job for '%s'", rq->argv[2]);
	if (rq->json)
		job_json(out, j);
	else
		job_text(out, j);
	return 0;
}

struct ls_ctx {
	struct daemon *d;
	struct table *t;
	struct buf *json;           /* -o json: the array, from start on */
	size_t start;
};

static int ls_row(void *ctx, const struct image_info *i)
{
	struct ls_ctx *lc = ctx;
	char size[32], created[32], digest[24];
	struct buf users;

	buf_init(&users);
	users_of(lc->d, i->ref, i->digest, text_user, &users);
	if (lc->json) {
		struct buf *out = lc->json;

		buf_puts(out, out->len > lc->start + 1 ? ",{\"ref\":" : "{\"ref\":");
		json_str_or_null(out, i->ref);
		buf_puts(out, ",\"digest\":");
		buf_json_string(out, i->digest);
		buf_printf(out, ",\"size\":%llu,\"created_at\":", (unsigned long long)i->size);
		buf_json_time(out, i->created);
		buf_puts(out, ",\"stored_at\":");
		buf_json_time(out, i->stored);
		buf_printf(out, ",\"layers\":%zu,\"state\":\"stored\",\"percent\":null,"
			   "\"containers\":[", i->n_layers);
		users_of(lc->d, i->ref, i->digest, json_user, out);
		buf_puts(out, "]}");
	} else {
		fmt_size(size, sizeof(size), i->size);
		fmt_time(created, sizeof(created), i->created);
		/* "sha256:" and 12 hex digits, as docker shows an id */
		snprintf(digest, sizeof(digest), "%.19s", i->digest);
		table_add(lc->t, i->ref[0] ? i->ref : "<none>", digest, size, created,
			  users.len ? "in use" : "-", users.data);
	}
	buf_free(&users);
	return 0;
}

static int req_ls(struct daemon *d, const struct ctl_request *rq, struct buf *out, struct err *e)
{
	static const char *const cols[] = { "IMAGE", "DIGEST", "SIZE", "CREATED", "STATUS",
					    "CONTAINERS" };
	struct table t;
	size_t start = out->len;
	struct ls_ctx lc = { d, &t, rq->json ? out : NULL, start };
	int ret;

	if (rq->argc != 2)
		return err_set(e, EINVAL, "usage: berth image ls");
	table_init(&t, 6, cols);
	if (rq->json)
		buf_puts(out, "[");
	ret = image_list(d->store, d->state_dir, ls_row, &lc, e);
	/* pulls under way: what `ps` says of the containers waiting for them */
	for (const struct image_job *j = d->images.jobs; ret >= 0 && j; j = j->next) {
		char st[32];

		if (j->state != IMAGE_JOB_QUEUED && j->state != IMAGE_JOB_RUNNING)
			continue;
		snprintf(st, sizeof(st), j->state == IMAGE_JOB_QUEUED ? "%s queued" : "%s %d%%",
			 j->kind == IMAGE_JOB_PULL ? "pulling" : "importing", image_job_percent(j));
		if (rq->json) {
			buf_puts(out, out->len > start + 1 ? ",{\"ref\":" : "{\"ref\":");
			buf_json_string(out, j->ref);
			buf_printf(out, ",\"digest\":null,\"size\":null,\"created_at\":null,\"stored_at\":null,"
				   "\"layers\":null,\"state\":\"%s\",\"percent\":%d,\"containers\":[]}",
				   j->kind == IMAGE_JOB_PULL ? "pulling" : "importing",
				   image_job_percent(j));
		} else {
			table_add(&t, j->ref, NULL, NULL, NULL, st, NULL);
		}
	}
	if (ret < 0) {
		out->len = start;
	} else if (rq->json) {
		buf_puts(out, "]\n");
	} else {
		table_render(&t, false, out);
	}
	table_free(&t);
	return ret < 0 ? -1 : 0;
}

static int req_inspect(struct daemon *d, const struct ctl_request *rq, struct buf *out,
		       struct err *e)
{
	struct image_info i = { 0 };
	const struct image_config *c = &i.config;
	char ref[IMAGE_REF_MAX];

	if (rq->argc != 3)
		return err_set(e, EINVAL, "usage: berth image inspect REF");
	if (image_mgr_canonical(rq->argv[2], ref, sizeof(ref), e) < 0)
		return -1;
	if (image_lookup(d->store, d->state_dir, ref, &i, e) < 0)
		return -1;
	/* one JSON document, as a container's inspect */
	buf_puts(out, "{\"ref\":");
	buf_json_string(out, i.ref);
	buf_puts(out, ",\"digest\":");
	buf_json_string(out, i.digest);
	buf_puts(out, ",\"config_digest\":");
	buf_json_string(out, i.config_digest);
	buf_printf(out, ",\"size\":%llu,\"created_at\":", (unsigned long long)i.size);
	buf_json_time(out, i.created);
	buf_puts(out, ",\"stored_at\":");
	buf_json_time(out, i.stored);
	buf_puts(out, ",\"layers\":[");
	for (size_t k = 0; k < i.n_layers; k++) {
		buf_puts(out, k ? ",{\"digest\":" : "{\"digest\":");
		buf_json_string(out, i.layers[k].digest);
		buf_puts(out, ",\"diff_id\":");
		buf_json_string(out, i.layers[k].diff_id);
		buf_printf(out, ",\"size\":%llu}", (unsigned long long)i.layers[k].size);
	}
	buf_puts(out, "],\"entrypoint\":");
	json_strv(out, c->entrypoint);
	buf_puts(out, ",\"cmd\":");
	json_strv(out, c->cmd);
	buf_puts(out, ",\"env\":");
	json_strv(out, c->env);
	buf_puts(out, ",\"workdir\":");
	json_str_or_null(out, c->workdir);
	buf_puts(out, ",\"user\":");
	json_str_or_null(out, c->user);
	buf_puts(out, ",\"stop_signal\":");
	json_str_or_null(out, c->stop_signal);
	buf_puts(out, ",\"exposed_ports\":");
	json_strv(out, c->exposed);
	buf_puts(out, ",\"os\":");
	json_str_or_null(out, c->os);
	buf_puts(out, ",\"architecture\":");
	json_str_or_null(out, c->arch);
	buf_puts(out, ",\"variant\":");
	json_str_or_null(out, c->variant);
	buf_puts(out, ",\"containers\":[");
	users_of(d, i.ref, i.digest, json_user, out);
	buf_puts(out, "]}\n");
	image_info_free(&i);
	return 0;
}

#define JOBS_RUNNING_MSG "image jobs running: try again when they finish"

static int req_rm(struct daemon *d, const struct ctl_request *rq, struct buf *out, struct err *e)
{
	struct image_info i = { 0 };
	const char *user = NULL;
	char ref[IMAGE_REF_MAX];
	struct running rn;
	struct buf ev;

	if (rq->argc != 3)
		return err_set(e, EINVAL, "usage: berth image rm REF");
	if (image_mgr_busy(&d->images))
		return err_set(e, EBUSY, JOBS_RUNNING_MSG);
	if (image_mgr_canonical(rq->argv[2], ref, sizeof(ref), e) < 0)
		return -1;
	if (image_lookup(d->store, d->state_dir, ref, &i, e) < 0)
		return -1;
	users_of(d, ref, NULL, first_user, &user);
	if (user) {
		image_info_free(&i);
		return err_set(e, EBUSY, "image %s is used by container %s", ref, user);
	}
	/* a container whose name has moved on to another image (by the digest
	 * it was loaded with, or the layers its process runs from) loses them
	 * only when no other name has the very same layers */
	running_collect(d, &rn);
	if (!other_image_like(d, &i)) {
		users_of(d, "", i.digest, first_user, &user);
		if (user)
			err_set(e, EBUSY, "image %s is used by container %s", ref, user);
		else if ((user = running_user(&rn, &i)))
			err_set(e, EBUSY, "image %s is used by container %s (its process runs from it)",
				ref, user);
	}
	running_free(&rn);
	image_info_free(&i);
	if (user)
		return -EBUSY;
	if (image_remove(d->store, d->state_dir, ref, e) < 0)
		return -1;
	image_mgr_forget(&d->images, NULL);
	buf_init(&ev);
	buf_printf(&ev, "image removed %s", ref);
	daemon_event(d, "image", "removed", ref, NULL, "%s", ev.data);
	buf_free(&ev);
	if (rq->json) {
		buf_puts(out, "{\"removed\":");
		buf_json_string(out, ref);
		buf_puts(out, "}\n");
	} else {
		buf_printf(out, "removed %s\n", ref);
	}
	return 0;
}

struct prune_ctx {
	struct daemon *d;
	struct running rn;
};

static bool prune_in_use(void *ctx, const struct image_info *i)
{
	struct prune_ctx *pc = ctx;
	size_t n = 0;

	users_of(pc->d, i->ref, i->digest, count_user, &n);
	return n > 0 || running_user(&pc->rn, i);
}

static int req_prune(struct daemon *d, const struct ctl_request *rq, struct buf *out,
		     struct err *e)
{
	bool all = rq->argc == 3 && !strcmp(rq->argv[2], "--all");
	char size[32], msg[96];
	struct prune_ctx pc;
	int64_t freed;

	if (rq->argc != 2 && !all)
		return err_set(e, EINVAL, "usage: berth image prune [--all]");
	if (image_mgr_busy(&d->images))
		return err_set(e, EBUSY, JOBS_RUNNING_MSG);
	/* the containers' images as loaded: a replaced one in use stays */
	for (size_t k = 0; k < d->n_ctrs; k++) {
		char ref[IMAGE_REF_MAX];

		if (ctr_image_ref(&d->ctrs[k], ref, sizeof(ref)))
			image_mgr_get(&d->images, ref, NULL);
	}
	pc.d = d;
	running_collect(d, &pc.rn);
	freed = image_prune(d->store, d->state_dir, all, prune_in_use, &pc, e);
	running_free(&pc.rn);
	if (freed < 0)
		return -1;
	image_mgr_forget(&d->images, NULL);
	fmt_size(size, sizeof(size), (uint64_t)freed);
	snprintf(msg, sizeof(msg), "image prune%s freed %s", all ? " --all" : "", size);
	daemon_event(d, "image", "pruned", NULL, NULL, "%s", msg);
	if (rq->json)
		buf_printf(out, "{\"freed\":%lld}\n", (long long)freed);
	else
		buf_printf(out, "freed %s\n", size);
	return 0;
}

int req_image(struct daemon *d, const struct ctl_request *rq, struct buf *out, struct err *e)
{
	static const struct {
		const char *name;
		ctl_command_fn *run;
	} subs[] = {
		{ "pull", req_pull }, { "import", req_import }, { "status", req_status },
		{ "ls", req_ls }, { "inspect", req_inspect }, { "rm", req_rm },
		{ "prune", req_prune },
	};

	for (size_t i = 0; rq->argc > 1 && i < ARRAY_SIZE(subs); i++)
		if (!strcmp(rq->argv[1], subs[i].name))
			return subs[i].run(d, rq, out, e);
	return err_set(e, EINVAL, "usage: berth image pull REF | import PATH [--name REF] | "
		       "status REF|JOB | ls | inspect REF | rm REF | prune [--all]");
}
