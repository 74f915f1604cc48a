/* test_image_mgr.c - the daemon's image manager (runtime/image/mgr.c) on its
 * own: the pulls and imports below it are stand-ins defined here (a pull
 * blocks until the test lets it end, or until it is cancelled), so what is
 * checked is the manager's part: two jobs at once and the rest queued, a
 * second pull of a reference joining the first, the end reported through
 * the loop, the images recorded with their event, failures remembered,
 * the cache, and an exit that cancels and joins instead of hanging. */
#include "runtime/image/image_int.h"
#include "store/store.h"
#include "t.h"

#include <errno.h>
#include <pthread.h>
#include <string.h>
#include <unistd.h>

/* ---- stand-ins for the layers below the manager --------------------------- */

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static char released[8][IMAGE_REF_MAX];    /* pulls allowed to end */
static size_t n_released;
static int running, max_running;
static char recorded[8][IMAGE_REF_MAX];
static size_t n_recorded;
static struct buf events;

static bool is_released(const char *ref)
{
	for (size_t i = 0; i < n_released; i++)
		if (!strcmp(released[i], ref))
			return true;
	return false;
}

static void release(const char *ref)
{
	pthread_mutex_lock(&mu);
	snprintf(released[n_released++], IMAGE_REF_MAX, "%s", ref);
	pthread_mutex_unlock(&mu);
}

static void fill_result(const char *ref, struct image_result *out)
{
	struct image_info *i = calloc(1, sizeof(*i));

	snprintf(i->ref, sizeof(i->ref), "%s", ref);
	snprintf(i->digest, sizeof(i->digest), "sha256:%064d", 1);
	i->n_layers = 2;
	out->images = i;
	out->n_images = 1;
	out->layers_new = 1;
	out->layers_shared = 1;
	out->bytes_written = 2500000;
}

static int work(const char *ref, struct image_progress *p, struct image_result *out,
		struct err *e)
{
	pthread_mutex_lock(&mu);
	if (++running > max_running)
		max_running = running;
	pthread_mutex_unlock(&mu);
	atomic_store(&p->step, IMAGE_STEP_FETCH);
	atomic_store(&p->total, 100);
	atomic_store(&p->done, 37);
	for (;;) {
		bool go;

		pthread_mutex_lock(&mu);
		go = is_released(ref);
		pthread_mutex_unlock(&mu);
		if (go || atomic_load(&p->cancel))
			break;
		usleep(2000);
	}
	pthread_mutex_lock(&mu);
	running--;
	pthread_mutex_unlock(&mu);
	if (atomic_load(&p->cancel))
		return err_set(e, ECANCELED, "%s: cancelled", ref);
	if (strstr(ref, "bad"))
		return err_set(e, ENOENT, "%s: manifest: HTTP 404 (manifest unknown)", ref);
	if (strstr(ref, "mute"))        /* an error that does not name the image */
		return err_set(e, EIO, "manifest: HTTP 500 (internal server error)");
	fill_result(ref, out);
	return 0;
}

int image_pull(const char *state_dir, const char *ref, const struct registry_opts *o,
	       const struct unpack_opts *uo, struct image_progress *p, struct image_result *out,
	       struct err *e)
{
	(void)state_dir;
	if (!o->cancel || o->cancel != &p->cancel)
		return err_set(e, EINVAL, "the registry options do not carry the cancel flag");
	if (!uo || !uo->allow_devices)
		return err_set(e, EINVAL, "the unpack options do not carry allow_devices");
	return work(ref, p, out, e);
}

int image_import(const char *state_dir, const char *path, const char *name,
		 const struct unpack_opts *uo, struct image_progress *p, struct image_result *out,
		 struct err *e)
{
	(void)state_dir;
	if (!uo || !uo->allow_devices)
		return err_set(e, EINVAL, "the unpack options do not carry allow_devices");
	return work(name ? name : path, p, out, e);
}

int image_record(struct store *st, const struct image_info *i, struct err *e)
{
	(void)st, (void)e;
	snprintf(recorded[n_recorded++], IMAGE_REF_MAX, "%s", i->ref);
	return 0;
}

int image_lookup(struct store *st, const char *state_dir, const char *ref, struct image_info *i,
		 struct err *e)
{
	(void)st, (void)state_dir;
	for (size_t k = 0; k < n_recorded; k++)
		if (!strcmp(recorded[k], ref)) {
			memset(i, 0, sizeof(*i));
			snprintf(i->ref, sizeof(i->ref), "%s", ref);
			snprintf(i->digest, sizeof(i->digest), "sha256:%064d", 1);
			return 0;
		}
	return err_set(e, ENOENT, "image %s is not here: pull it", ref);
}

void image_info_free(struct image_info *i)
{
	free(i->layers);
	i->layers = NULL;
}

void image_result_free(struct image_result *r)
{
	for (size_t i = 0; i < r->n_images; i++)
		image_info_free(&r->images[i]);
	free(r->images);
	r->images = NULL;
	r->n_images = 0;
}

const char *image_platform(void)
{
	return "linux/amd64";
}

/* "app" -> "reg.test/app:latest"; a space is not a reference */
int image_ref_parse(const char *s, struct image_ref *r, struct err *e)
{
	const char *slash = strrchr(s, '/'), *colon = strrchr(s, ':');

	memset(r, 0, sizeof(*r));
	if (!*s || strchr(s, ' '))
		return err_set(e, EINVAL, "'%s' is not an image reference", s);
	snprintf(r->registry, sizeof(r->registry), "reg.test");
	if (colon && (!slash || colon > slash)) {
		snprintf(r->repo, sizeof(r->repo), "%.*s", (int)(colon - s), s);
		snprintf(r->tag, sizeof(r->tag), "%s", colon + 1);
	} else {
		snprintf(r->repo, sizeof(r->repo), "%s", s);
		snprintf(r->tag, sizeof(r->tag), "latest");
	}
	if (!strncmp(r->repo, "reg.test/", 9))
		memmove(r->repo, r->repo + 9, strlen(r->repo + 9) + 1);
	return 0;
}

void image_ref_format(const struct image_ref *r, char *buf, size_t size)
{
	snprintf(buf, size, "%s/%s:%s", r->registry, r->repo, r->tag);
}

int64_t store_event_put(struct store *s, const struct store_event *ev, struct err *e)
{
	(void)s, (void)e;
	buf_printf(&events, "%s %s %s\n", ev->type, ev->action, ev->message);
	return 1;
}

/* ---- the tests ---------------------------------------------------------------- */

static const struct image_job *done_jobs[8];
static size_t n_done;

static void on_done(void *ctx, const struct image_job *j)
{
	(void)ctx;
	done_jobs[n_done++] = j;
}

/* Run the loop until n jobs have ended (at most ~5 s). */
static void run_until(struct loop *l, size_t n)
{
	for (int i = 0; i < 500 && n_done < n; i++)
		loop_run_once(l, 10);
}

int main(void)
{
	struct image_mgr m;
	struct loop l;
	struct err e = { 0 };
	struct image_job *a, *b, *c, *a2, *bad, *imp;
	const struct image_known *k;
	uint64_t t0;

	buf_init(&events);
	T_OK(loop_init(&l, &e) == 0, "a loop");
	T_OK(image_mgr_init(&m, &l, (struct store *)&events, "/nonexistent", &e) == 0, "the manager is set up");
	m.on_done = on_done;
	image_mgr_configure(&m, "/etc/ca.pem", NULL, &(struct unpack_opts){ .allow_devices = true });

	a = image_mgr_pull(&m, "app:1", &e);
	b = image_mgr_pull(&m, "reg.test/base", &e);
	c = image_mgr_pull(&m, "bad", &e);
	T_OK(a && b && c, "three pulls are accepted");
	T_STREQ(a->ref, "reg.test/app:1", "a job names its reference in canonical form");
	T_STREQ(a->ca, "/etc/ca.pem", "and carries its own copy of the registry options");
	T_OK(a->ropts.auth_file == NULL, "no credentials file: none passed");
	T_OK(a->unpack.allow_devices, "and the unpack options ([images] allow_devices)");
	T_OK(a->state == IMAGE_JOB_RUNNING && b->state == IMAGE_JOB_RUNNING,
	     "the first two run at once");
	T_STREQ(image_job_state_name(c), "queued", "the third waits its turn");
	T_OK(image_mgr_busy(&m), "the manager says it is busy");
	a2 = image_mgr_pull(&m, "reg.test/app:1", &e);
	T_OK(a2 == a, "a second pull of the same reference joins the first");
	T_OK(image_mgr_active(&m, "reg.test/app:1") == a, "and it is the reference's active pull");
	T_OK(!image_mgr_pull(&m, "not a ref", &e), "a bad reference is refused at once");
	T_OK(strstr(e.msg, "not an image reference") != NULL, "with the parser's reason: %s", e.msg);
	usleep(50000);
	T_STREQ(image_job_state_name(a), "fetching", "a running pull says where it is");
	T_EQ(image_job_percent(a), 37, "and how far, from its progress");

	release("reg.test/app:1");
	run_until(&l, 1);
	T_EQ(n_done, 1, "the end of a pull reaches the loop");
	T_OK(done_jobs[0] == a && a->state == IMAGE_JOB_DONE, "it is done");
	T_EQ(image_job_percent(a), 100, "at 100%%");
	T_STREQ(a->digest, "sha256:0000000000000000000000000000000000000000000000000000000000000001",
		"with the digest of what was recorded");
	T_EQ(n_recorded, 1, "its image was recorded by the loop's thread");
	T_OK(strstr(events.data, "image pull image pulled reg.test/app:1 sha256:") != NULL &&
	     strstr(events.data, "(2 layers, 1 new, 2.5 MB written)") != NULL,
	     "an event says what came");
	T_OK(c->state == IMAGE_JOB_RUNNING, "the queued pull started once a slot was free");
	T_EQ(max_running, 2, "never more than two ran at once");
	k = image_mgr_known(&m, "reg.test/app:1");
	T_OK(k->pulled_ms > 0 && k->fails == 0, "the reference remembers its last good pull");
	T_OK(image_mgr_get(&m, "reg.test/app:1", &e) != NULL, "its image is found (and cached)");
	T_OK(image_mgr_get(&m, "reg.test/other:1", &e) == NULL && e.code == ENOENT,
	     "an image that is not here is -ENOENT");
	T_OK(image_mgr_job(&m, "1") == a, "a job is found by its id");
	T_OK(image_mgr_job(&m, "app:1") == a, "or by its reference as the user wrote it");

	release("reg.test/bad:latest");
	run_until(&l, 2);
	T_OK(c->state == IMAGE_JOB_FAILED, "a pull that fails is failed");
	T_STREQ(c->error, "reg.test/bad:latest: manifest: HTTP 404 (manifest unknown)",
		"with the pull's own message");
	T_OK(strstr(events.data, "image pull failed: reg.test/bad:latest: manifest: HTTP 404 (manifest unknown)"),
	     "and an event naming the image once: %s", strstr(events.data, "image pull failed"));
	{
		/* the failure's line alone (other events name the image too) */
		const char *f = strstr(events.data, "image pull failed: reg.test/bad:latest");
		const char *first = f ? strstr(f, "reg.test/bad:latest") : NULL;
		const char *again = first ? strstr(first + 1, "reg.test/bad:latest") : NULL;

		T_OK(f && (!again || again > strchr(f, '\n')), "(only once)");
	}
	T_OK(strstr(events.data, "image pull image pull started: reg.test/bad:latest\n") != NULL,
	     "the start of each pull is an event too");
	k = image_mgr_known(&m, "reg.test/bad:latest");
	T_OK(k->fails == 1 && !strcmp(k->error, c->error), "the reference counts the failure");
	T_OK(image_mgr_get(&m, "reg.test/bad:latest", &e) == NULL, "nothing of it is in the store");

	c = image_mgr_pull(&m, "mute", &e);
	release("reg.test/mute:latest");
	run_until(&l, 3);
	T_STREQ(c ? c->error : "", "reg.test/mute:latest: manifest: HTTP 500 (internal server error)",
		"an error that does not name the image gets its name in front");
	T_OK(strstr(events.data, "image pull failed: reg.test/mute:latest: manifest: HTTP 500"),
	     "in the event too");

	imp = image_mgr_import(&m, "relative.tar", NULL, &e);
	T_OK(!imp && strstr(e.msg, "absolute"), "an import needs an absolute path");
	imp = image_mgr_import(&m, "/tmp/x.tar", "imported:2", &e);
	T_OK(imp && imp->kind == IMAGE_JOB_IMPORT && !strcmp(imp->name, "reg.test/imported:2"),
	     "an import is a job too, its name canonical");
	release("reg.test/imported:2");
	run_until(&l, 4);
	T_OK(imp->state == IMAGE_JOB_DONE && strstr(events.data, "image imported reg.test/imported:2"),
	     "and ends with an event naming what it brought");

	/* b never gets released: the exit must not wait for it */
	bad = image_mgr_pull(&m, "slow", &e);
	T_OK(b->state == IMAGE_JOB_RUNNING && bad, "two pulls are still running");
	t0 = loop_now_ms();
	image_mgr_close(&m);
	T_OK(loop_now_ms() - t0 < 2000, "closing cancels them and joins their threads at once");
	T_EQ(running, 0, "no worker is left");
	T_OK(!image_mgr_pull(&m, "app:1", &e), "a closed manager takes no job");
	loop_free(&l);
	buf_free(&events);
	printf("1..%d\n", t_n);
	return t_failed ? 1 : 0;
}
