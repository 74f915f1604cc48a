/* internal.h - what the store's files share: the handle, the prepared
 * statement cache, transactions and the address encoding. Not for other modules. */
#ifndef BERTH_STORE_INTERNAL_H
#define BERTH_STORE_INTERNAL_H

#include "store/store.h"

#include <limits.h>
#include <sqlite3.h>

/* Hot statements, prepared once per connection (SQLITE_PREPARE_PERSISTENT)
 * and reset after each use: parsing SQL costs more than running it. */
enum store_stmt {
	ST_BEGIN, ST_COMMIT, ST_ROLLBACK, ST_SYNC_NORMAL, ST_SYNC_FULL,
	ST_NET_GET, ST_NET_PUT, ST_NET_DEL, ST_NET_LIST, ST_NET_ALLOCS,
	ST_RANGES_GET, ST_RANGES_CLEAR, ST_RANGE_ADD,
	ST_ALLOC_OWNER, ST_ALLOC_IP, ST_ALLOC_WALK, ST_ALLOC_COUNT, ST_ALLOC_ADD,
	ST_ALLOC_RELEASE, ST_ALLOC_DEL_IP, ST_ALLOC_LIST, ST_ALLOC_LIST_NET,
	ST_LAST_GET, ST_LAST_PUT, ST_STICKY_GET, ST_STICKY_PUT, ST_STICKY_OWNERS,
	ST_STICKY_DEL_OWNER,
	ST_CT_PUT, ST_CT_GET, ST_CT_LIST, ST_CT_DEL, ST_CT_STATE, ST_CT_RUNNING,
	ST_PORT_CONFLICT, ST_PORT_ADD, ST_PORT_DEL, ST_PORT_DEL_CT, ST_PORT_LIST,
	ST_PORT_LIST_CT,
	ST_EV_ADD, ST_EV_TRIM, ST_EV_LIST, ST_EV_LAST,
	ST_CNI_PUT, ST_CNI_DEL, ST_CNI_LIST,
	ST_IMG_GET, ST_IMG_LIST, ST_IMG_KEEP, ST_IMG_UNNAMED_DEL, ST_IMG_PUT, ST_IMG_DEL,
	ST__MAX
};

struct store {
	sqlite3 *db;
	char path[PATH_MAX];        /* state_dir/state.db, for messages */
	bool ipam_fsync;            /* FULL for IPAM commits (default) */
	bool sync_full;             /* what the connection is set to now */
	sqlite3_stmt *st[ST__MAX];
	store_event_hook_fn *on_event;      /* store_event_hook */
	void *on_event_ctx;
};

/* Public entry points accept e == NULL; inside, e always points somewhere. */
#define STORE_ERR_LOCAL(e) struct err e##_local_; if (!(e)) (e) = &e##_local_

/* The statement, reset with its bindings cleared, or NULL with e set. */
sqlite3_stmt *store_stmt(struct store *s, enum store_stmt id, struct err *e);
/* Run a statement that returns no rows to completion; resets it. */
int store_exec_stmt(struct store *s, sqlite3_stmt *st, const char *what, struct err *e);
/* BEGIN IMMEDIATE (the write lock now, so two processes never interleave a
 * read-decide-write); full: fsync at commit. */
int store_begin(struct store *s, bool full, struct err *e);
int store_commit(struct store *s, struct err *e);
void store_rollback(struct store *s);
/* Map an SQLite result to -errno with "<path>: <what>: <sqlite message>". */
int store_sqlerr(struct store *s, int rc, const char *what, struct err *e);
/* Validate a name argument ("network", "owner", ...). */
int store_check_name(const char *kind, const char *name, struct err *e);

/* Addresses are 16-byte BLOBs: IPv6 as is, IPv4 as ::ffff:a.b.c.d, so the
 * BLOB order is numeric order within a family and (network, ip) is unique
 * across families. The family column (4 or 6) says which. */
#define STORE_IPLEN 16
void store_ip_enc(const struct ip_addr *a, uint8_t out[STORE_IPLEN]);
int store_bind_ip(sqlite3_stmt *st, int idx, const struct ip_addr *a);
/* Read column col as an address of family fam (4 or 6); false if malformed. */
bool store_column_ip(sqlite3_stmt *st, int col, int fam, struct ip_addr *out);
static inline int store_fam(int af) { return af == AF_INET6 ? 6 : 4; }
static inline int store_af(int fam) { return fam == 6 ? AF_INET6 : AF_INET; }
void store_copy_text(char *dst, size_t size, sqlite3_stmt *st, int col);

#endif
