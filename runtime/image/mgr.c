/* mgr.c - the daemon's image manager: pulls and imports in worker threads,
 * their end reported over a pipe the loop watches, their images recorded
 * in the store by the daemon's thread (image.h, "the daemon's image
 * manager"). The loop never waits for a worker but at exit, where each has
 * been told to stop at its next read. */
#include "runtime/image/image_int.h"
#include "store/store.h"

#include <errno.h>
#include <stdarg.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <unistd.h>

const char *image_job_state_name(const struct image_job *j)
{
	switch (j->state) {
	case IMAGE_JOB_QUEUED:
		return "queued";
	case IMAGE_JOB_DONE:
		return "done";
	case IMAGE_JOB_FAILED:
		return "failed";
	case IMAGE_JOB_RUNNING:
		break;
	}
	switch (atomic_load(&j->progress.step)) {
	case IMAGE_STEP_RESOLVE:
		return "resolving";
	case IMAGE_STEP_FETCH:
		return j->kind == IMAGE_JOB_PULL ? "fetching" : "reading";
	case IMAGE_STEP_UNPACK:
		return "unpacking";
	default:
		return "finishing";
	}
}

uint64_t image_job_bytes(const struct image_job *j)
{
	/* the blob in transfer counts as it arrives */
	return atomic_load(&j->progress.done) + atomic_load(&j->progress.part);
}

int image_job_percent(const struct image_job *j)
{
	uint64_t done = image_job_bytes(j), total = atomic_load(&j->progress.total);

	if (j->state == IMAGE_JOB_DONE)
		return 100;
	if (!total)
		return 0;
	if (done >= total)
		return j->state == IMAGE_JOB_RUNNING ? 99 : 100;
	return (int)(done * 100 / total);
}

int image_mgr_canonical(const char *ref, char *out, size_t size, struct err *e)
{
	struct image_ref r;

	if (image_ref_parse(ref, &r, e) < 0)
		return -1;
	image_ref_format(&r, out, size);
	return 0;
}

struct image_known *image_mgr_known(struct image_mgr *m, const char *ref)
{
	struct image_known *k;

	for (k = m->known; k; k = k->next)
		if (!strcmp(k->ref, ref))
			return k;
	k = calloc(1, sizeof(*k));
	if (!k)
		abort();
	snprintf(k->ref, sizeof(k->ref), "%s", ref);
	k->next = m->known;
	m->known = k;
	return k;
}

static void known_drop_info(struct image_known *k)
{
	if (k->info) {
		image_info_free(k->info);
		free(k->info);
	}
	k->info = NULL;
	k->looked_up = false;
}

void image_mgr_forget(struct image_mgr *m, const char *ref)
{
	for (struct image_known *k = m->known; k; k = k->next)
		if (!ref || !strcmp(k->ref, ref))
			known_drop_info(k);
}

const struct image_info *image_mgr_get(struct image_mgr *m, const char *ref, struct err *e)
{
	struct image_known *k = image_mgr_known(m, ref);
	struct image_info *i;
	int ret;

	if (!m->store) {
		err_set(e, ENOENT, "image %s is not here: images are not available", ref);
		return NULL;
	}
	if (k->looked_up) {
		if (!k->info)
			err_set(e, ENOENT, "image %s is not here: pull it", ref);
		return k->info;
	}
	i = calloc(1, sizeof(*i));
	if (!i)
		abort();
	ret = image_lookup(m->store, m->state_dir, ref, i, e);
	if (ret < 0) {
		free(i);
		/* only "not here" is an answer worth keeping: another error
		 * (a blob unreadable) is asked again next time */
		k->looked_up = ret == -ENOENT;
		return NULL;
	}
	k->info = i;
	k->looked_up = true;
	return i;
}

static void *job_main(void *arg)
{
	struct image_job *j = arg;

	if (j->kind == IMAGE_JOB_PULL)
		j->ret = image_pull(j->m->state_dir, j->ref, &j->ropts, &j->unpack, &j->progress,
				    &j->result, &j->err);
	else
		j->ret = image_import(j->m->state_dir, j->ref, j->name[0] ? j->name : NULL,
				      &j->unpack, &j->progress, &j->result, &j->err);
	atomic_store(&j->finished, true);
	/* one byte per job: the loop looks at every job flagged finished */
	(void)!write(j->m->pipe[1], "j", 1);
	return NULL;
}

static const char *job_verb(const struct image_job *j)
{
	return j->kind == IMAGE_JOB_PULL ? "pull" : "import";
}

/* An event of kind "image", object "pull" or "import": the message. */
static void job_event(struct image_job *j, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
static void job_event(struct image_job *j, const char *fmt, ...)
{
	struct store_event ev = { .type = "image" };
	va_list ap;

	snprintf(ev.action, sizeof(ev.action), "%s", job_verb(j));
	snprintf(ev.object, sizeof(ev.object), "%.*s", (int)sizeof(ev.object) - 1, j->ref);
	va_start(ap, fmt);
	vsnprintf(ev.message, sizeof(ev.message), fmt, ap);
	va_end(ap);
	store_event_put(j->m->store, &ev, NULL);
}

/* The job's last moments on the daemon's thread: say it failed. Its error
 * names what failed once (image_pull's and image_import's always do: else
 * "REF: " goes in front), and everything that shows it shows it whole:
 * "image pull failed: REF: STEP: WHY". */
static void job_fail(struct image_job *j, const char *msg)
{
	struct buf ev;

	j->state = IMAGE_JOB_FAILED;
	buf_init(&ev);
	buf_printf(&ev, "%s%s%s", strstr(msg, j->ref) ? "" : j->ref, strstr(msg, j->ref) ? "" : ": ",
		   msg);
	snprintf(j->error, sizeof(j->error), "%.*s", (int)sizeof(j->error) - 1, ev.data);
	buf_free(&ev);
	if (j->kind == IMAGE_JOB_PULL) {
		struct image_known *k = image_mgr_known(j->m, j->ref);

		k->fails++;
		k->failed_ms = loop_now_ms();
		snprintf(k->error, sizeof(k->error), "%s", j->error);
	}
	job_event(j, "image %s failed: %s", job_verb(j), j->error);
}

/* Record what a worker brought: each image under its name (which replaces
 * what the name pointed at: the cache of that name goes). */
static void job_record(struct image_job *j)
{
	struct image_mgr *m = j->m;
	const struct image_result *r = &j->result;
	struct err e = { 0 };

	for (size_t i = 0; i < r->n_images; i++) {
		const struct image_info *inf = &r->images[i];

		if (image_record(m->store, inf, &e) < 0) {
			job_fail(j, e.msg);     /* "record image REF: ..." */
			return;
		}
		image_mgr_forget(m, inf->ref);
		j->n_layers += inf->n_layers;
	}
	if (!r->n_images) {
		job_fail(j, "no image in it");
		return;
	}
	j->state = IMAGE_JOB_DONE;
	snprintf(j->image, sizeof(j->image), "%s", r->images[0].ref);
	snprintf(j->digest, sizeof(j->digest), "%s", r->images[0].digest);
	j->n_images = r->n_images;
	j->layers_new = r->layers_new;
	j->bytes_written = r->bytes_written;
	if (j->kind == IMAGE_JOB_PULL) {
		struct image_known *k = image_mgr_known(m, j->ref);

		k->pulled_ms = loop_now_ms();
		k->fails = 0;
		k->error[0] = '\0';
		image_mgr_forget(m, j->ref);
	}
	job_event(j, "image %s %s %s (%zu layer%s, %zu new, %.1f MB written)",
		  j->kind == IMAGE_JOB_PULL ? "pulled" : "imported",
		  j->kind == IMAGE_JOB_PULL ? j->ref : r->images[0].ref, j->digest, j->n_layers,
		  j->n_layers == 1 ? "" : "s", j->layers_new, (double)j->bytes_written / 1e6);
}

static void job_start_queued(struct image_mgr *m);

static void job_finish(struct image_job *j)
{
	struct image_mgr *m = j->m;

	pthread_join(j->thread, NULL);
	m->running--;
	j->finished_ms = loop_now_ms();
	if (j->ret == -ECANCELED && m->closed) {
		/* image_mgr_cancel: say why */
		size_t n = strlen(j->err.msg);

		snprintf(j->err.msg + n, sizeof(j->err.msg) - n, " (the daemon is stopping)");
		job_fail(j, j->err.msg);
	} else if (j->ret < 0)
		job_fail(j, j->err.msg[0] ? j->err.msg : "failed");
	else
		job_record(j);
	image_result_free(&j->result);
	memset(&j->result, 0, sizeof(j->result));
}

/* Keep the newest IMAGE_JOBS_KEPT finished jobs. */
static void jobs_trim(struct image_mgr *m)
{
	size_t kept = 0;

	for (struct image_job **pp = &m->jobs; *pp;) {
		struct image_job *j = *pp;

		if (j->state == IMAGE_JOB_DONE || j->state == IMAGE_JOB_FAILED) {
			if (++kept > IMAGE_JOBS_KEPT) {
				*pp = j->next;
				free(j);
				continue;
			}
		}
		pp = &j->next;
	}
}

static void on_done_fd(struct loop_fd *f, uint32_t events)
{
	struct image_mgr *m = container_of(f, struct image_mgr, done_fd);
	char b[64];
	bool again = true;

	(void)events;
	while (read(f->fd, b, sizeof(b)) > 0)
		;
	/* a callback may start jobs (the list changes): look again from the
	 * top after each one */
	while (again) {
		again = false;
		for (struct image_job *j = m->jobs; j; j = j->next) {
			if (j->state != IMAGE_JOB_RUNNING || !atomic_load(&j->finished))
				continue;
			job_finish(j);
			job_start_queued(m);
			if (m->on_done)
				m->on_done(m->ctx, j);
			again = true;
			break;
		}
	}
	jobs_trim(m);
}

static int job_run(struct image_job *j, struct err *e)
{
	pthread_attr_t attr;
	int ret;

	pthread_attr_init(&attr);
	pthread_attr_setstacksize(&attr, IMAGE_JOB_STACK);
	j->state = IMAGE_JOB_RUNNING;
	j->started_ms = loop_now_ms();
	ret = pthread_create(&j->thread, &attr, job_main, j);
	pthread_attr_destroy(&attr);
	if (ret != 0) {
		j->state = IMAGE_JOB_QUEUED;
		return err_sys(e, ret, "image %s: start a worker thread", j->ref);
	}
	j->m->running++;
	job_event(j, "image %s started: %s", job_verb(j), j->ref);
	return 0;
}

/* Oldest first: the list is newest first, so the last queued goes. */
static void job_start_queued(struct image_mgr *m)
{
	while (m->running < IMAGE_JOBS_RUNNING && !m->closed) {
		struct image_job *next = NULL;
		struct err e = { 0 };

		for (struct image_job *j = m->jobs; j; j = j->next)
			if (j->state == IMAGE_JOB_QUEUED)
				next = j;
		if (!next)
			return;
		if (job_run(next, &e) < 0) {
			next->finished_ms = loop_now_ms();
			job_fail(next, e.msg);
			if (m->on_done)
				m->on_done(m->ctx, next);
		}
	}
}

static struct image_job *job_new(struct image_mgr *m, enum image_job_kind kind, const char *ref,
				 const char *name)
{
	struct image_job *j = calloc(1, sizeof(*j));

	if (!j)
		abort();
	j->m = m;
	j->id = ++m->next_id;
	j->kind = kind;
	snprintf(j->ref, sizeof(j->ref), "%s", ref);
	snprintf(j->name, sizeof(j->name), "%s", name ? name : "");
	/* the worker reads these while a reload may change the config */
	memcpy(j->ca, m->ca, sizeof(j->ca));
	memcpy(j->auth, m->auth, sizeof(j->auth));
	j->unpack = m->unpack;
	j->ropts.ca_file = j->ca[0] ? j->ca : NULL;
	j->ropts.auth_file = j->auth[0] ? j->auth : NULL;
	j->ropts.platform_arch = image_platform();
	j->ropts.cancel = &j->progress.cancel;
	atomic_init(&j->finished, false);
	j->next = m->jobs;
	m->jobs = j;
	job_start_queued(m);
	return j;
}

struct image_job *image_mgr_active(const struct image_mgr *m, const char *ref)
{
	for (struct image_job *j = m->jobs; j; j = j->next)
		if (j->kind == IMAGE_JOB_PULL && !strcmp(j->ref, ref) &&
		    (j->state == IMAGE_JOB_QUEUED || j->state == IMAGE_JOB_RUNNING))
			return j;
	return NULL;
}

struct image_job *image_mgr_pull(struct image_mgr *m, const char *ref, struct err *e)
{
	char canon[IMAGE_REF_MAX];
	struct image_job *j;

	if (m->closed || !m->loop) {
		err_set(e, ESHUTDOWN, m->closed ? "the daemon is stopping" :
			"images are not available (see the daemon's log)");
		return NULL;
	}
	if (image_mgr_canonical(ref, canon, sizeof(canon), e) < 0)
		return NULL;
	j = image_mgr_active(m, canon);
	return j ? j : job_new(m, IMAGE_JOB_PULL, canon, NULL);
}

struct image_job *image_mgr_import(struct image_mgr *m, const char *path, const char *name,
				   struct err *e)
{
	char canon[IMAGE_REF_MAX];

	if (m->closed || !m->loop) {
		err_set(e, ESHUTDOWN, m->closed ? "the daemon is stopping" :
			"images are not available (see the daemon's log)");
		return NULL;
	}
	if (path[0] != '/') {
		err_set(e, EINVAL, "import %s: the path must be absolute", path);
		return NULL;
	}
	if (name && image_mgr_canonical(name, canon, sizeof(canon), e) < 0)
		return NULL;
	return job_new(m, IMAGE_JOB_IMPORT, path, name ? canon : NULL);
}

struct image_job *image_mgr_job(const struct image_mgr *m, const char *s)
{
	char canon[IMAGE_REF_MAX] = "", *end;
	unsigned long id = strtoul(s, &end, 10);

	if (*s && !*end) {
		for (struct image_job *j = m->jobs; j; j = j->next)
			if (j->id == id)
				return j;
		return NULL;
	}
	if (image_mgr_canonical(s, canon, sizeof(canon), NULL) < 0)
		canon[0] = '\0';
	for (struct image_job *j = m->jobs; j; j = j->next)
		if (!strcmp(j->ref, s) || (canon[0] && !strcmp(j->ref, canon)) ||
		    (canon[0] && !strcmp(j->name, canon)))
			return j;
	return NULL;
}

bool image_mgr_busy(const struct image_mgr *m)
{
	for (const struct image_job *j = m->jobs; j; j = j->next)
		if (j->state == IMAGE_JOB_QUEUED || j->state == IMAGE_JOB_RUNNING)
			return true;
	return false;
}

void image_mgr_configure(struct image_mgr *m, const char *ca_file, const char *auth_file,
			 const struct unpack_opts *uo)
{
	snprintf(m->ca, sizeof(m->ca), "%s", ca_file ? ca_file : "");
	snprintf(m->auth, sizeof(m->auth), "%s", auth_file ? auth_file : "");
	m->unpack = uo ? *uo : (struct unpack_opts){ 0 };
}

int image_mgr_init(struct image_mgr *m, struct loop *l, struct store *st, const char *state_dir,
		   struct err *e)
{
	memset(m, 0, sizeof(*m));
	m->loop = l;
	m->store = st;
	m->state_dir = state_dir;
	m->pipe[0] = m->pipe[1] = -1;
	if (pipe2(m->pipe, O_CLOEXEC | O_NONBLOCK) < 0)
		return err_sys(e, errno, "image manager: pipe");
	m->done_fd.fd = m->pipe[0];
	m->done_fd.cb = on_done_fd;
	if (loop_fd_add(l, &m->done_fd, EPOLLIN, e) < 0) {
		close(m->pipe[0]);
		close(m->pipe[1]);
		m->pipe[0] = m->pipe[1] = -1;
		return -1;
	}
	return 0;
}

void image_mgr_cancel(struct image_mgr *m)
{
	m->closed = true;
	for (struct image_job *j = m->jobs; j; j = j->next)
		atomic_store(&j->progress.cancel, true);
}

void image_mgr_close(struct image_mgr *m)
{
	if (!m->loop)
		return;                 /* never set up */
	image_mgr_cancel(m);
	/* each stops at its next read (a registry's reads time out too) and
	 * leaves its partial files under tmp/, emptied at the next start */
	for (struct image_job *j = m->jobs; j; j = j->next)
		if (j->state == IMAGE_JOB_RUNNING) {
			pthread_join(j->thread, NULL);
			image_result_free(&j->result);
			j->state = IMAGE_JOB_FAILED;
		}
	while (m->jobs) {
		struct image_job *j = m->jobs;

		m->jobs = j->next;
		free(j);
	}
	image_mgr_forget(m, NULL);
	while (m->known) {
		struct image_known *k = m->known;

		m->known = k->next;
		free(k);
	}
	if (m->pipe[0] >= 0) {
		loop_fd_del(m->loop, &m->done_fd);
		close(m->pipe[0]);
		close(m->pipe[1]);
	}
	m->pipe[0] = m->pipe[1] = -1;
	m->loop = NULL;
}
