/* image_int.h - declarations shared by the files of runtime/image/ only (and
 * their tests and fuzz targets): the pieces a pull and an import are made
 * of (byte sources, tar, the unpacker, the registry client, the manifest
 * parsers, the store's files) and the HTTP client under registry.c. The
 * rest of berth uses image.h. */
#ifndef BERTH_IMAGE_INT_H
#define BERTH_IMAGE_INT_H

#include "runtime/image/image.h"

#include <stdatomic.h>
#include <sys/types.h>

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

/* ---- manifests (manifest.c) -------------------------------------------------- */
enum image_media {
	MEDIA_UNKNOWN,
	MEDIA_OCI_INDEX,            /* application/vnd.oci.image.index.v1+json */
	MEDIA_OCI_MANIFEST,         /* application/vnd.oci.image.manifest.v1+json */
	MEDIA_DOCKER_LIST,          /* application/vnd.docker.distribution.manifest.list.v2+json */
	MEDIA_DOCKER_MANIFEST,      /* application/vnd.docker.distribution.manifest.v2+json */
};
enum image_media image_media_parse(const char *s);


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

/* ---- the store's files, for workers (store.c, install.c, pull.c, import.c) ----- */
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

/* ---- HTTP/1.1 over TLS (http.c) ---------------------------------------------
 * A blocking client for one thread: GET only, HTTPS only (BearSSL, TLS 1.2,
 * SNI and the server's name checked; an IP-address host is checked against
 * the certificate's iPAddress names), bodies framed by Content-Length,
 * chunked or the connection's end. One connection is kept open between
 * requests to the same host and port. Every wait is bounded by the client's
 * timeout (REGISTRY_TIMEOUT_MS without a byte moving) and ends early when
 * *cancel becomes true (-ECANCELED). Transport errors use the codes a
 * caller can sort: ECONNREFUSED, ECONNRESET (also a connection closed too
 * early), ETIMEDOUT, EHOSTUNREACH, ENETUNREACH, EAGAIN (a name server that
 * did not answer) are worth another try; EPROTO (TLS refused, a malformed
 * response), ENXIO (no such host) are not. */
#define HTTP_HEAD_MAX 16384             /* bytes of a response's status line and headers */
#define HTTP_HEADERS_MAX 128            /* header lines in one response */
#define HTTP_REDIRECTS_MAX 5
#define HTTP_URL_MAX 4096
#define HTTP_CONNECT_TIMEOUT_MS 10000   /* per address of the host */

/* A response head, parsed in place into text. */
struct http_head {
	int status;                     /* 100..599 */
	int minor;                      /* HTTP/1.minor */
	const char *reason;             /* "" when none */
	struct { const char *name, *value; } h[HTTP_HEADERS_MAX];
	size_t n;
	size_t len;                     /* bytes of the head in the input, blank line included */
	char text[HTTP_HEAD_MAX + 1];
};

/* Parse the head at the start of p[0..len): 0 with h->len set (the body
 * follows); -EAGAIN when p does not hold a whole head yet; -EMSGSIZE when
 * the head is, or would be, longer than HTTP_HEAD_MAX; -EPROTO with the
 * reason in e when it is not an HTTP/1.x response head. */
int http_parse_head(struct http_head *h, const char *p, size_t len, struct err *e);
/* The value of the first header called name (any case), or NULL. */
const char *http_header(const struct http_head *h, const char *name);

/* A URL the client can fetch: https://HOST[:PORT][/PATH][?QUERY]. */
struct http_url {
	char host[256];                 /* without the brackets of an IPv6 literal */
	char port[8];                   /* "443" unless given */
	char authority[272];            /* for the Host header: "host", "host:5000", "[::1]:5000" */
	char path[HTTP_URL_MAX];        /* "/..." with the query, without a fragment */
};
int http_url_parse(const char *s, struct http_url *u, struct err *e);
/* Resolve ref (a Location header) against base, into out (HTTP_URL_MAX). */
int http_url_resolve(const char *base, const char *ref, char *out, struct err *e);

/* A WWW-Authenticate challenge: the first Bearer one, else the first Basic. */
enum www_scheme { WWW_NONE, WWW_BASIC, WWW_BEARER };
struct www_auth {
	enum www_scheme scheme;
	char realm[1024], service[256], scope[1024], error[64];
};
/* 0, or -EINVAL (malformed, or no Basic or Bearer challenge) with why in e. */
int www_auth_parse(const char *s, struct www_auth *a, struct err *e);

struct http_client;
/* anchors from ca_file (NULL: /etc/ssl/certs/ca-certificates.crt). */
int http_client_new(struct http_client **c, const char *ca_file, atomic_bool *cancel,
		    struct err *e);
void http_client_free(struct http_client *c);
/* Milliseconds a wait may last without a byte moving (REGISTRY_TIMEOUT_MS). */
void http_client_set_timeout(struct http_client *c, int ms);

struct http_req {
	const char *url;
	const char *authorization;      /* NULL: none; dropped on a redirect to another host */
	const char *accept;             /* NULL: none */
	uint64_t range_from;            /* > 0: "Range: bytes=N-" */
};
/* GET r->url and read the response's head, following up to HTTP_REDIRECTS_MAX
 * redirects (301, 302, 303, 307, 308). On 0, *head is the final response's
 * (valid until the next request) and its body is read with http_read; end
 * every response with http_end. Errors name the host and the step. */
int http_get(struct http_client *c, const struct http_req *r, const struct http_head **head,
	     struct err *e);
/* The URL the final response came from (after redirects). */
const char *http_url(const struct http_client *c);
/* Body bytes: a count, 0 at the end, or -errno (a connection closed before
 * the end is -ECONNRESET, "...after N of M bytes"). */
ssize_t http_read(struct http_client *c, void *p, size_t n, struct err *e);
/* The whole body into b (appended): 0, -EFBIG past max bytes, or -errno. */
int http_read_all(struct http_client *c, struct buf *b, size_t max, struct err *e);
/* Content-Length of the body; -1 when not given (chunked, or until close). */
int64_t http_length(const struct http_client *c);
/* Done with the response: the connection stays for the next request when
 * the body was read to its end (a short rest is read here), else it closes. */
void http_end(struct http_client *c);
/* Is this an error a later try may not see (see above)? */
bool http_transient(int code);

/* ---- registries (registry.c) ---------------------------------------------- */

/* The wait without a byte moving, instead of REGISTRY_TIMEOUT_MS (tests). */
void registry_set_timeout(struct registry *r, int ms);

#endif
