/* image.h - runtime/image: OCI and Docker images (issue 21, DESIGN §10):
 * pull from registries, import archives, keep them on flash once, and give
 * the container runtime the layers and configuration a container runs from.
 * The one public header of runtime/image/.
 *
 * On disk, under STATE_DIR/images/ (every name content-addressed, every
 * entry complete or absent: it is built under tmp/ and renamed in place):
 *   blobs/sha256/HEX   manifests, indexes and image configurations (small JSON,
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

/* ---- bytes in (stream.c) ------------------------------------------------------
 * A pull-based byte source: a file, a tar entry, a decompressor. read returns
 * the number of bytes (0 at the end) or -errno with e set. */
struct image_src {
	ssize_t (*read)(void *ctx, void *p, size_t n, struct err *e);
	void *ctx;
};

/* A file descriptor read up to limit bytes (UINT64_MAX: to its end). */
struct image_fd_src {
	struct image_src src;
	int fd;
	uint64_t left;
};
void image_fd_src_init(struct image_fd_src *s, int fd, uint64_t limit);

/* "sha256:HEX" of a finished context into out (IMAGE_DIGEST_SIZE). */
void image_digest_format(const uint8_t sha[32], char *out);
/* "sha256:HEX" of n bytes at p into out (IMAGE_DIGEST_SIZE). */
void image_digest_of(const void *p, size_t n, char *out);
/* Is s "sha256:" followed by 64 lower-case hex digits? */
bool image_digest_valid(const char *s);

/* ---- tar (tar.c) ---------------------------------------------------------------
 * A reader of ustar, GNU (long names and links, 'L'/'K') and pax ('x', 'g':
 * path, linkpath, size, uid, gid, mtime, SCHILY.xattr.*) archives, streaming
 * from any image_src. Nothing it reads is trusted: sizes, numbers and names
 * are checked, a truncated archive is an error, not an end. */
enum tar_type { TAR_FILE, TAR_HARDLINK, TAR_SYMLINK, TAR_CHAR, TAR_BLOCK, TAR_DIR, TAR_FIFO };

#define TAR_NAME_MAX 4096
#define TAR_XATTRS_MAX 16
struct tar_xattr {                  /* point into the reader: valid until the next tar_next */
	char *name;                 /* "security.capability", "user.x", ... */
	void *value;
	size_t len;
};

struct tar_entry {
	enum tar_type type;
	char name[TAR_NAME_MAX];        /* as in the archive, "./" and leading '/' removed
					 * (also empty and "." components and a trailing
					 * '/'; ".." is kept for the caller to refuse);
					 * "" is the archive's own top directory ("./") */
	char link[TAR_NAME_MAX];        /* symlink target, or a hard link's entry name */
	uint32_t mode;                  /* permission bits with suid/sgid/sticky */
	uint32_t uid, gid;
	int64_t mtime;
	uint64_t size;                  /* of the data that follows (TAR_FILE; 0 otherwise) */
	uint32_t devmajor, devminor;
	struct tar_xattr xattrs[TAR_XATTRS_MAX];
	size_t n_xattrs;
	uint64_t offset;                /* of the data in the archive (for seeking) */
};

struct tar_reader;
int tar_open(struct tar_reader **t, struct image_src in, struct err *e);
/* The next entry: 1 (filled), 0 (the end) or -errno. Data the caller did
 * not read of the previous entry is skipped. The end is two zero blocks, or
 * the end of input at a block boundary (GNU tar accepts both); what follows
 * the end blocks is not read. A 'g' pax header's uid, gid, mtime and xattrs
 * apply to every later entry (until the next 'g', which replaces them). */
int tar_next(struct tar_reader *t, struct tar_entry *ent, struct err *e);
/* The current entry's data, as a source (valid until the next tar_next). */
struct image_src tar_data(struct tar_reader *t);
void tar_close(struct tar_reader *t);

/* ---- layers (unpack.c) ----------------------------------------------------
 * Apply one layer (a tar, gzip-compressed or not: detected from its first
 * bytes) into dir, an empty directory, as an overlayfs lower layer:
 * ".wh.NAME" becomes a 0:0 character device NAME, ".wh..wh..opq" the
 * trusted.overlay.opaque=y xattr of its directory; symlinks, hard links
 * (inside the layer), modes, ownership, mtimes and xattrs are kept where the
 * filesystem allows (an xattr it refuses is skipped, counted). Refused, with
 * the entry's name in the error: a name with "..", a path that would pass
 * through a symlink (so nothing escapes dir), a hard link to outside the
 * layer, device nodes (unless allow_devices: "a character device node
 * (1:3) is refused ([images] allow_devices = yes accepts them)"), names
 * over TAR_NAME_MAX.
 * An xattr named trusted.overlay.* in the archive is skipped (overlayfs's
 * own attributes come only from whiteouts). The whole input is read, the
 * bytes after the tar's end blocks too (both digests cover them). o may be
 * NULL (no devices). Every error names the entry: "layer entry 'etc/x': ...".
 * Memory: about 150 KiB whatever the layer, plus the names of its
 * directories (their mtimes are set at the end).
 * After an error of the content (not of the input, a full disk or a
 * cancel) the rest of the input is still read, into r->digest only, so
 * that the caller can name bytes that are not the blob as the cause.
 * Nothing is synced here; the caller syncs the filesystem once. */
struct unpack_opts {
	bool allow_devices;         /* [images] allow_devices: keep character and block devices */
};
struct unpack_result {
	char digest[IMAGE_DIGEST_SIZE];     /* sha256 of the bytes read (the blob) */
	char diff_id[IMAGE_DIGEST_SIZE];    /* sha256 of the uncompressed tar */
	uint64_t bytes_in;                  /* read from in */
	uint64_t bytes_out;                 /* file data written */
	uint64_t entries;
	uint64_t xattrs_skipped;
	bool gzip;
};
int image_layer_unpack(struct image_src in, const char *dir, const struct unpack_opts *o,
		       struct unpack_result *r, struct err *e);

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

/* ---- registries (http.c, registry.c) --------------------------------------
 * The OCI distribution API (v2) over HTTPS (BearSSL, TLS 1.2; HTTP/1.1 with
 * Content-Length or chunked bodies, redirects to other hosts followed with
 * the Authorization dropped). Auth: a 401's WWW-Authenticate "Bearer
 * realm,service,scope" is answered with a token fetched from the realm
 * (with basic credentials when there are any), "Basic" with the
 * credentials; credentials come from a podman/docker auth.json
 * ({"auths": {"HOST[:PORT]": {"auth": base64("user:pass")}}}). Transient
 * failures (connection reset or refused, timeout, 429 with Retry-After,
 * 500/502/503/504) are retried up to REGISTRY_TRIES times with back-off
 * 0.5 s, 1 s, 2 s, ... (at most 8 s); 401 after auth, 403, 404 are not.
 * Every error names the registry, the repository, the object and the step:
 *   "127.0.0.1:5000/app: blob sha256:ab12..: HTTP 404 (blob unknown)". */
#define REGISTRY_TRIES 5
#define REGISTRY_TIMEOUT_MS 30000   /* without a byte moving */

struct registry_opts {
	const char *ca_file;        /* PEM bundle; NULL: the system's */
	const char *auth_file;      /* auth.json; NULL: no credentials */
	const char *platform_arch;  /* unused by the transport; for the caller */
	atomic_bool *cancel;        /* non-NULL: stop at the next read when true */
};

struct registry;
int registry_open(struct registry **r, const struct image_ref *ref,
		  const struct registry_opts *o, struct err *e);
/* GET /v2/REPO/manifests/REFERENCE (a tag or a digest), accepting OCI
 * indexes and manifests and Docker manifest lists and v2 manifests. body
 * receives the bytes; media_type (128 bytes) the Content-Type; digest
 * (IMAGE_DIGEST_SIZE) their sha256, which must equal REFERENCE when that is
 * a digest. At most IMAGE_JSON_MAX bytes. */
int registry_get_manifest(struct registry *r, const char *reference, struct buf *body,
			  char *media_type, char *digest, struct err *e);
/* GET /v2/REPO/blobs/DIGEST as a stream: the bytes go from the network
 * straight to the reader of registry_blob_src (an unpacker), nothing is
 * written to disk. The open makes the first request (a 404 is its error);
 * the reads hide a transfer that breaks (reset, timeout, 5xx, 429): the
 * rest is asked for with Range: bytes=N- (N: the bytes handed over so far),
 * and a server that answers with the whole blob has its first N bytes
 * skipped, so the reader sees one stream; retries and back-off as above,
 * REGISTRY_TRIES that get no further than before. size is the manifest's
 * (0: unknown): more bytes, or fewer at the end, is an error. *progress
 * (may be NULL) follows the bytes handed over, for other threads. The
 * cancel flag ends the stream at the next read. The sha256 is NOT checked
 * here: the reader checks what it read (image_layer_install does).
 * A read's error, "REGISTRY/REPO: blob DIGEST: WHY (gave up after N
 * tries)", is also kept: registry_blob_error returns it (NULL while the
 * stream is whole), so that a consumer that wraps its own words around a
 * read's error can tell the download's failure from its own. */
struct registry_blob;
int registry_blob_open(struct registry *r, const char *digest, uint64_t size,
		       _Atomic uint64_t *progress, struct registry_blob **b, struct err *e);
struct image_src registry_blob_src(struct registry_blob *b);
const struct err *registry_blob_error(const struct registry_blob *b);
/* Bytes handed over so far. */
uint64_t registry_blob_bytes(const struct registry_blob *b);
void registry_blob_close(struct registry_blob *b);
void registry_close(struct registry *r);

/* ---- manifests and configurations (manifest.c) ------------------------------ */
enum image_media {
	MEDIA_UNKNOWN,
	MEDIA_OCI_INDEX,            /* application/vnd.oci.image.index.v1+json */
	MEDIA_OCI_MANIFEST,         /* application/vnd.oci.image.manifest.v1+json */
	MEDIA_DOCKER_LIST,          /* application/vnd.docker.distribution.manifest.list.v2+json */
	MEDIA_DOCKER_MANIFEST,      /* application/vnd.docker.distribution.manifest.v2+json */
};
enum image_media image_media_parse(const char *s);

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

/* What a manifest document is: its own "mediaType", else content_type (an
 * HTTP Content-Type; may be NULL; parameters ignored), else its shape
 * ("manifests": an OCI index; "config" and "layers": an OCI manifest). */
enum image_media image_manifest_media(const char *text, size_t len, const char *content_type);

/* One entry of an OCI index or Docker manifest list. */
#define IMAGE_INDEX_MAX 256                 /* entries in one index */
struct image_index_entry {
	char digest[IMAGE_DIGEST_SIZE];
	enum image_media media;             /* MEDIA_UNKNOWN for artefacts */
	uint64_t size;
	char platform[64];                  /* "linux/arm64/v8"; "" when not given */
	char ref_name[IMAGE_REF_MAX];       /* org.opencontainers.image.ref.name; "" */
};
struct image_index {
	struct image_index_entry *v;
	size_t n;
};
int image_index_parse(const char *text, size_t len, struct image_index *x, struct err *e);
void image_index_free(struct image_index *x);
/* Does an image for have ("os/arch[/variant]") run where want is? As
 * containerd: arm64 with variant "v8" or none are the same; amd64 "v1" too. */
bool image_platform_match(const char *want, const char *have);
/* The entry of x for platform (image_platform() when NULL): its index, or
 * -ENOENT with "no linux/arm64/v8 image in WHAT: it has linux/amd64, ...". */
int image_index_select(const struct image_index *x, const char *platform, const char *what,
		       struct err *e);

/* An image manifest (OCI, Docker v2): its configuration and layers (their
 * diff_ids ""; they come from the configuration). Layers must be tar or
 * tar+gzip; at most IMAGE_LAYERS_MAX. */
struct image_manifest {
	enum image_media media;
	char config_digest[IMAGE_DIGEST_SIZE];
	uint64_t config_size;
	size_t n_layers;
	struct image_layer_desc layers[IMAGE_LAYERS_MAX];
};
int image_manifest_parse(const char *text, size_t len, struct image_manifest *m, struct err *e);
/* An image configuration: c (freed by image_config_free, also on failure)
 * and, when diff_ids is not NULL, rootfs.diff_ids bottom first (at most
 * IMAGE_LAYERS_MAX) with their count in *n_diff_ids. */
int image_config_parse(const char *text, size_t len, struct image_config *c,
		       char (*diff_ids)[IMAGE_DIGEST_SIZE], size_t *n_diff_ids, struct err *e);

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

/* Worker side, for pull.c and import.c: files under images/, each complete
 * or absent. Paths are PATH_MAX. */
/* images/blobs/sha256/HEX of digest into path. */
int image_blob_path(const char *state_dir, const char *digest, char *path, struct err *e);
/* Store p[0..n) as the blob digest (its sha256 is checked first; a mismatch
 * is -EBADMSG naming both): tmp/ file, fsync, rename, fsync of the folder.
 * A blob already there is kept. */
int image_blob_write(const char *state_dir, const char *digest, const void *p, size_t n,
		     struct err *e);
/* The blob digest (at most IMAGE_JSON_MAX bytes, its sha256 checked) into out. */
int image_blob_read(const char *state_dir, const char *digest, struct buf *out, struct err *e);
/* Is the layer diff_id unpacked (images/layers/HEX)? */
bool image_layer_present(const char *state_dir, const char *diff_id);
/* A new empty directory under images/tmp/ (prefix: "layer"), into path. */
int image_tmp_dir(const char *state_dir, const char *prefix, char *path, struct err *e);
/* Make the unpacked layer at dir (under images/tmp/) layers/HEX of diff_id:
 * syncfs, rename, fsync of layers/. When the layer is already there, dir is
 * deleted instead. Returns 1 when this call put it there, 0 when it was. */
int image_layer_commit(const char *state_dir, const char *dir, const char *diff_id,
		       struct err *e);
/* Held (a shared flock; the returned fd, closed to release) by a pull or
 * import while it runs: image_remove and image_prune collect no layer or
 * blob meanwhile (what it has put in place has no name yet). */
int image_work_lock(const char *state_dir, struct err *e);
/* Unpack the layer in into a new directory under tmp/ with the options uo
 * (NULL: the defaults, no devices), check it (the blob's digest when
 * want_digest is not NULL, also when the unpack failed: bytes that are not
 * the blob are named as the cause; the diff_id always: a mismatch is -EBADMSG
 * "WHAT: layer DIGEST: ... is sha256:X, not sha256:Y") and make it
 * layers/HEX of want_diff_id. 1: put there; 0: another got there first.
 * Nothing is left under tmp/ either way. The one way a layer gets into the
 * store, for pulls and imports alike. */
int image_layer_install(const char *state_dir, struct image_src in, const char *what,
			const char *want_digest, const char *want_diff_id,
			const struct unpack_opts *uo, struct unpack_result *r, struct err *e);
/* The bytes of file data in layers/HEX of diff_id (0 when absent). */
uint64_t image_layer_bytes(const char *state_dir, const char *diff_id);
/* When e is a full disk (ENOSPC, EDQUOT), say which: "...: No space left on
 * device (ENOSPC) (STATE_DIR/images is full)". */
void image_err_full(struct err *e, const char *state_dir);
/* Delete a tree that may hold read-only directories (rm -rf). */
int image_tree_delete(const char *path, struct err *e);
/* Fill i (ref, digest, config_digest, layers with diff_ids, created, config)
 * from a manifest and its configuration's text: the configuration's
 * diff_ids must be as many as the manifest's layers. what names the image
 * in messages. size and stored are left 0. */
int image_info_fill(struct image_info *i, const char *ref, const char *digest,
		    const struct image_manifest *m, const char *config, size_t config_len,
		    const char *what, struct err *e);

/* Worker side: fetch ref's image for this machine's platform (an index or
 * manifest list resolved with image_platform(); "no linux/arm64/v8 image
 * in ...: it has linux/amd64, linux/s390x" when none fits), every blob
 * verified, each layer not yet under layers/ downloaded and unpacked with
 * uo (NULL: the defaults). Every error names the image once, by its
 * canonical reference, and the step: "REF: layer sha256:..: download: ...";
 * a full disk adds "(STATE_DIR/images is full)". pull.c's header says what
 * a failure leaves (whole layers; nothing under tmp/) and what a broken
 * connection (resumed in place) and a restart (the layer refetched) cost. */
int image_pull(const char *state_dir, const char *ref, const struct registry_opts *o,
	       const struct unpack_opts *uo, struct image_progress *p, struct image_result *out,
	       struct err *e);
/* Worker side: a docker-archive (`docker save`), an oci-archive (a tar of
 * an OCI layout) or an OCI image layout directory. Images are named by the
 * archive (RepoTags; org.opencontainers.image.ref.name), else by name when
 * given (which also overrides a single image's name; with several images a
 * name is an error); an image with no name is unnamed: its ref is its
 * manifest digest. import.c's header says what is read and how. Layers are
 * unpacked with uo (NULL: the defaults) by image_layer_install, as a
 * pull's. */
int image_import(const char *state_dir, const char *path, const char *name,
		 const struct unpack_opts *uo, struct image_progress *p, struct image_result *out,
		 struct err *e);

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
 * `berth image pull REF | import FILE|DIR [--name REF] | ls | inspect REF |
 * status REF|JOB | rm REF | prune [--all]` against the daemon at socket;
 * pull and import follow their job to its end (exit 0 printing "REF DIGEST",
 * 1 with the error). Returns an exit code. */
int cmd_image(const char *socket, bool json, int argc, char **argv);

#endif
