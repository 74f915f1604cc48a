/* state.c - containers, published ports and the bounded event log. */
#include "store/internal.h"

#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static int bind_text(sqlite3_stmt *st, int i, const char *t)
{
	return sqlite3_bind_text(st, i, t ? t : "", -1, SQLITE_STATIC);
}

/* Run one write statement as its own transaction; returns sqlite3_changes()
 * (the statement is bound by the caller through store_stmt first). */
static int write_one(struct store *s, sqlite3_stmt *st, const char *what, struct err *e)
{
	int n;

	if (store_exec_stmt(s, st, what, e) < 0) {
		store_rollback(s);
		return -e->code;
	}
	n = sqlite3_changes(s->db);
	if (store_commit(s, e) < 0)
		return -e->code;
	return n;
}

/* ---- containers --------------------------------------------------------- */

static int check_ct(const struct store_container *c, struct err *e)
{
	if (store_check_name("container", c->name, e) < 0)
		return -e->code;
	if (!c->state[0])
		return err_set(e, EINVAL, "container %s: empty state", c->name);
	return 0;
}

int store_container_put(struct store *s, const struct store_container *c, struct err *e)
{
	STORE_ERR_LOCAL(e);
	sqlite3_stmt *st;
	int ret;

	if (check_ct(c, e) < 0)
		return -e->code;
	if (store_begin(s, false, e) < 0)
		return -e->code;
	if (!(st = store_stmt(s, ST_CT_PUT, e))) {
		store_rollback(s);
		return -e->code;
	}
	bind_text(st, 1, c->name);
	bind_text(st, 2, c->config_hash);
	bind_text(st, 3, c->state);
	sqlite3_bind_int(st, 4, c->pid);
	bind_text(st, 5, c->netns);
	sqlite3_bind_int64(st, 6, c->restarts);
	sqlite3_bind_int(st, 7, c->exit_status);
	sqlite3_bind_int64(st, 8, c->started_at);
	ret = write_one(s, st, "store container", e);
	return ret < 0 ? ret : 0;
}

static void ct_read(sqlite3_stmt *st, struct store_container *c)
{
	memset(c, 0, sizeof(*c));
	store_copy_text(c->name, sizeof(c->name), st, 0);
	store_copy_text(c->config_hash, sizeof(c->config_hash), st, 1);
	store_copy_text(c->state, sizeof(c->state), st, 2);
	c->pid = sqlite3_column_int(st, 3);
	store_copy_text(c->netns, sizeof(c->netns), st, 4);
	c->restarts = (unsigned)sqlite3_column_int64(st, 5);
	c->exit_status = sqlite3_column_int(st, 6);
	c->started_at = sqlite3_column_int64(st, 7);
}

int store_container_get(struct store *s, const char *name, struct store_container *out,
			struct err *e)
{
	STORE_ERR_LOCAL(e);
	sqlite3_stmt *st;
	int rc;

	if (store_check_name("container", name, e) < 0)
		return -e->code;
	if (!(st = store_stmt(s, ST_CT_GET, e)))
		return -e->code;
	bind_text(st, 1, name);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW)
		ct_read(st, out);
	sqlite3_reset(st);
	if (rc == SQLITE_DONE)
		return err_set(e, ENOENT, "container %s does not exist", name);
	if (rc != SQLITE_ROW)
		return store_sqlerr(s, rc, "read container", e);
	return 0;
}

int store_container_list(struct store *s, store_container_fn *fn, void *ctx, struct err *e)
{
	STORE_ERR_LOCAL(e);
	ARRAY(struct store_container) r = { 0 };
	sqlite3_stmt *st;
	int rc, ret = 0;

	if (!(st = store_stmt(s, ST_CT_LIST, e)))
		return -e->code;
	/* Collect first: fn may call back into the store. */
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		struct store_container *c = array_push(&r);
		if (!c) {
			err_set(e, ENOMEM, "out of memory");
			break;
		}
		ct_read(st, c);
	}
	sqlite3_reset(st);
	if (rc == SQLITE_ROW)
		ret = -e->code;
	else if (rc != SQLITE_DONE)
		ret = store_sqlerr(s, rc, "list containers", e);
	for (size_t i = 0; i < r.n && ret == 0; i++)
		ret = fn(ctx, &r.v[i]);
	array_free(&r);
	return ret;
}

int store_container_delete(struct store *s, const char *name, struct err *e)
{
	STORE_ERR_LOCAL(e);
	sqlite3_stmt *st;
	int n;

	if (store_check_name("container", name, e) < 0)
		return -e->code;
	if (store_begin(s, false, e) < 0)
		return -e->code;
	if (!(st = store_stmt(s, ST_CT_DEL, e))) {
		store_rollback(s);
		return -e->code;
	}
	bind_text(st, 1, name);
	n = write_one(s, st, "delete container", e);   /* ports go by ON DELETE CASCADE */
	if (n == 0)
		return err_set(e, ENOENT, "container %s does not exist", name);
	return n < 0 ? n : 0;
}

int store_container_set_state(struct store *s, const char *name, const char *state,
			      int pid, int exit_status, struct err *e)
{
	STORE_ERR_LOCAL(e);
	sqlite3_stmt *st;
	int n;

	if (store_check_name("container", name, e) < 0)
		return -e->code;
	if (!state || !*state || strlen(state) >= sizeof(((struct store_container *)0)->state))
		return err_set(e, EINVAL, "container %s: bad state '%s'", name, state ? state : "");
	if (store_begin(s, false, e) < 0)
		return -e->code;
	if (!(st = store_stmt(s, ST_CT_STATE, e))) {
		store_rollback(s);
		return -e->code;
	}
	bind_text(st, 1, name);
	bind_text(st, 2, state);
	sqlite3_bind_int(st, 3, pid);
	sqlite3_bind_int(st, 4, exit_status);
	sqlite3_bind_int64(st, 5, (int64_t)time(NULL));
	n = write_one(s, st, "update container state", e);
	if (n == 0)
		return err_set(e, ENOENT, "container %s does not exist", name);
	return n < 0 ? n : 0;
}

/* ---- ports -------------------------------------------------------------- */

static int bind_host_ip(sqlite3_stmt *st, int i, const struct ip_addr *a)
{
	if (!a->family)
		return sqlite3_bind_blob(st, i, "", 0, SQLITE_STATIC);
	return store_bind_ip(st, i, a);
}

/* "8080/tcp" or "127.0.0.1:8080/tcp" or "[::1]:8080/tcp" */
static const char *port_str(const struct ip_addr *a, unsigned port, int proto, char *buf,
			    size_t size)
{
	char ip[IP_STRLEN];

	if (!a->family)
		snprintf(buf, size, "%u/%s", port, ip_proto_name(proto));
	else if (a->family == AF_INET6)
		snprintf(buf, size, "[%s]:%u/%s", ip_format(a, ip), port, ip_proto_name(proto));
	else
		snprintf(buf, size, "%s:%u/%s", ip_format(a, ip), port, ip_proto_name(proto));
	return buf;
}

int store_port_add(struct store *s, const struct store_port *p, struct err *e)
{
	STORE_ERR_LOCAL(e);
	char want[IP_STRLEN + 24], have[IP_STRLEN + 24], owner[STORE_NAME_MAX];
	sqlite3_stmt *st;
	int rc, ret;

	if (store_check_name("container", p->container, e) < 0)
		return -e->code;
	port_str(&p->host_ip, p->host_port, p->proto, want, sizeof(want));
	if (p->proto != IPPROTO_TCP && p->proto != IPPROTO_UDP && p->proto != IPPROTO_SCTP)
		return err_set(e, EPROTONOSUPPORT, "container %s: port %u: protocol must be tcp, "
			       "udp or sctp", p->container, p->host_port);
	if (!p->host_port || !p->container_port)
		return err_set(e, EINVAL, "container %s: port 0 cannot be published", p->container);
	if (p->host_ip.family && p->host_ip.family != AF_INET && p->host_ip.family != AF_INET6)
		return err_set(e, EINVAL, "container %s: %s: bad host address", p->container, want);
	if (store_begin(s, false, e) < 0)
		return -e->code;
	if (!(st = store_stmt(s, ST_CT_RUNNING, e)))
		goto fail;
	bind_text(st, 1, p->container);
	rc = sqlite3_step(st);
	sqlite3_reset(st);
	if (rc == SQLITE_DONE) {
		err_set(e, ENOENT, "container %s does not exist", p->container);
		goto fail;
	}
	if (!(st = store_stmt(s, ST_PORT_CONFLICT, e)))
		goto fail;
	sqlite3_bind_int(st, 1, p->host_port);
	sqlite3_bind_int(st, 2, p->proto);
	bind_host_ip(st, 3, &p->host_ip);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		struct ip_addr other = { 0 };
		int fam = sqlite3_column_int(st, 1);
		if (fam)
			store_column_ip(st, 2, fam, &other);
		store_copy_text(owner, sizeof(owner), st, 0);
		port_str(&other, p->host_port, p->proto, have, sizeof(have));
		sqlite3_reset(st);
		if (strcmp(want, have))
			err_set(e, EADDRINUSE, "%s: %s is already published by %s", want, have, owner);
		else
			err_set(e, EADDRINUSE, "%s is already published by %s", want, owner);
		goto fail;
	}
	sqlite3_reset(st);
	if (rc != SQLITE_DONE) {
		store_sqlerr(s, rc, "check port", e);
		goto fail;
	}
	if (!(st = store_stmt(s, ST_PORT_ADD, e)))
		goto fail;
	bind_text(st, 1, p->container);
	bind_text(st, 2, p->network);
	sqlite3_bind_int(st, 3, p->host_ip.family ? store_fam(p->host_ip.family) : 0);
	bind_host_ip(st, 4, &p->host_ip);
	sqlite3_bind_int(st, 5, p->host_port);
	sqlite3_bind_int(st, 6, p->container_port);
	sqlite3_bind_int(st, 7, p->proto);
	ret = write_one(s, st, "publish port", e);
	return ret < 0 ? ret : 0;
fail:
	store_rollback(s);
	return -e->code;
}

int store_port_delete(struct store *s, const char *container, const struct store_port *p,
		      struct err *e)
{
	STORE_ERR_LOCAL(e);
	sqlite3_stmt *st;

	if (store_check_name("container", container, e) < 0)
		return -e->code;
	if (store_begin(s, false, e) < 0)
		return -e->code;
	if (!(st = store_stmt(s, p ? ST_PORT_DEL : ST_PORT_DEL_CT, e))) {
		store_rollback(s);
		return -e->code;
	}
	bind_text(st, 1, container);
	if (p) {
		bind_host_ip(st, 2, &p->host_ip);
		sqlite3_bind_int(st, 3, p->host_port);
		sqlite3_bind_int(st, 4, p->proto);
	}
	return write_one(s, st, "delete port", e);
}

int store_port_list(struct store *s, const char *container, store_port_fn *fn, void *ctx,
		    struct err *e)
{
	STORE_ERR_LOCAL(e);
	ARRAY(struct store_port) r = { 0 };
	sqlite3_stmt *st;
	int rc, ret = 0;

	if (!(st = store_stmt(s, container ? ST_PORT_LIST_CT : ST_PORT_LIST, e)))
		return -e->code;
	if (container)
		bind_text(st, 1, container);
	/* Collect first: fn may call back into the store. */
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		struct store_port *p = array_push(&r);
		int fam = sqlite3_column_int(st, 2);
		if (!p) {
			err_set(e, ENOMEM, "out of memory");
			break;
		}
		store_copy_text(p->container, sizeof(p->container), st, 0);
		store_copy_text(p->network, sizeof(p->network), st, 1);
		if (fam)
			store_column_ip(st, 3, fam, &p->host_ip);
		p->host_port = (uint16_t)sqlite3_column_int(st, 4);
		p->container_port = (uint16_t)sqlite3_column_int(st, 5);
		p->proto = (uint8_t)sqlite3_column_int(st, 6);
	}
	sqlite3_reset(st);
	if (rc == SQLITE_ROW)
		ret = -e->code;
	else if (rc != SQLITE_DONE)
		ret = store_sqlerr(s, rc, "list ports", e);
	for (size_t i = 0; i < r.n && ret == 0; i++)
		ret = fn(ctx, &r.v[i]);
	array_free(&r);
	return ret;
}

/* ---- events ------------------------------------------------------------- */

int64_t store_event_put(struct store *s, const struct store_event *ev, struct err *e)
{
	STORE_ERR_LOCAL(e);
	struct store_event added;
	sqlite3_stmt *st;
	int64_t id;

	if (!ev->type[0])
		return err_set(e, EINVAL, "event without a type");
	if (store_begin(s, false, e) < 0)
		return -e->code;
	if (!(st = store_stmt(s, ST_EV_ADD, e)))
		goto fail;
	added = *ev;
	if (!added.time)
		added.time = (int64_t)time(NULL);
	sqlite3_bind_int64(st, 1, added.time);
	bind_text(st, 2, added.type);
	bind_text(st, 3, added.action);
	bind_text(st, 4, added.object);
	bind_text(st, 5, added.message);
	bind_text(st, 6, added.attrs);
	if (store_exec_stmt(s, st, "add event", e) < 0)
		goto fail;
	id = sqlite3_last_insert_rowid(s->db);
	if (!(st = store_stmt(s, ST_EV_TRIM, e)))
		goto fail;
	sqlite3_bind_int64(st, 1, id - STORE_EVENTS_MAX);
	if (store_exec_stmt(s, st, "trim events", e) < 0)
		goto fail;
	if (store_commit(s, e) < 0)
		return -e->code;
	added.id = id;
	if (s->on_event)
		s->on_event(s->on_event_ctx, &added);
	return id;
fail:
	store_rollback(s);
	return -e->code;
}

int store_event_add(struct store *s, const char *kind, const char *object,
		    const char *message, struct err *e)
{
	struct store_event ev = { 0 };
	int64_t id;

	if (!kind || !*kind)
		return err_set(e, EINVAL, "event without a kind");
	snprintf(ev.type, sizeof(ev.type), "%s", kind);
	snprintf(ev.object, sizeof(ev.object), "%s", object ? object : "");
	snprintf(ev.message, sizeof(ev.message), "%s", message ? message : "");
	id = store_event_put(s, &ev, e);
	return id < 0 ? (int)id : 0;
}

int store_event_list(struct store *s, int64_t after_id, store_event_fn *fn, void *ctx,
		     struct err *e)
{
	STORE_ERR_LOCAL(e);
	struct store_event ev;
	sqlite3_stmt *st;
	int rc, ret = 0;

	if (!(st = store_stmt(s, ST_EV_LIST, e)))
		return -e->code;
	sqlite3_bind_int64(st, 1, after_id);
	/* One row at a time, not collected first: a thousand events would be
	 * a megabyte at once (fn must not use the store, see store.h). */
	while (ret == 0 && (rc = sqlite3_step(st)) == SQLITE_ROW) {
		ev.id = sqlite3_column_int64(st, 0);
		ev.time = sqlite3_column_int64(st, 1);
		store_copy_text(ev.type, sizeof(ev.type), st, 2);
		store_copy_text(ev.action, sizeof(ev.action), st, 3);
		store_copy_text(ev.object, sizeof(ev.object), st, 4);
		store_copy_text(ev.message, sizeof(ev.message), st, 5);
		store_copy_text(ev.attrs, sizeof(ev.attrs), st, 6);
		ret = fn(ctx, &ev);
	}
	sqlite3_reset(st);
	if (ret == 0 && rc != SQLITE_DONE)
		ret = store_sqlerr(s, rc, "list events", e);
	return ret;
}

int64_t store_event_last(struct store *s, struct err *e)
{
	STORE_ERR_LOCAL(e);
	sqlite3_stmt *st;
	int64_t id = 0;
	int rc;

	if (!(st = store_stmt(s, ST_EV_LAST, e)))
		return -e->code;
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW)
		id = sqlite3_column_int64(st, 0);
	sqlite3_reset(st);
	if (rc != SQLITE_ROW)
		return store_sqlerr(s, rc, "last event", e);
	return id;
}

void store_event_hook(struct store *s, store_event_hook_fn *fn, void *ctx)
{
	s->on_event = fn;
	s->on_event_ctx = ctx;
}

/* ---- CNI attachments ---------------------------------------------------- */

int store_cni_put(struct store *s, const char *name, const char *spec, struct err *e)
{
	STORE_ERR_LOCAL(e);
	sqlite3_stmt *st;
	int ret;

	if (store_check_name("attachment", name, e) < 0)
		return -e->code;
	if (store_begin(s, false, e) < 0)
		return -e->code;
	if (!(st = store_stmt(s, ST_CNI_PUT, e))) {
		store_rollback(s);
		return -e->code;
	}
	bind_text(st, 1, name);
	bind_text(st, 2, spec);
	ret = write_one(s, st, "store attachment", e);
	return ret < 0 ? ret : 0;
}

int store_cni_delete(struct store *s, const char *name, struct err *e)
{
	STORE_ERR_LOCAL(e);
	sqlite3_stmt *st;
	int n;

	if (store_check_name("attachment", name, e) < 0)
		return -e->code;
	if (store_begin(s, false, e) < 0)
		return -e->code;
	if (!(st = store_stmt(s, ST_CNI_DEL, e))) {
		store_rollback(s);
		return -e->code;
	}
	bind_text(st, 1, name);
	n = write_one(s, st, "delete attachment", e);
	return n < 0 ? n : 0;
}

int store_cni_list(struct store *s, store_cni_fn *fn, void *ctx, struct err *e)
{
	STORE_ERR_LOCAL(e);
	ARRAY(struct { char name[STORE_NAME_MAX]; char *spec; }) r = { 0 };
	sqlite3_stmt *st;
	int rc, ret = 0;

	if (!(st = store_stmt(s, ST_CNI_LIST, e)))
		return -e->code;
	/* Collect first: fn may call back into the store. */
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		const unsigned char *spec = sqlite3_column_text(st, 1);
		__typeof__(r.v) a = array_push(&r);

		if (!a || !(a->spec = strdup(spec ? (const char *)spec : ""))) {
			if (a)
				r.n--;
			err_set(e, ENOMEM, "out of memory");
			break;
		}
		store_copy_text(a->name, sizeof(a->name), st, 0);
	}
	sqlite3_reset(st);
	if (rc == SQLITE_ROW)
		ret = -e->code;
	else if (rc != SQLITE_DONE)
		ret = store_sqlerr(s, rc, "list attachments", e);
	for (size_t i = 0; i < r.n; i++) {
		if (ret == 0)
			ret = fn(ctx, r.v[i].name, r.v[i].spec);
		free(r.v[i].spec);
	}
	array_free(&r);
	return ret;
}
