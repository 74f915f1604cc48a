/* image.h - runtime/image: OCI and Docker images (issue 21, DESIGN §10):
 * pull from registries, import archives, keep them on flash once, and give
 * the container runtime the layers and configuration a container runs from.
 * The one public header of runtime/image/.
 *
 * On disk, under STATE_DIR/images/ (every name content-addressed, every
 * entry complete or absent: it is built under tmp/ and renamed in place):
 *   blobs/sha256/HEX   manifests and image configurations (small JSON,
 *                      kept for `image inspect` and for resolving containers)
 *   layers/HEX/        one unpacked layer per diff_id (the sha256 of its
 *                      uncompressed tar), shared by every image and container
 *                      that uses it; whiteouts in overlayfs form (a 0:0
 *                      character device; trusted.overlay.opaque=y)
 *   tmp/               unpacks under way; emptied at start-up
 * A pulled layer's compressed blob is never stored: it is streamed from the
 * registry into the unpacker (a broken connection resumes in place with a
 * Range request), and the digest and diff_id are checked as it is read:
 * flash gets each layer once, unpacked, also while it is pulled. A pull
 * that ends (cancelled, a daemon restart) refetches the layer it was on.
 * Which names (references) point at which manifest is the store's (SQLite,
 * table images): written by the daemon's thread only, never by a worker.
 *
 * Threads: pulls and imports run in worker threads (mgr.c) and touch only
 * files under images/ and their own memory; everything that reads or writes
 * the store runs on the daemon's loop.
 */
#ifndef BERTH_IMAGE_H
#define BERTH_IMAGE_H

#include "lib/lib.h"
#include "runtime/ctl/ctl.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

struct store;
struct loop;

#define IMAGE_DIGEST_SIZE 72        /* "sha256:" + 64 hex + NUL */
#define IMAGE_REF_MAX 512           /* a whole reference, as text */
#define IMAGE_LAYERS_MAX 48         /* overlayfs's lowerdir option fits in a page */
#define IMAGE_JSON_MAX JSON_MAX_SIZE        /* a manifest, index or configuration (lib.h says why) */

/* How layers are unpacked (image_int.h has the unpacker). */
struct unpack_opts {
	bool allow_devices;         /* [images] allow_devices: keep character and block devices */
};

/* ---- references (ref.c) -----------------------------------------------------
 * Docker's rules: "busybox" is docker.io/library/busybox:latest;
 * "host:5000/a/b:tag@sha256:..." keeps both tag and digest (the digest
 * wins). A registry is the first component when it has '.' or ':' or is
 * "localhost". docker.io is reached at registry-1.docker.io. */
struct image_ref {
	char registry[256];         /* "docker.io", "127.0.0.1:5000" */
	char repo[256];             /* "library/busybox" */
	char tag[128];              /* "latest" unless a digest alone was given */
	char digest[IMAGE_DIGEST_SIZE];     /* "" unless given */
};
int image_ref_parse(const char *s, struct image_ref *r, struct err *e);
/* The canonical text: "registry/repo:tag" (with "@digest" when given). */
void image_ref_format(const struct image_ref *r, char *buf, size_t size);

/* Where a pull finds its registry's CA and credentials (image_int.h has the client). */
struct registry_opts {
	const char *ca_file;        /* PEM bundle; NULL: the system's */
	const char *auth_file;      /* auth.json; NULL: no credentials */
	const char *platform_arch;  /* unused by the transport; for the caller */
	atomic_bool *cancel;        /* non-NULL: stop at the next read when true */
};

/* ---- manifests and configurations (manifest.c) ------------------------------ */
/* This machine's platform, as images name it: "linux/amd64", "linux/arm64/v8". */
const char *image_platform(void);

struct image_layer_desc {
	char digest[IMAGE_DIGEST_SIZE];     /* of the blob as stored (compressed) */
	uint64_t size;
	char diff_id[IMAGE_DIGEST_SIZE];    /* from the configuration's rootfs.diff_ids */
};

/* What a container runs from an image (the configuration's "config"). */
struct image_config {
	char **entrypoint, **cmd, **env, **exposed;     /* NULL-terminated; may be NULL */
	char *workdir, *user, *stop_signal;             /* NULL when not set */
	char arch[16], os[16], variant[16];
	int64_t created;                                /* unix seconds; 0 */
};
void image_config_free(struct image_config *c);

/* ---- the store of images (store.c) ------------------------------------------ */

/* One image as the store knows it. */
struct image_info {
	char ref[IMAGE_REF_MAX];            /* canonical name */
	char digest[IMAGE_DIGEST_SIZE];     /* of the manifest (what `inspect` shows) */
	char config_digest[IMAGE_DIGEST_SIZE];
	struct image_layer_desc *layers;    /* bottom first */
	size_t n_layers;
	uint64_t size;                      /* unpacked bytes of its layers */
	int64_t created, stored;            /* unix seconds: image build, arrival */
	struct image_config config;
};
void image_info_free(struct image_info *i);

/* The outcome of a pull or an import in a worker: everything is on disk, and
 * what the daemon's thread records in the store (image_record). */
struct image_result {
	struct image_info *images;          /* an archive may hold several */
	size_t n_images;
	uint64_t bytes_fetched, bytes_written;  /* network in; flash out (files' data) */
	size_t layers_new, layers_shared;
};
void image_result_free(struct image_result *r);

/* Progress of a pull or import, read by other threads while it runs. */
struct image_progress {
	_Atomic uint64_t done, total;       /* bytes of the blobs to fetch or read */
	_Atomic uint64_t part;              /* of the blob being unpacked, not yet in done */
	_Atomic int step;                   /* enum image_step */
	atomic_bool cancel;
};
/* What has moved so far: done + part. */
static inline uint64_t image_progress_bytes(struct image_progress *p)
{
	return atomic_load(&p->done) + atomic_load(&p->part);
}
enum image_step { IMAGE_STEP_RESOLVE, IMAGE_STEP_FETCH, IMAGE_STEP_UNPACK, IMAGE_STEP_DONE };

/* STATE_DIR/images and its folders; tmp/ emptied. */
int image_dir_init(const char *state_dir, struct err *e);

/* Daemon side (store): record an image under its name (replacing the one
 * that name pointed at, whose layers stay until prune). */
int image_record(struct store *st, const struct image_info *i, struct err *e);
/* The image name points at: 0, -ENOENT (not in the store: "image X is not
 * here: pull it") or another -errno. Reads the configuration blob. */
int image_lookup(struct store *st, const char *state_dir, const char *ref, struct image_info *i,
		 struct err *e);
typedef int image_list_fn(void *ctx, const struct image_info *i);
int image_list(struct store *st, const char *state_dir, image_list_fn *fn, void *ctx,
	       struct err *e);
/* Drop name; then every layer and blob no remaining image uses. */
int image_remove(struct store *st, const char *state_dir, const char *ref, struct err *e);
/* Drop every image in_use says no container uses (all: else only those
 * without a name, i.e. replaced), then unused layers and blobs. Returns
 * the number of bytes freed. in_use (may be NULL: none is) sees ref, digests
 * and layers, not the configuration. While a pull or import runs (it holds
 * image_work_lock) names go but files stay, for the next remove or prune. */
typedef bool image_in_use_fn(void *ctx, const struct image_info *i);
int64_t image_prune(struct store *st, const char *state_dir, bool all, image_in_use_fn *in_use,
		    void *ctx, struct err *e);

/* ---- what a container runs (run.c) -------------------------------------------
 * The user a configuration names ("name", "uid", "uid:gid", "name:group")
 * resolved through the image's own /etc/passwd and /etc/group (the top-most
 * layer that has the file; a whiteout hides it): "unknown user 'app' in
 * image X" when it is not there. Numbers need no file. */
struct image_user {
	uint32_t uid, gid;
	uint32_t groups[32];
	size_t n_groups;
	char home[256];             /* the passwd entry's directory; "/" without one
				     * (root without a passwd: "/root", as docker) */
};
/* As runc: user NULL or "" is root; a name must be in /etc/passwd (else
 * -ENOENT); a uid without a group takes the gid of its passwd entry (0
 * without one); supplementary groups are those of /etc/group that list the
 * user's name, and only when no group is given. Files are read up to
 * IMAGE_USER_FILE_MAX bytes; a layer's /etc that is a whiteout, or opaque,
 * ends the search downwards. */
#define IMAGE_USER_FILE_MAX (1u << 20)
int image_user_resolve(const struct image_info *i, const char *state_dir, const char *user,
		       struct image_user *out, struct err *e);
/* The overlayfs lower directories of i, top-most first and relative to
 * STATE_DIR/images/layers (the mount is made from there): "HEX:HEX:...".
 * -EINVAL when i has no layers, more than IMAGE_LAYERS_MAX, or a diff_id
 * that is not "sha256:" and 64 hex digits. */
int image_lowerdirs(const struct image_info *i, struct buf *out, struct err *e);
/* A StopSignal as images write it ("SIGTERM", "TERM", "15", "SIGRTMIN+3"):
 * the signal number, or -1. */
int image_signal_parse(const char *s);

/* ---- the daemon's image manager (mgr.c) -----------------------------------
 * Pulls and imports run in worker threads (image_pull/image_import), at most
 * IMAGE_JOBS_RUNNING at once, the rest queued in order; a pull of a
 * reference already queued or under way joins that job. A worker that ends
 * writes one byte to a pipe the loop watches; the daemon's thread then joins
 * it, records its images in the store (image_record), adds the event
 * ("image pulled REF sha256:... (N layers, M new, X MB written)", "image
 * pull failed: ERROR", the error naming the image once: "REF: STEP: WHY")
 * and calls on_done. Finished jobs are kept (the
 * newest IMAGE_JOBS_KEPT) for `image status`. Everything here but the
 * workers' own image_pull/image_import runs on the daemon's thread.
 *
 * The manager also keeps, per reference, the image_info the store has for it
 * (a cache filled by image_mgr_get, invalidated when image_record replaces
 * that name, by image_mgr_forget): containers' specs borrow these. */
#define IMAGE_JOBS_RUNNING 2
#define IMAGE_JOBS_KEPT 16
#define IMAGE_JOB_STACK (1u << 20)  /* a worker's stack: TLS, tar headers */

enum image_job_kind { IMAGE_JOB_PULL, IMAGE_JOB_IMPORT };
enum image_job_state { IMAGE_JOB_QUEUED, IMAGE_JOB_RUNNING, IMAGE_JOB_DONE, IMAGE_JOB_FAILED };

struct image_mgr;
struct image_job {
	struct image_job *next;             /* newest first */
	struct image_mgr *m;
	unsigned id;                        /* 1, 2, ...: `image status ID` */
	enum image_job_kind kind;
	enum image_job_state state;
	char ref[IMAGE_REF_MAX];            /* pull: canonical; import: the path */
	char name[IMAGE_REF_MAX];           /* import: --name; "" */
	char ca[4096], auth[4096];          /* the registry options, copied ("": none) */
	struct registry_opts ropts;         /* points into the job */
	struct unpack_opts unpack;          /* copied from the manager's at the start */
	struct image_progress progress;
	pthread_t thread;
	atomic_bool finished;               /* the worker's last store */
	int ret;                            /* the worker's, read once finished */
	struct err err;
	struct image_result result;
	/* once done or failed */
	char image[IMAGE_REF_MAX];          /* the (first) image recorded: its name */
	char digest[IMAGE_DIGEST_SIZE];     /* and its digest */
	char error[ERR_MSG_MAX];
	size_t n_images, n_layers, layers_new;
	uint64_t bytes_written;
	uint64_t started_ms, finished_ms;
};

/* The state as `image status` says it: "queued", "resolving", "fetching"
 * (a pull's layers are unpacked as they arrive), "unpacking" (an import's
 * last step; "reading" for fetching), "done", "failed". */
const char *image_job_state_name(const struct image_job *j);
/* The bytes fetched (or read) so far, the blob in transfer's included. */
uint64_t image_job_bytes(const struct image_job *j);
/* Percent of the bytes to fetch (or read) done, 0..100; 100 once done. */
int image_job_percent(const struct image_job *j);

/* A job ended (done or failed); j stays valid during the call. */
typedef void image_mgr_done_fn(void *ctx, const struct image_job *j);

/* What the manager knows of one reference (the cache). */
struct image_known {
	struct image_known *next;
	char ref[IMAGE_REF_MAX];            /* canonical */
	struct image_info *info;            /* NULL: not looked up, or not here */
	bool looked_up;                     /* info is the store's answer (NULL: -ENOENT) */
	uint64_t pulled_ms;                 /* last successful pull (loop_now_ms); 0: none */
	unsigned fails;                     /* pulls failed since the last success */
	uint64_t failed_ms;
	char error[ERR_MSG_MAX];            /* the last failure's */
};

struct image_mgr {
	struct loop *loop;
	struct store *store;
	const char *state_dir;              /* the owner's; never changes */
	char ca[4096], auth[4096];          /* [images] ca, credentials ("": none) */
	struct unpack_opts unpack;          /* [images] allow_devices */
	struct image_job *jobs;             /* newest first */
	unsigned next_id, running;
	int pipe[2];                        /* workers -> loop: a byte per finished job */
	struct loop_fd done_fd;
	struct image_known *known;
	image_mgr_done_fn *on_done;         /* may be NULL */
	void *ctx;
	bool closed;
};

/* Set m up (on_done and ctx are the caller's to set after). */
int image_mgr_init(struct image_mgr *m, struct loop *l, struct store *st, const char *state_dir,
		   struct err *e);
/* The registry options (NULL: none) and the unpack options (NULL: the
 * defaults) for jobs started from now on. */
void image_mgr_configure(struct image_mgr *m, const char *ca_file, const char *auth_file,
			 const struct unpack_opts *uo);
/* Start (or join) a pull of ref: the job, or NULL with e ("bad reference"). */
struct image_job *image_mgr_pull(struct image_mgr *m, const char *ref, struct err *e);
/* Start an import of path (absolute) named name (NULL: the archive's). */
struct image_job *image_mgr_import(struct image_mgr *m, const char *path, const char *name,
				   struct err *e);
/* The job with this id ("12"), else the newest whose ref (canonical for a
 * reference) or path is s; NULL when none. */
struct image_job *image_mgr_job(const struct image_mgr *m, const char *s);
/* The queued or running pull of canonical ref, or NULL. */
struct image_job *image_mgr_active(const struct image_mgr *m, const char *ref);
/* Is any job queued or running? */
bool image_mgr_busy(const struct image_mgr *m);
/* ref canonical ("busybox" -> "docker.io/library/busybox:latest"). */
int image_mgr_canonical(const char *ref, char *out, size_t size, struct err *e);
/* What the manager knows of canonical ref (created empty when new). */
struct image_known *image_mgr_known(struct image_mgr *m, const char *ref);
/* The image canonical ref names, from the cache or the store: NULL with e
 * (-ENOENT: not here) otherwise. Borrowed until the next image_mgr_forget,
 * job completion, or image_mgr_close. */
const struct image_info *image_mgr_get(struct image_mgr *m, const char *ref, struct err *e);
/* Drop the cached image of ref (NULL: of every reference). */
void image_mgr_forget(struct image_mgr *m, const char *ref);
/* Daemon stop (SIGTERM, SIGINT, SIGQUIT), at once, while containers may
 * still be stopping: every job is told to stop (a worker at its next read
 * of the registry or the layer; the layer it was on is refetched by the
 * next pull), queued ones never start, and new ones are refused. */
void image_mgr_cancel(struct image_mgr *m);
/* Daemon exit: cancel every job (image_mgr_cancel), join the workers, free
 * everything. */
void image_mgr_close(struct image_mgr *m);

/* ---- the CLI (cmd_image.c) ------------------------------------------------------
 * `berth image pull REF` and `berth image import FILE|DIR [--name REF]`
 * (argv[1]) against the daemon at socket: each follows its job to its end
 * (exit 0 printing "REF DIGEST", 1 with the error). Returns an exit code.
 * The other image commands are plain requests (main.c sends them). */
int cmd_image(const char *socket, bool json, int argc, char **argv);

#endif
