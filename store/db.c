/* db.c - the state database: open, refuse what we must not touch, migrate,
 * prepared statements and transactions. */
#include "store/internal.h"

#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define STORE_BUSY_MS 5000          /* another process holds the write lock */
/* SQLite's page cache, per connection. Its default (2 MB) grows with the
 * tables, i.e. with the number of containers, for the daemon's lifetime; a
 * page it no longer holds is a pread from the kernel's page cache (or the
 * WAL) away, which costs microseconds. So the daemon's memory stops growing
 * with the store at this much. */
#define STORE_CACHE_PRAGMA "PRAGMA cache_size=-256"       /* KiB */

/*
 * Forward migrations: migrations[i] takes user_version i to i + 1, inside
 * the same transaction that bumps user_version. Never edit a released entry;
 * append a new one and raise STORE_SCHEMA_VERSION. In WITHOUT ROWID tables,
 * declare the primary key columns first (see ports).
 */
static const char *const migrations[STORE_SCHEMA_VERSION] = {
	/* 0 -> 1: networks and IPAM. */
	"CREATE TABLE networks ("
	"  name TEXT PRIMARY KEY NOT NULL,"
	"  subnet4 BLOB, len4 INTEGER, gateway4 BLOB,"
	"  subnet6 BLOB, len6 INTEGER, gateway6 BLOB"
	") WITHOUT ROWID;"
	"CREATE TABLE ranges ("
	"  network TEXT NOT NULL REFERENCES networks(name) ON DELETE CASCADE,"
	"  family INTEGER NOT NULL, seq INTEGER NOT NULL,"
	"  first BLOB NOT NULL, last BLOB NOT NULL,"
	"  PRIMARY KEY (network, family, seq)"
	") WITHOUT ROWID;"
	/* The primary key is the last line of defence against handing an
	 * address out twice; the allocator never relies on hitting it. */
	"CREATE TABLE allocations ("
	"  network TEXT NOT NULL REFERENCES networks(name),"
	"  ip BLOB NOT NULL, family INTEGER NOT NULL,"
	"  owner TEXT NOT NULL, created INTEGER NOT NULL,"
	"  PRIMARY KEY (network, ip)"
	") WITHOUT ROWID;"
	"CREATE UNIQUE INDEX allocations_owner ON allocations (network, owner, family);"
	"CREATE TABLE ipam_last ("
	"  network TEXT NOT NULL REFERENCES networks(name) ON DELETE CASCADE,"
	"  family INTEGER NOT NULL, ip BLOB NOT NULL,"
	"  PRIMARY KEY (network, family)"
	") WITHOUT ROWID;"
	"CREATE TABLE ipam_sticky ("
	"  network TEXT NOT NULL REFERENCES networks(name) ON DELETE CASCADE,"
	"  owner TEXT NOT NULL, family INTEGER NOT NULL, ip BLOB NOT NULL,"
	"  PRIMARY KEY (network, owner, family)"
	") WITHOUT ROWID;",

	/* 1 -> 2: containers, published ports, events. */
	"CREATE TABLE containers ("
	"  name TEXT PRIMARY KEY NOT NULL,"
	"  config_hash TEXT NOT NULL DEFAULT '',"
	"  state TEXT NOT NULL DEFAULT 'created',"
	"  pid INTEGER NOT NULL DEFAULT 0,"
	"  netns TEXT NOT NULL DEFAULT '',"
	"  restarts INTEGER NOT NULL DEFAULT 0,"
	"  exit_status INTEGER NOT NULL DEFAULT 0,"
	"  started_at INTEGER NOT NULL DEFAULT 0"
	") WITHOUT ROWID;"
	/* host_ip: X'' for every address of the host. The key columns come
	 * first: SQLite 3.40's integrity_check misreports NOT NULL columns of a
	 * WITHOUT ROWID table declared before its key as NULL. */
	"CREATE TABLE ports ("
	"  host_ip BLOB NOT NULL, host_port INTEGER NOT NULL, proto INTEGER NOT NULL,"
	"  container TEXT NOT NULL REFERENCES containers(name) ON DELETE CASCADE,"
	"  network TEXT NOT NULL DEFAULT '',"
	"  family INTEGER NOT NULL, container_port INTEGER NOT NULL,"
	"  PRIMARY KEY (host_ip, host_port, proto)"
	") WITHOUT ROWID;"
	"CREATE INDEX ports_container ON ports (container);"
	"CREATE INDEX ports_port ON ports (host_port, proto);"
	"CREATE TABLE events ("
	"  id INTEGER PRIMARY KEY,"
	"  time INTEGER NOT NULL, kind TEXT NOT NULL,"
	"  object TEXT NOT NULL, message TEXT NOT NULL"
	");",

	/* 2 -> 3: CNI attachments, each with the request it was made from. */
	"CREATE TABLE cni ("
	"  name TEXT PRIMARY KEY NOT NULL,"
	"  spec TEXT NOT NULL"
	") WITHOUT ROWID;",

	/* 3 -> 4: images: which name points at which manifest (the blobs and
	 * layers are files under state_dir/images). layers: "DIGEST DIFF_ID
	 * SIZE" per layer, bottom first, newline-separated. */
	"CREATE TABLE images ("
	"  ref TEXT PRIMARY KEY NOT NULL,"
	"  digest TEXT NOT NULL,"
	"  config_digest TEXT NOT NULL,"
	"  layers TEXT NOT NULL,"
	"  size INTEGER NOT NULL DEFAULT 0,"
	"  created INTEGER NOT NULL DEFAULT 0,"
	"  stored INTEGER NOT NULL DEFAULT 0"
	") WITHOUT ROWID;"
	"CREATE INDEX images_digest ON images (digest);",

	/* 4 -> 5: events get an action and attributes (`berth events`); kind
	 * is their type. Earlier rows are moved into the new shape: an image
	 * event's object was its verb, a reconcile was a reload applied, a
	 * CNI event's message its action. */
	"ALTER TABLE events ADD COLUMN action TEXT NOT NULL DEFAULT '';"
	"ALTER TABLE events ADD COLUMN attrs TEXT NOT NULL DEFAULT '';"
	"UPDATE events SET action = object, object = '' WHERE kind = 'image';"
	"UPDATE events SET kind = 'reload', action = 'applied', object = '' WHERE kind = 'reconcile';"
	"UPDATE events SET action = message, message = '' WHERE kind = 'cni';",
};

static const char *const stmt_sql[ST__MAX] = {
	[ST_BEGIN] = "BEGIN IMMEDIATE",
	[ST_COMMIT] = "COMMIT",
	[ST_ROLLBACK] = "ROLLBACK",
	[ST_SYNC_NORMAL] = "PRAGMA synchronous=NORMAL",
	[ST_SYNC_FULL] = "PRAGMA synchronous=FULL",

	[ST_NET_GET] = "SELECT subnet4, len4, gateway4, subnet6, len6, gateway6"
		" FROM networks WHERE name = ?1",
	[ST_NET_PUT] = "INSERT INTO networks (name, subnet4, len4, gateway4, subnet6, len6, gateway6)"
		" VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7) ON CONFLICT (name) DO UPDATE SET"
		" subnet4 = ?2, len4 = ?3, gateway4 = ?4, subnet6 = ?5, len6 = ?6, gateway6 = ?7",
	[ST_NET_DEL] = "DELETE FROM networks WHERE name = ?1",
	[ST_NET_LIST] = "SELECT name FROM networks ORDER BY name",
	[ST_NET_ALLOCS] = "SELECT count(*), min(owner) FROM allocations WHERE network = ?1",
	[ST_RANGES_GET] = "SELECT first, last FROM ranges WHERE network = ?1 AND family = ?2"
		" ORDER BY seq",
	[ST_RANGES_CLEAR] = "DELETE FROM ranges WHERE network = ?1",
	[ST_RANGE_ADD] = "INSERT INTO ranges (network, family, seq, first, last)"
		" VALUES (?1, ?2, ?3, ?4, ?5)",

	[ST_ALLOC_OWNER] = "SELECT ip FROM allocations WHERE network = ?1 AND owner = ?2"
		" AND family = ?3",
	[ST_ALLOC_IP] = "SELECT owner FROM allocations WHERE network = ?1 AND ip = ?2",
	/* The allocator's only walk: the index from a candidate onwards. */
	[ST_ALLOC_WALK] = "SELECT ip FROM allocations WHERE network = ?1 AND ip >= ?2"
		" AND ip <= ?3 ORDER BY ip",
	[ST_ALLOC_COUNT] = "SELECT count(*) FROM allocations WHERE network = ?1 AND ip >= ?2"
		" AND ip <= ?3",
	[ST_ALLOC_ADD] = "INSERT INTO allocations (network, ip, family, owner, created)"
		" VALUES (?1, ?2, ?3, ?4, ?5)",
	[ST_ALLOC_RELEASE] = "DELETE FROM allocations WHERE network = ?1 AND owner = ?2",
	[ST_ALLOC_DEL_IP] = "DELETE FROM allocations WHERE network = ?1 AND ip = ?2",
	[ST_ALLOC_LIST] = "SELECT network, ip, family, owner, created FROM allocations"
		" ORDER BY network, ip",
	[ST_ALLOC_LIST_NET] = "SELECT network, ip, family, owner, created FROM allocations"
		" WHERE network = ?1 ORDER BY ip",
	[ST_LAST_GET] = "SELECT ip FROM ipam_last WHERE network = ?1 AND family = ?2",
	[ST_LAST_PUT] = "INSERT INTO ipam_last (network, family, ip) VALUES (?1, ?2, ?3)"
		" ON CONFLICT (network, family) DO UPDATE SET ip = ?3",
	[ST_STICKY_GET] = "SELECT ip FROM ipam_sticky WHERE network = ?1 AND owner = ?2"
		" AND family = ?3",
	[ST_STICKY_PUT] = "INSERT INTO ipam_sticky (network, owner, family, ip)"
		" VALUES (?1, ?2, ?3, ?4) ON CONFLICT (network, owner, family) DO UPDATE SET ip = ?4",
	[ST_STICKY_OWNERS] = "SELECT DISTINCT owner FROM ipam_sticky",
	[ST_STICKY_DEL_OWNER] = "DELETE FROM ipam_sticky WHERE owner = ?1",

	[ST_CT_PUT] = "INSERT INTO containers (name, config_hash, state, pid, netns, restarts,"
		" exit_status, started_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)"
		" ON CONFLICT (name) DO UPDATE SET config_hash = ?2, state = ?3, pid = ?4,"
		" netns = ?5, restarts = ?6, exit_status = ?7, started_at = ?8",
	[ST_CT_GET] = "SELECT name, config_hash, state, pid, netns, restarts, exit_status,"
		" started_at FROM containers WHERE name = ?1",
	[ST_CT_LIST] = "SELECT name, config_hash, state, pid, netns, restarts, exit_status,"
		" started_at FROM containers ORDER BY name",
	[ST_CT_DEL] = "DELETE FROM containers WHERE name = ?1",
	[ST_CT_STATE] = "UPDATE containers SET state = ?2, pid = ?3,"
		" exit_status = CASE WHEN ?4 >= 0 THEN ?4 ELSE exit_status END,"
		" started_at = CASE WHEN ?2 = 'running' THEN ?5 ELSE started_at END"
		" WHERE name = ?1",
	[ST_CT_RUNNING] = "SELECT 1 FROM containers WHERE name = ?1",

	/* Same port and protocol, and the same address or either side on
	 * every address (X''). */
	[ST_PORT_CONFLICT] = "SELECT container, family, host_ip, container_port FROM ports"
		" WHERE host_port = ?1 AND proto = ?2 AND (host_ip = ?3 OR host_ip = X'' OR ?3 = X'')"
		" LIMIT 1",
	[ST_PORT_ADD] = "INSERT INTO ports (container, network, family, host_ip, host_port,"
		" container_port, proto) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
	[ST_PORT_DEL] = "DELETE FROM ports WHERE container = ?1 AND host_ip = ?2"
		" AND host_port = ?3 AND proto = ?4",
	[ST_PORT_DEL_CT] = "DELETE FROM ports WHERE container = ?1",
	[ST_PORT_LIST] = "SELECT container, network, family, host_ip, host_port, container_port,"
		" proto FROM ports ORDER BY host_port, proto, host_ip",
	[ST_PORT_LIST_CT] = "SELECT container, network, family, host_ip, host_port, container_port,"
		" proto FROM ports WHERE container = ?1 ORDER BY host_port, proto, host_ip",

	[ST_EV_ADD] = "INSERT INTO events (time, kind, action, object, message, attrs)"
		" VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
	/* The ring: rowids only grow (the newest row is never deleted), so
	 * everything STORE_EVENTS_MAX behind the new one is the overflow. */
	[ST_EV_TRIM] = "DELETE FROM events WHERE id <= ?1",
	[ST_EV_LIST] = "SELECT id, time, kind, action, object, message, attrs FROM events"
		" WHERE id > ?1 ORDER BY id",
	[ST_EV_LAST] = "SELECT max(id) FROM events",

	[ST_CNI_PUT] = "INSERT INTO cni (name, spec) VALUES (?1, ?2)"
		" ON CONFLICT (name) DO UPDATE SET spec = ?2",
	[ST_CNI_DEL] = "DELETE FROM cni WHERE name = ?1",
	[ST_CNI_LIST] = "SELECT name, spec FROM cni ORDER BY name",

	[ST_IMG_GET] = "SELECT ref, digest, config_digest, layers, size, created, stored"
		" FROM images WHERE ref = ?1",
	[ST_IMG_LIST] = "SELECT ref, digest, config_digest, layers, size, created, stored"
		" FROM images ORDER BY ref",
	/* The image ref pointed at, when it is another manifest that no other
	 * name holds, stays: unnamed, under its digest. */
	[ST_IMG_KEEP] = "INSERT OR IGNORE INTO images (ref, digest, config_digest, layers, size,"
		" created, stored) SELECT digest, digest, config_digest, layers, size, created, stored"
		" FROM images AS old WHERE old.ref = ?1 AND old.digest != ?2 AND old.ref != old.digest"
		" AND NOT EXISTS (SELECT 1 FROM images AS o WHERE o.digest = old.digest"
		" AND o.ref != ?1)",
	/* A manifest that gets a name again is no longer an unnamed image. */
	[ST_IMG_UNNAMED_DEL] = "DELETE FROM images WHERE ref = ?2 AND ?1 != ?2",
	[ST_IMG_PUT] = "INSERT INTO images (ref, digest, config_digest, layers, size, created,"
		" stored) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7) ON CONFLICT (ref) DO UPDATE SET"
		" digest = ?2, config_digest = ?3, layers = ?4, size = ?5, created = ?6, stored = ?7",
	[ST_IMG_DEL] = "DELETE FROM images WHERE ref = ?1",
};

int store_sqlerr(struct store *s, int rc, const char *what, struct err *e)
{
	int code;

	switch (rc & 0xff) {
	case SQLITE_BUSY: case SQLITE_LOCKED: code = EBUSY; break;
	case SQLITE_NOMEM: code = ENOMEM; break;
	case SQLITE_READONLY: code = EROFS; break;
	case SQLITE_PERM: case SQLITE_AUTH: code = EACCES; break;
	case SQLITE_FULL: code = ENOSPC; break;
	case SQLITE_CONSTRAINT: code = EEXIST; break;
	case SQLITE_CANTOPEN:
		code = s->db && sqlite3_system_errno(s->db) ? sqlite3_system_errno(s->db) : EIO;
		break;
	case SQLITE_CORRUPT: case SQLITE_NOTADB: code = EBADMSG; break;
	default: code = EIO; break;
	}
	return err_set(e, code, "%s: %s: %s", s->path, what,
		       s->db ? sqlite3_errmsg(s->db) : sqlite3_errstr(rc));
}

int store_check_name(const char *kind, const char *name, struct err *e)
{
	if (!name || !*name)
		return err_set(e, EINVAL, "empty %s name", kind);
	if (strlen(name) >= STORE_NAME_MAX)
		return err_set(e, EINVAL, "%s name '%.20s...' is longer than %d bytes", kind, name,
			       STORE_NAME_MAX - 1);
	return 0;
}

sqlite3_stmt *store_stmt(struct store *s, enum store_stmt id, struct err *e)
{
	sqlite3_stmt *st = s->st[id];
	int rc;

	if (st) {
		sqlite3_reset(st);
		sqlite3_clear_bindings(st);
		return st;
	}
	rc = sqlite3_prepare_v3(s->db, stmt_sql[id], -1, SQLITE_PREPARE_PERSISTENT, &s->st[id],
				NULL);
	if (rc != SQLITE_OK) {
		store_sqlerr(s, rc, "prepare", e);
		return NULL;
	}
	return s->st[id];
}

int store_exec_stmt(struct store *s, sqlite3_stmt *st, const char *what, struct err *e)
{
	int rc = sqlite3_step(st);

	sqlite3_reset(st);
	if (rc != SQLITE_DONE && rc != SQLITE_ROW)
		return store_sqlerr(s, rc, what, e);
	return 0;
}

static int run(struct store *s, enum store_stmt id, const char *what, struct err *e)
{
	struct err local;
	sqlite3_stmt *st;

	if (!e)
		e = &local;
	st = store_stmt(s, id, e);
	return st ? store_exec_stmt(s, st, what, e) : -e->code;
}

int store_begin(struct store *s, bool full, struct err *e)
{
	full = full && s->ipam_fsync;
	/* synchronous is a connection setting read at commit time; switch it
	 * only between transactions, and only when it changes. */
	if (full != s->sync_full) {
		if (run(s, full ? ST_SYNC_FULL : ST_SYNC_NORMAL, "set synchronous", e) < 0)
			return -e->code;
		s->sync_full = full;
	}
	return run(s, ST_BEGIN, "begin transaction", e);
}

int store_commit(struct store *s, struct err *e)
{
	int ret = run(s, ST_COMMIT, "commit", e);

	if (ret < 0)
		store_rollback(s);
	return ret;
}

void store_rollback(struct store *s)
{
	if (!sqlite3_get_autocommit(s->db))
		run(s, ST_ROLLBACK, "rollback", NULL);
}

void store_ipam_fsync(struct store *s, bool on)
{
	s->ipam_fsync = on;
}

void store_ip_enc(const struct ip_addr *a, uint8_t out[STORE_IPLEN])
{
	if (a->family == AF_INET6) {
		memcpy(out, a->b, STORE_IPLEN);
		return;
	}
	memset(out, 0, 10);
	out[10] = out[11] = 0xff;
	memcpy(out + 12, a->b, 4);
}

int store_bind_ip(sqlite3_stmt *st, int idx, const struct ip_addr *a)
{
	uint8_t b[STORE_IPLEN];

	store_ip_enc(a, b);
	return sqlite3_bind_blob(st, idx, b, STORE_IPLEN, SQLITE_TRANSIENT);
}

bool store_column_ip(sqlite3_stmt *st, int col, int fam, struct ip_addr *out)
{
	const uint8_t *b = sqlite3_column_blob(st, col);

	if (!b || sqlite3_column_bytes(st, col) != STORE_IPLEN)
		return false;
	ip_from_bytes(out, store_af(fam), fam == 6 ? b : b + 12);
	return true;
}

void store_copy_text(char *dst, size_t size, sqlite3_stmt *st, int col)
{
	const unsigned char *t = sqlite3_column_text(st, col);

	snprintf(dst, size, "%s", t ? (const char *)t : "");
}

/*
 * Switching the journal mode of a new file needs an exclusive lock, and SQLite
 * reports SQLITE_BUSY for it at once, without the busy handler, while another
 * process is creating the same file: retry for as long as the busy timeout.
 */
static int exec_retry(struct store *s, const char *sql)
{
	int rc;

	for (int waited = 0; ; waited += 2) {
		rc = sqlite3_exec(s->db, sql, NULL, NULL, NULL);
		if ((rc & 0xff) != SQLITE_BUSY || waited >= STORE_BUSY_MS)
			return rc;
		usleep(2000);
	}
}

/* One integer from a one-row statement such as "PRAGMA user_version". */
static int query_int(struct store *s, const char *sql, int64_t *out, struct err *e)
{
	sqlite3_stmt *st;
	int rc = sqlite3_prepare_v2(s->db, sql, -1, &st, NULL);

	if (rc != SQLITE_OK)
		return store_sqlerr(s, rc, sql, e);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW)
		*out = sqlite3_column_int64(st, 0);
	sqlite3_finalize(st);
	if (rc != SQLITE_ROW)
		return store_sqlerr(s, rc, sql, e);
	return 0;
}

/* quick_check reads every page once: a damaged file is refused at start-up
 * rather than failing later in the middle of a container's start. */
static int check_integrity(struct store *s, struct err *e)
{
	sqlite3_stmt *st;
	int rc = sqlite3_prepare_v2(s->db, "PRAGMA quick_check(1)", -1, &st, NULL);
	char first[160] = "";

	if (rc != SQLITE_OK)
		return store_sqlerr(s, rc, "integrity check", e);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW)
		store_copy_text(first, sizeof(first), st, 0);
	sqlite3_finalize(st);
	if (rc != SQLITE_ROW)
		return store_sqlerr(s, rc, "integrity check", e);
	for (char *c = first; *c; c++)
		if (*c == '\n')
			*c = ' ';
	if (strcmp(first, "ok"))
		return err_set(e, EBADMSG, "%s: the database is corrupt (%s)", s->path, first);
	return 0;
}

static int migrate(struct store *s, struct err *e)
{
	int64_t v, tables;
	char sql[64];
	int rc;

	if (query_int(s, "PRAGMA user_version", &v, e) < 0)
		return -e->code;
	if (v > STORE_SCHEMA_VERSION)
		return err_set(e, EPROTO, "%s: schema version %lld is newer than this berth "
			       "understands (%d); upgrade berth", s->path, (long long)v,
			       STORE_SCHEMA_VERSION);
	if (v == STORE_SCHEMA_VERSION)
		return 0;
	if (store_begin(s, true, e) < 0)
		return -e->code;
	/* Re-read under the write lock: another process may have migrated. */
	if (query_int(s, "PRAGMA user_version", &v, e) < 0)
		goto fail;
	if (v == 0) {
		if (query_int(s, "SELECT count(*) FROM sqlite_master", &tables, e) < 0)
			goto fail;
		if (tables) {
			err_set(e, EPROTO, "%s: not a berth database (it has tables but no "
				"schema version); refusing to touch it", s->path);
			goto fail;
		}
	}
	for (; v < STORE_SCHEMA_VERSION; v++) {
		rc = sqlite3_exec(s->db, migrations[v], NULL, NULL, NULL);
		if (rc != SQLITE_OK) {
			store_sqlerr(s, rc, "schema migration", e);
			err_wrap(e, "migrating from version %lld", (long long)v);
			goto fail;
		}
	}
	snprintf(sql, sizeof(sql), "PRAGMA user_version=%d", STORE_SCHEMA_VERSION);
	rc = sqlite3_exec(s->db, sql, NULL, NULL, NULL);
	if (rc != SQLITE_OK) {
		store_sqlerr(s, rc, "set schema version", e);
		goto fail;
	}
	return store_commit(s, e);
fail:
	store_rollback(s);
	return -e->code;
}

int store_open(struct store **out, const char *state_dir, struct err *e)
{
	struct err local;
	struct store *s;
	struct stat sb;
	int64_t v;
	int rc;

	if (!e)
		e = &local;
	*out = NULL;
	/* 0700 for what we create: the state is nobody else's business */
	if (mkdir_p("state directory", state_dir, 0700, e) < 0)
		return -e->code;
	s = calloc(1, sizeof(*s));
	if (!s)
		return err_set(e, ENOMEM, "out of memory");
	s->ipam_fsync = true;
	if ((size_t)snprintf(s->path, sizeof(s->path), "%s/state.db", state_dir) >= sizeof(s->path)) {
		err_set(e, ENAMETOOLONG, "state directory '%s': path too long", state_dir);
		goto fail;
	}
	if (stat(s->path, &sb) == 0 && !S_ISREG(sb.st_mode)) {
		err_set(e, EISDIR, "%s: not a regular file; refusing to touch it", s->path);
		goto fail;
	}
	rc = sqlite3_open_v2(s->path, &s->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, NULL);
	if (rc != SQLITE_OK) {
		store_sqlerr(s, rc, "open", e);
		goto fail;
	}
	sqlite3_extended_result_codes(s->db, 1);
	/* SQLite falls back to read-only when it may not write the file; we
	 * would only find out at the first allocation. */
	if (sqlite3_db_readonly(s->db, "main") == 1) {
		err_set(e, EACCES, "%s: not writable (check its owner and permissions)", s->path);
		goto fail;
	}
	sqlite3_busy_timeout(s->db, STORE_BUSY_MS);
	/* The first read of the file: garbage fails here with "file is not a
	 * database", which we report and leave alone. */
	rc = exec_retry(s, "PRAGMA journal_mode=WAL");
	if (rc != SQLITE_OK) {
		store_sqlerr(s, rc, "open", e);
		goto refuse;
	}
	rc = sqlite3_exec(s->db, "PRAGMA foreign_keys=ON; PRAGMA synchronous=NORMAL; "
			  STORE_CACHE_PRAGMA, NULL, NULL, NULL);
	if (rc != SQLITE_OK) {
		store_sqlerr(s, rc, "open", e);
		goto refuse;
	}
	if (query_int(s, "PRAGMA user_version", &v, e) < 0)
		goto refuse;
	if (v > 0 && v <= STORE_SCHEMA_VERSION && check_integrity(s, e) < 0)
		goto refuse;
	if (migrate(s, e) < 0)
		goto refuse;
	*out = s;
	return 0;
refuse:
	if (e->code == EBADMSG || e->code == EIO) {
		size_t n = strlen(e->msg);
		snprintf(e->msg + n, sizeof(e->msg) - n, "; the file is left untouched: "
			 "move it away to start with an empty state");
	}
fail:
	rc = -e->code;
	store_close(s);
	return rc;
}

int store_open_ro(struct store **out, const char *state_dir, struct err *e)
{
	struct store *s;
	int64_t v = 0;
	int rc;

	*out = NULL;
	s = calloc(1, sizeof(*s));
	if (!s)
		return err_set(e, ENOMEM, "out of memory");
	if ((size_t)snprintf(s->path, sizeof(s->path), "%s/state.db", state_dir) >= sizeof(s->path)) {
		err_set(e, ENAMETOOLONG, "state directory '%s': path too long", state_dir);
		goto fail;
	}
	if (access(s->path, F_OK) < 0) {
		err_sys(e, errno, "%s", s->path);
		goto fail;
	}
	rc = sqlite3_open_v2(s->path, &s->db, SQLITE_OPEN_READONLY, NULL);
	if (rc != SQLITE_OK) {
		store_sqlerr(s, rc, "open", e);
		goto fail;
	}
	sqlite3_extended_result_codes(s->db, 1);
	sqlite3_busy_timeout(s->db, STORE_BUSY_MS);
	if (query_int(s, "PRAGMA user_version", &v, e) < 0)
		goto fail;
	if (v != STORE_SCHEMA_VERSION) {
		err_set(e, EPROTO, "%s: schema version %lld, not %d", s->path, (long long)v,
			STORE_SCHEMA_VERSION);
		goto fail;
	}
	*out = s;
	return 0;
fail:
	rc = -e->code;
	store_close(s);
	return rc;
}

void store_close(struct store *s)
{
	if (!s)
		return;
	for (int i = 0; i < ST__MAX; i++)
		sqlite3_finalize(s->st[i]);
	sqlite3_close(s->db);
	free(s);
}
