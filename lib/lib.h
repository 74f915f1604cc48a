/* lib.h - the leaf module every other one may use: error context, IP
 * address/prefix/range helpers, buffers, growable arrays and the event loop.
 * It depends on libc only and holds no state. */
#ifndef BERTH_LIB_H
#define BERTH_LIB_H

#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/types.h>

#define container_of(ptr, type, member) \
	((type *)(void *)((char *)(ptr) - offsetof(type, member)))
#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))

/* FNV-1a, 64 bits, from HASH64_INIT: names derived from text (nf_tables
 * objects) and identities; not for anything an attacker may choose. */
#define HASH64_INIT 14695981039346656037ull
static inline uint64_t hash64(uint64_t h, const void *p, size_t n)
{
	const uint8_t *s = p;

	while (n--)
		h = (h ^ *s++) * 1099511628211ull;
	return h;
}

/*
 * Errors (STYLE H5). A function that can fail returns 0 (or a count) on
 * success and -errno on failure, and fills an optional struct err with what
 * it was doing, to which object, and why. Callers going up prefix their own
 * context with err_wrap(); only the edge (CLI, daemon log, control reply)
 * prints e->msg, once.
 *
 *   err_set  - a validation error: the message is exactly the text given.
 *   err_sys  - a failed call: "<text>: <strerror> (<ENAME>)", or
 *              "<text>: <ENAME>" for a code the C library has no words for
 *              (musl: "No error information" for EXFULL and others).
 *   err_wrap - "<text>: <previous message>"; keeps the code.
 * All three return -code so that `return err_set(e, EINVAL, ...)` reads well;
 * e may be NULL, in which case only the code travels.
 */
#define ERR_MSG_MAX 512
struct err {
	int code;                   /* positive errno; 0 while no error */
	char msg[ERR_MSG_MAX];
};

int err_set(struct err *e, int code, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
int err_sys(struct err *e, int code, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
int err_wrap(struct err *e, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
void err_clear(struct err *e);
/* "EEXIST" for EEXIST (every Linux errno has its name); "errno 4095" for
 * other codes. */
const char *errno_name(int code, char buf[16]);
/* How err_sys words a code, into buf (ERRNO_TEXT_MAX is enough for every
 * one): "File exists (EEXIST)", or "EXFULL" alone where the C library has
 * no text. Returns buf. */
#define ERRNO_TEXT_MAX 80
const char *errno_text(int code, char *buf, size_t size);

/*
 * Addresses. One type for both families, in network byte order, so that
 * comparison is memcmp and arithmetic is big-endian carry over the bytes.
 * IPv4 uses b[0..3]; the rest is zero.
 */
#define IP_STRLEN 46                /* INET6_ADDRSTRLEN */
#define IP_PREFIX_STRLEN (IP_STRLEN + 4)

struct ip_addr {
	uint8_t family;             /* AF_INET or AF_INET6 */
	uint8_t b[16];
};

struct ip_prefix {
	struct ip_addr addr;        /* network address: host bits are zero */
	uint8_t len;
};

struct ip_range {                   /* inclusive at both ends, same family */
	struct ip_addr first, last;
};

static inline unsigned ip_bits(const struct ip_addr *a)
{
	return a->family == AF_INET6 ? 128 : 32;
}

/* "tcp", "udp", "sctp" for IPPROTO_TCP/UDP/SCTP; "?" otherwise. */
const char *ip_proto_name(int proto);

/* mkdir -p: create path and its missing parents with mode (existing ones are
 * left as they are). Returns 0 or -errno with "create WHAT X: ..." in e,
 * what naming the directory's role ("state directory"). */
int mkdir_p(const char *what, const char *path, unsigned mode, struct err *e);
/* Sleep ms milliseconds, through signals that interrupt it. */
void sleep_ms(unsigned ms);
/* Write all of data to fd (a short write is retried). 0 or -errno. */
int write_all(int fd, const void *data, size_t len);
/* fsync a directory, so that a rename or unlink in it survives a power cut. */
int fsync_dir(const char *path, struct err *e);
/* Replace path with data: written to path.tmp (mode), renamed over it, so a
 * reader sees the old file or the new one, whole. durable: also flushed to
 * the disk, file and directory (the configuration, on flash that may lose
 * power); without, a crash of berth is survived but not a power cut
 * (runtime state under /run). 0 or -errno with the reason in e. */
int file_write_atomic(const char *path, const void *data, size_t len, unsigned mode,
		      bool durable, struct err *e);

/* Parse a literal "10.0.0.1" or "fd00::1" (no brackets, no scope, no port).
 * Returns 0 or -EINVAL with the reason in e. */
int ip_parse(const char *s, struct ip_addr *a, struct err *e);
/* Format into buf (IP_STRLEN bytes) and return buf. */
const char *ip_format(const struct ip_addr *a, char *buf);
void ip_from_v4(struct ip_addr *a, uint32_t host_order);
void ip_from_bytes(struct ip_addr *a, int family, const void *bytes);
/* Total order: IPv4 before IPv6, then numerically. */
int ip_cmp(const struct ip_addr *a, const struct ip_addr *b);
bool ip_equal(const struct ip_addr *a, const struct ip_addr *b);
bool ip_is_zero(const struct ip_addr *a);
/* a += n within its family. Returns 0, or -ERANGE (a unchanged) on overflow. */
int ip_add(struct ip_addr *a, uint64_t n);
/* Distance last - first, saturated at UINT64_MAX. Requires first <= last. */
uint64_t ip_distance(const struct ip_addr *first, const struct ip_addr *last);

/* Parse "A/LEN". Host bits set is an error that says which prefix was meant:
 * "10.88.0.1/16: host bits set (did you mean 10.88.0.0/16?)". */
int ip_prefix_parse(const char *s, struct ip_prefix *p, struct err *e);
/* Parse "A/LEN" where A may be any host of the prefix (an interface address);
 * *addr gets A, *p the network. */
int ip_prefix_parse_host(const char *s, struct ip_addr *addr, struct ip_prefix *p,
			 struct err *e);
const char *ip_prefix_format(const struct ip_prefix *p, char *buf);
bool ip_prefix_contains(const struct ip_prefix *p, const struct ip_addr *a);
/* Is inner entirely inside outer (equal counts)? */
bool ip_prefix_contains_prefix(const struct ip_prefix *outer, const struct ip_prefix *inner);
/* First and last address of the prefix (network and broadcast for IPv4). */
void ip_prefix_first(const struct ip_prefix *p, struct ip_addr *a);
void ip_prefix_last(const struct ip_prefix *p, struct ip_addr *a);

/* Ethernet addresses: "02:42:0a:58:00:05" (hex digits, either case) into 6
 * bytes, 0 or -1; formatted lower case into buf (MAC_STRLEN bytes). */
#define MAC_STRLEN 18
int mac_parse(const char *s, uint8_t mac[6]);
const char *mac_format(const uint8_t mac[6], char *buf);

/* Parse "A-B" (A <= B, same family). Returns 0 or -EINVAL with the reason. */
int ip_range_parse(const char *s, struct ip_range *r, struct err *e);
const char *ip_range_format(const struct ip_range *r, char *buf); /* 2*IP_STRLEN+1 */
bool ip_range_contains(const struct ip_range *r, const struct ip_addr *a);
/* Number of addresses in r, saturated at UINT64_MAX. */
uint64_t ip_range_size(const struct ip_range *r);
/* Iterate: a starts at r->first; each call advances it by one. Returns false
 * (a unchanged) once a is r->last, so every address is visited exactly once:
 *     a = r.first; do { ... } while (ip_range_next(&r, &a));             */
bool ip_range_next(const struct ip_range *r, struct ip_addr *a);


/* Base64 (RFC 4648, standard alphabet). encode writes 4 * ((n + 2) / 3) + 1
 * bytes (NUL-terminated; returns the length without it). decode accepts the
 * text with or without its '=' padding and returns the number of bytes, or
 * -EINVAL (not base64), -ERANGE (more than size bytes). */
size_t base64_encode(const void *in, size_t n, char *out);
ssize_t base64_decode(const char *in, size_t n, void *out, size_t size);

/*
 * Growable byte buffer for building replies and output. Always NUL-terminated
 * when len > 0 or after any append. Allocation failure is fatal (daemon and
 * CLI alike treat OOM as unrecoverable, like redis and crun).
 */
struct buf {
	char *data;
	size_t len, cap;
};

void buf_init(struct buf *b);
void buf_free(struct buf *b);
void buf_reset(struct buf *b);                   /* len = 0, keeps memory */
void buf_append(struct buf *b, const void *p, size_t n);
void buf_puts(struct buf *b, const char *s);
void buf_printf(struct buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Append s as a JSON string literal, quotes included. */
void buf_json_string(struct buf *b, const char *s);
/* The same, or null when s is NULL or empty (absent values are null). */
void buf_json_string_or_null(struct buf *b, const char *s);
/* A point in time as JSON: an RFC 3339 UTC string with seconds
 * ("2026-12-07T16:47:37Z"), or null when unix_seconds <= 0 (never). */
void buf_json_time(struct buf *b, int64_t unix_seconds);
/* The same text without quotes into s (at least 21 bytes); "-" for never. */
char *time_rfc3339(int64_t unix_seconds, char *s, size_t size);

/*
 * Name index: objects found by name in O(1), where a list scanned per lookup
 * would make work per container grow with the number of containers. It holds
 * pointers to the caller's objects (not copies); name_of returns an object's
 * name, which must not change while the object is in the index. Names
 * compare case-insensitively (ASCII), as container and network names do.
 * All zero but name_of is a valid empty index:
 *	struct name_index ix = { .name_of = run_name };
 *
 *   name_index_get(ix, name) - the object named name, or NULL.
 *   name_index_put(ix, obj)  - add obj, replacing an object of the same name;
 *                              returns the replaced object, or obj when none
 *                              was; NULL (ix unchanged) when out of memory.
 *   name_index_del(ix, name) - remove and return the object named name, or NULL.
 *   name_index_free(ix)      - free the table (not the objects); ix is empty.
 */
struct name_index {
	void **slot;
	size_t cap, n;              /* cap: 0 or a power of two, >= 2 n */
	const char *(*name_of)(const void *obj);
};

void *name_index_get(const struct name_index *ix, const char *name);
void *name_index_put(struct name_index *ix, void *obj);
void *name_index_del(struct name_index *ix, const char *name);
void name_index_free(struct name_index *ix);

/*
 * Growable arrays. ARRAY(type) is an anonymous struct
 *	{ type *v; size_t n, cap; }
 * holding n elements in v[0..n) with room for cap. All zero ({ 0 }) is a
 * valid empty array. A named array (for a parameter, say) is a plain struct
 * with the same three members; n and cap may share a narrower unsigned type
 * where a record is kept compact, and the array then refuses to grow past
 * that type's maximum.
 *
 *   array_push(a)       - append one zeroed element and return a pointer to
 *                         it; NULL (a unchanged, errno ENOMEM) when out of
 *                         memory.
 *   array_reserve(a, k) - make room for k elements in all, so that pushes up
 *                         to n == k do not move v; 0, or -ENOMEM (a
 *                         unchanged). It never shrinks.
 *   array_free(a)       - free v and leave a empty, ready for reuse.
 *
 * a is a pointer to the array and k a count; each is evaluated exactly once.
 * Growing moves v: a push or a reserve invalidates every pointer into the
 * array, so keep indices across them. Capacity doubles (from 4, or straight
 * to k), and all size arithmetic is checked: a request beyond PTRDIFF_MAX
 * bytes or the count type fails as out of memory instead of allocating short.
 * What out of memory means is the caller's: -ENOMEM up the stack, or abort()
 * where that caller treats it as fatal. Elements may be removed by lowering
 * n (and moving the tail) directly.
 */
#define ARRAY(type) struct { __typeof__(type) *v; size_t n, cap; }

/* The growth step behind the macros, not for direct use: with want > *cap and
 * want <= max_count, realloc v to the new capacity and store it in *cap.
 * Returns the new v, or NULL (v and *cap untouched) with errno ENOMEM. */
void *array_grow(void *v, size_t *cap, size_t want, size_t size, size_t max_count);

#define array_reserve(a, k) __extension__ ({					\
	__typeof__(a) array_r_ = (a);						\
	size_t array_r_want_ = (k);						\
	int array_r_ret_ = 0;							\
	_Static_assert((__typeof__(array_r_->cap))-1 > 0 &&			\
		       sizeof(array_r_->n) == sizeof(array_r_->cap),		\
		       "array: n and cap must be of one unsigned type");	\
	if (array_r_want_ > array_r_->cap) {					\
		size_t array_r_cap_ = array_r_->cap;				\
		void *array_r_v_ = array_grow(array_r_->v, &array_r_cap_,	\
					      array_r_want_, sizeof(*array_r_->v), \
					      (__typeof__(array_r_->cap))-1);	\
		if (array_r_v_) {						\
			array_r_->v = array_r_v_;				\
			array_r_->cap = (__typeof__(array_r_->cap))array_r_cap_; \
		} else {							\
			array_r_ret_ = -ENOMEM;					\
		}								\
	}									\
	array_r_ret_;								\
})

#define array_push(a) __extension__ ({						\
	__typeof__(a) array_p_ = (a);						\
	__typeof__(array_p_->v) array_p_slot_ = NULL;				\
	if (array_reserve(array_p_, (size_t)array_p_->n + 1) == 0) {		\
		array_p_slot_ = &array_p_->v[array_p_->n++];			\
		memset(array_p_slot_, 0, sizeof(*array_p_slot_));		\
	}									\
	array_p_slot_;								\
})

#define array_free(a) do {							\
	__typeof__(a) array_f_ = (a);						\
	free(array_f_->v);							\
	array_f_->v = NULL;							\
	array_f_->n = array_f_->cap = 0;					\
} while (0)

/*
 * JSON reader (RFC 8259), strict and allocation-light, for configuration
 * handed to us as JSON (a CNI netconf). json_parse() checks the whole text
 * (one value; no comments, trailing commas, duplicate keys, invalid UTF-8,
 * lone surrogates or leading zeros) and records one token per value in one
 * growable array; nothing else is allocated. The getters read the caller's
 * text in place (it must stay unchanged while the doc is used) and unescape
 * strings only into buffers the caller gives.
 *
 * Tokens are laid out in document order: an array's token is followed by its
 * elements, an object's by key, value, key, value... (the key is a string
 * token, its value the token right after it). Parse errors say where, as a
 * 0-based byte offset: "byte 57: expected ',' or '}', found ']'". Getter
 * errors say what was found ("expected a string, found an object"); the
 * caller adds which field with err_wrap().
 */
#define JSON_MAX_DEPTH 64               /* arrays and objects nested */
/* One limit for every JSON berth reads, images' included (IMAGE_JSON_MAX is
 * this): 4 MiB, what docker's registry accepts for a manifest. An image
 * configuration carries the image's whole history (each step's command
 * line), and one built in many steps is legitimately over 1 MiB: a smaller
 * limit here would refuse real images, a larger one in image/ would read
 * documents this parser then refuses. What the size costs is the tokens
 * (20 bytes each, and a hostile text could make one per 2 bytes):
 * JSON_MAX_TOKENS bounds them to what a 1 MiB text could ever take, about
 * 10 MiB, while a real 4 MiB configuration (long strings) needs a fraction
 * of it. */
#define JSON_MAX_SIZE (4u << 20)        /* bytes of text */
#define JSON_MAX_TOKENS (1u << 19)      /* values (each key counts as one) */

enum json_type { JSON_NULL, JSON_FALSE, JSON_TRUE, JSON_NUMBER, JSON_STRING, JSON_ARRAY,
		 JSON_OBJECT };

struct json_tok {
	uint32_t start, end;        /* the value's bytes in the text: [start, end) */
	uint32_t next;              /* index of the first token after the value's own */
	uint32_t n;                 /* elements of an array, members of an object */
	uint8_t type;               /* enum json_type */
};

struct json_doc {
	const char *text;           /* borrowed */
	size_t len;
	ARRAY(struct json_tok) tok; /* tok.v[0] is the root */
};

/* Parse text[0..len) into d (whose old contents are dropped; a zeroed d is
 * fine). Returns 0, or -EINVAL with "byte N: what" in e (-ENOMEM, -E2BIG
 * for text over JSON_MAX_SIZE or more than JSON_MAX_TOKENS values). d is empty after a failure; json_free() it
 * either way. */
int json_parse(struct json_doc *d, const char *text, size_t len, struct err *e);
void json_free(struct json_doc *d);

/* The root value; NULL for an empty (unparsed, failed) doc. */
const struct json_tok *json_root(const struct json_doc *d);
/* The member key of object obj, NULL when obj is NULL, not an object, or
 * has no such key. Keys compare after unescaping, byte for byte. */
const struct json_tok *json_get(const struct json_doc *d, const struct json_tok *obj,
				const char *key);
/* Iterate an array's elements, or an object's keys (each key's value is the
 * token after it, key + 1); NULL when t is not a container or at the end:
 *	for (el = json_first(d, arr); el; el = json_next(d, arr, el))      */
const struct json_tok *json_first(const struct json_doc *d, const struct json_tok *t);
const struct json_tok *json_next(const struct json_doc *d, const struct json_tok *parent,
				 const struct json_tok *cur);
/* "a string", "an object", "null", ... for messages. */
const char *json_type_name(enum json_type t);

/* Getters: 0 (or the string's length) on success; -EINVAL with what was
 * found when t is NULL or of another type, -ERANGE when it does not fit.
 *   json_string - unescaped (\uXXXX and surrogate pairs to UTF-8), NUL-
 *                 terminated into buf[size]; a string holding \u0000 is
 *                 refused (C strings cannot carry it).
 *   json_str_eq - is t a string equal to s (after unescaping)?
 *   json_int    - an integer (no fraction or exponent) within [min, max].
 *   json_bool   - true or false. */
int json_string(const struct json_doc *d, const struct json_tok *t, char *buf, size_t size,
		struct err *e);
bool json_str_eq(const struct json_doc *d, const struct json_tok *t, const char *s);
int json_int(const struct json_doc *d, const struct json_tok *t, long long min, long long max,
	     long long *out, struct err *e);
int json_bool(const struct json_tok *t, bool *out, struct err *e);

/*
 * Event loop (STYLE H2, H4): epoll plus a sorted timer list. Handles are
 * embedded in their owner (the loop never allocates) and callbacks recover
 * the owner with container_of. The loop lives in the daemon's context; tests
 * make their own. Deleting an fd inside a callback also drops events that
 * already fired for it in the same round, so a callback never sees a handle
 * that was removed before its turn.
 */
struct loop_fd;
struct loop_timer;
typedef void loop_fd_fn(struct loop_fd *f, uint32_t events);  /* EPOLLIN, ... */
typedef void loop_timer_fn(struct loop_timer *t);

struct loop_fd {
	int fd;
	loop_fd_fn *cb;
	bool registered;            /* owned by the loop */
};

struct loop_timer {
	loop_timer_fn *cb;
	uint64_t deadline_ms;       /* owned by the loop */
	struct loop_timer *prev, *next;
	bool pending;               /* owned by the loop */
};

#define LOOP_MAX_EVENTS 64
struct loop {
	int epfd;
	bool stop;
	struct loop_timer *timers;  /* sorted by deadline */
	struct { uint32_t events; struct loop_fd *fd; } fired[LOOP_MAX_EVENTS];
	int nfired, cur;            /* the round being dispatched */
};

int loop_init(struct loop *l, struct err *e);
void loop_free(struct loop *l);
/* Watch f->fd (made non-blocking by the caller) for events; f->cb is called. */
int loop_fd_add(struct loop *l, struct loop_fd *f, uint32_t events, struct err *e);
int loop_fd_mod(struct loop *l, struct loop_fd *f, uint32_t events, struct err *e);
/* Stop watching; safe inside any callback. Does not close the fd. */
void loop_fd_del(struct loop *l, struct loop_fd *f);
/* (Re)arm t to fire once, ms milliseconds from now. */
void loop_timer_set(struct loop *l, struct loop_timer *t, uint64_t ms);
void loop_timer_cancel(struct loop *l, struct loop_timer *t);
uint64_t loop_now_ms(void);         /* CLOCK_MONOTONIC */
/* Wait at most max_wait_ms (-1: until the next timer or event) and dispatch
 * one round. Returns the number of callbacks run, or -errno. */
int loop_run_once(struct loop *l, int max_wait_ms);
/* Run rounds until loop_stop(). Returns 0, or -errno from epoll_wait. */
int loop_run(struct loop *l);
void loop_stop(struct loop *l);

#endif
