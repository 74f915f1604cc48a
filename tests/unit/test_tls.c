/* test_tls.c - certificates for remote management: what `berth tls` issues is
 * what BearSSL's validator accepts (and refuses when expired, from another CA,
 * for another address, or not pinned); PEM/DER loading errors; keys round trip;
 * the shared request line handling; a deferred reply over a real TLS
 * connection, and one whose client goes away first. */
#include "runtime/ctl/conn.h"
#include "runtime/ctl/tls.h"
#include "t.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

struct issued {
	struct tls_keypair ca, leaf;
	struct buf ca_der, leaf_der;
};

static void issue(struct issued *s, int64_t nb, int64_t na, const struct ip_addr *ip)
{
	struct tls_cert_req ca_req = { .cn = "test CA", .ca = true, .not_before = nb, .not_after = na };
	struct tls_cert_req leaf_req = { .cn = "gw1", .server = true, .client = true,
		.dns = (const char *const[]){ "gw1" }, .n_dns = 1, .ips = ip, .n_ips = ip ? 1 : 0,
		.not_before = nb, .not_after = na };
	const uint8_t *dn;
	size_t dn_len;

	buf_init(&s->ca_der);
	buf_init(&s->leaf_der);
	T_EQ(tls_keygen(&s->ca, NULL), 0, "a P-256 key is generated");
	T_EQ(tls_keygen(&s->leaf, NULL), 0, "and another");
	T_EQ(tls_cert_issue(&ca_req, &s->ca, NULL, 0, &s->ca, &s->ca_der, NULL), 0, "a CA certificate is issued");
	T_EQ(tls_cert_subject((uint8_t *)s->ca_der.data, s->ca_der.len, &dn, &dn_len), 0,
	     "its subject can be read back");
	T_EQ(tls_cert_issue(&leaf_req, &s->leaf, dn, dn_len, &s->ca, &s->leaf_der, NULL), 0,
	     "a leaf certificate is issued by it");
}

static void issued_free(struct issued *s)
{
	buf_free(&s->ca_der);
	buf_free(&s->leaf_der);
}

/* Run one certificate through the validator as a peer's chain would go. */
static unsigned validate(struct tls_x509 *x, const struct buf *leaf)
{
	const br_x509_class **vt = &x->vtable;

	(*vt)->start_chain(vt, NULL);
	(*vt)->start_cert(vt, (uint32_t)leaf->len);
	(*vt)->append(vt, (const unsigned char *)leaf->data, leaf->len);
	(*vt)->end_cert(vt);
	return (*vt)->end_chain(vt);
}

static void test_issue_validate(void)
{
	int64_t now = (int64_t)time(NULL);
	struct ip_addr ip, other;
	struct issued s, stranger, old;
	struct tls_anchors a = { 0 }, a2 = { 0 };
	struct tls_x509 *x = malloc(sizeof(*x));
	uint8_t h[32];

	ip_parse("192.0.2.7", &ip, NULL);
	ip_parse("192.0.2.8", &other, NULL);
	issue(&s, now - 60, now + 86400, &ip);
	T_EQ(tls_parse_anchors(s.ca_der.data, s.ca_der.len, "ca", &a, NULL), 0, "the CA (DER) loads as an anchor");
	T_EQ((int)a.n, 1, "one anchor");
	T_OK(a.v[0].flags & BR_X509_TA_CA, "BearSSL sees it as a CA");

	tls_x509_init(x, &a);
	T_EQ((int)validate(x, &s.leaf_der), 0, "BearSSL accepts the leaf our DER writer made");
	T_OK(x->have_spki, "the validator keeps the leaf's SPKI hash");
	T_EQ(tls_cert_spki_sha256((uint8_t *)s.leaf_der.data, s.leaf_der.len, h), 0, "the SPKI hash is found");
	T_OK(!memcmp(h, x->spki, 32), "and is the same");
	T_OK(tls_cert_has_ip((uint8_t *)s.leaf_der.data, s.leaf_der.len, &ip), "the iPAddress name is there");
	T_OK(!tls_cert_has_ip((uint8_t *)s.leaf_der.data, s.leaf_der.len, &other), "another address is not");

	tls_x509_init(x, &a);
	x->check_ip = true;
	x->ip = ip;
	T_EQ((int)validate(x, &s.leaf_der), 0, "the address check passes for the named address");
	tls_x509_init(x, &a);
	x->check_ip = true;
	x->ip = other;
	T_EQ((int)validate(x, &s.leaf_der), BR_ERR_X509_BAD_SERVER_NAME, "and fails for another one");
	T_OK(x->ip_failed, "saying why");

	tls_x509_init(x, &a);
	x->pins = (const uint8_t (*)[32])h;
	x->n_pins = 1;
	T_EQ((int)validate(x, &s.leaf_der), 0, "a pinned key passes");
	memset(h, 0, sizeof(h));
	tls_x509_init(x, &a);
	x->pins = (const uint8_t (*)[32])h;
	x->n_pins = 1;
	T_EQ((int)validate(x, &s.leaf_der), BR_ERR_X509_NOT_TRUSTED, "a key that is not pinned fails");
	T_OK(x->pin_failed, "saying why");

	{
		/* a leaf over TLS_EE_MAX (many names, as public certificates have):
		 * refused where its key or addresses matter, fine for the registry
		 * client's DNS-name checks (ee_optional) */
		static char names[400][40];
		const char *dns[400];
		struct tls_cert_req req = { .cn = "big", .server = true, .dns = dns, .n_dns = 400,
					    .not_before = now - 60, .not_after = now + 86400 };
		const uint8_t *dn;
		size_t dn_len;
		struct buf big;

		for (int i = 0; i < 400; i++) {
			snprintf(names[i], sizeof(names[i]), "host-%03d.registry.example", i);
			dns[i] = names[i];
		}
		buf_init(&big);
		tls_cert_subject((uint8_t *)s.ca_der.data, s.ca_der.len, &dn, &dn_len);
		T_EQ(tls_cert_issue(&req, &s.leaf, dn, dn_len, &s.ca, &big, NULL), 0, "a leaf with 400 names");
		T_OK(big.len > TLS_EE_MAX, "is larger than TLS_EE_MAX (%zu bytes)", big.len);
		tls_x509_init(x, &a);
		T_EQ((int)validate(x, &big), BR_ERR_X509_LIMIT_EXCEEDED, "is refused where its key matters");
		tls_x509_init(x, &a);
		x->ee_optional = true;
		T_EQ((int)validate(x, &big), 0, "is accepted when only the chain and names matter");
		T_OK(!x->have_spki, "without an SPKI hash");
		tls_x509_init(x, &a);
		x->ee_optional = true;
		x->check_ip = true;
		x->ip = ip;
		T_EQ((int)validate(x, &big), BR_ERR_X509_LIMIT_EXCEEDED, "but not when its addresses matter");
		buf_free(&big);
	}
	{
		/* a system bundle's worth of anchors (~150): more than the old 32 */
		struct tls_anchors many = { 0 };
		struct buf pem;

		buf_init(&pem);
		for (int i = 0; i < 200; i++)
			tls_pem(&pem, "CERTIFICATE", s.ca_der.data, s.ca_der.len);
		T_EQ(tls_parse_anchors(pem.data, pem.len, "bundle", &many, NULL), 0, "200 anchors load");
		T_EQ((int)many.n, 200, "all of them");
		tls_x509_init(x, &many);
		T_EQ((int)validate(x, &s.leaf_der), 0, "and validate a leaf");
		tls_anchors_free(&many);
		T_EQ((int)many.n, 0, "freed, empty");
		buf_free(&pem);
	}

	issue(&stranger, now - 60, now + 86400, NULL);
	tls_x509_init(x, &a);
	T_EQ((int)validate(x, &stranger.leaf_der), BR_ERR_X509_NOT_TRUSTED, "a leaf of another CA fails");

	issue(&old, now - 30 * 86400, now - 86400, NULL);
	T_EQ(tls_parse_anchors(old.ca_der.data, old.ca_der.len, "ca", &a2, NULL), 0, "an expired CA still loads");
	tls_x509_init(x, &a2);
	T_EQ((int)validate(x, &old.leaf_der), BR_ERR_X509_EXPIRED, "an expired leaf fails as expired");
	T_STREQ(tls_strerror(BR_ERR_X509_EXPIRED), "certificate expired or not yet valid", "in words");

	free(x);
	tls_anchors_free(&a);
	tls_anchors_free(&a2);
	issued_free(&s);
	issued_free(&stranger);
	issued_free(&old);
}

static void test_pem_and_keys(void)
{
	int64_t now = (int64_t)time(NULL);
	struct issued s;
	struct buf pem;
	struct tls_creds c = { 0 };
	struct tls_keypair k;
	struct err e;

	issue(&s, now - 60, now + 86400, NULL);
	buf_init(&pem);
	tls_pem(&pem, "CERTIFICATE", s.leaf_der.data, s.leaf_der.len);
	tls_pem(&pem, "CERTIFICATE", s.ca_der.data, s.ca_der.len);
	T_EQ(tls_parse_chain(pem.data, pem.len, "chain", &c, &e), 0, "a PEM chain of two loads");
	T_EQ((int)c.chain_len, 2, "both certificates");
	T_EQ((int)c.issuer_key_type, BR_KEYTYPE_EC, "the leaf was signed by an EC key");
	T_EQ(tls_parse_key(pem.data, pem.len, "chain", &c, &e), -EINVAL, "a certificate is not a key");
	T_STREQ(e.msg, "chain: no PRIVATE KEY in the file", "and the error says so");
	buf_reset(&pem);
	tls_key_pem(&pem, &s.leaf);
	T_OK(strstr(pem.data, "-----BEGIN EC PRIVATE KEY-----") == pem.data, "keys are written as SEC1 PEM");
	T_EQ(tls_parse_key(pem.data, pem.len - 1, "key", &c, &e), 0,
	     "BearSSL reads the key back, even without the final newline");
	T_EQ(c.key_type, BR_KEYTYPE_EC, "as an EC key");
	T_EQ(tls_keypair_from_creds(&k, &c, &e), 0, "usable for signing");
	T_EQ(tls_parse_chain(s.leaf_der.data, s.leaf_der.len, "leaf", &c, &e), 0, "with its certificate");
	T_EQ(tls_creds_check(&c, &e), 0, "the key belongs to the certificate");
	tls_creds_free(&c);
	T_EQ(tls_parse_chain(s.ca_der.data, s.ca_der.len, "ca", &c, &e), 0, "another certificate");
	T_EQ(tls_parse_key(pem.data, pem.len, "key", &c, &e), 0, "and the same key");
	T_EQ(tls_creds_check(&c, &e), -EINVAL, "do not match");
	T_STREQ(e.msg, "the key does not belong to the certificate", "and the error says so");
	tls_creds_free(&c);
	T_EQ(tls_parse_key(pem.data, pem.len, "key", &c, &e), 0, "(the key again)");
	T_OK(k.pk.qlen == s.leaf.pk.qlen && !memcmp(k.pk.q, s.leaf.pk.q, k.pk.qlen),
	     "with the same public key");
	tls_creds_free(&c);

	T_EQ(tls_parse_chain("hello", 5, "x.crt", &c, &e), -EINVAL, "text without PEM is refused");
	T_STREQ(e.msg, "x.crt: no PEM object found", "clearly");
	T_EQ(tls_parse_chain("-----BEGIN CERTIFICATE-----\n!!!!\n-----END CERTIFICATE-----\n", 60,
			     "x.crt", &c, &e), -EINVAL, "bad base64 is refused");
	T_STREQ(e.msg, "x.crt: malformed PEM", "clearly");
	T_EQ(tls_parse_chain("\x30\x03\x02\x01\x01", 5, "x.der", &c, &e), -EINVAL, "a DER non-certificate is refused");
	T_OK(strstr(e.msg, "x.der: not a valid certificate") == e.msg, "naming the file");
	T_EQ(tls_load_chain("/nonexistent/c.crt", "[remote] cert", &c, &e), -ENOENT, "a missing file");
	T_STREQ(e.msg, "[remote] cert /nonexistent/c.crt: No such file or directory (ENOENT)", "names the key and path");
	buf_free(&pem);
	issued_free(&s);
}

static int echo_handler(void *ctx, const struct ctl_request *rq, struct buf *out, struct err *e)
{
	(void)ctx;
	if (!strcmp(rq->argv[0], "fail"))
		return err_set(e, EINVAL, "it failed\non two lines");
	buf_printf(out, "%s read_only=%d\n", rq->argv[0], rq->read_only);
	return 0;
}

static void test_handle_line(void)
{
	struct ctl_request who = { .read_only = true };
	char line[64];
	struct buf out;

	buf_init(&out);
	strcpy(line, "ps");
	ctl_handle_line(echo_handler, NULL, &who, line, 2, &out);
	T_STREQ(out.data, "ok\nps read_only=1\n", "the handler sees the read-only flag");
	buf_reset(&out);
	strcpy(line, "fail");
	ctl_handle_line(echo_handler, NULL, &who, line, 4, &out);
	T_STREQ(out.data, "error it failed on two lines\n", "an error is one line");
	buf_reset(&out);
	memcpy(line, "ps\0x", 5);
	ctl_handle_line(echo_handler, NULL, &who, line, 4, &out);
	T_STREQ(out.data, "error malformed request: NUL byte\n", "a NUL byte is refused");
	buf_free(&out);
}

/* ---- deferred replies over TLS --------------------------------------------- */

struct fixture {
	struct loop loop;
	struct loop_timer later;
	struct ctl_reply *r;
	bool deferred, cancelled, finished;
};

static void fx_finish(struct loop_timer *t)
{
	struct fixture *fx = container_of(t, struct fixture, later);
	struct buf body;

	buf_init(&body);
	buf_puts(&body, "done\n");
	fx->finished = true;
	ctl_reply_finish(fx->r, 0, &body, NULL);
	fx->r = NULL;
	buf_free(&body);
}

static void fx_cancel(struct ctl_reply *r, void *arg)
{
	struct fixture *fx = arg;

	fx->cancelled = r == fx->r;
}

static int fx_handler(void *ctx, const struct ctl_request *rq, struct buf *out, struct err *e)
{
	struct fixture *fx = ctx;

	if (!strcmp(rq->argv[0], "now")) {
		buf_printf(out, "now read_only=%d\n", rq->read_only);
		return 0;
	}
	if (strcmp(rq->argv[0], "wait"))
		return err_set(e, EINVAL, "unknown command '%s'", rq->argv[0]);
	fx->r = ctl_defer(rq, fx_cancel, fx);
	if (!fx->r)
		return err_set(e, EBUSY, "cannot defer");
	fx->deferred = true;
	fx->finished = fx->cancelled = false;
	loop_timer_set(&fx->loop, &fx->later, 300);
	return CTL_PENDING;
}

static void write_file(const char *path, const struct buf *b)
{
	FILE *f = fopen(path, "w");

	if (!f || fwrite(b->data, 1, b->len, f) != b->len || fclose(f))
		abort();
}

/* The CLI's remote_call in a child (it blocks); "RC|MESSAGE|BODY" comes
 * back through a pipe while the parent runs the loop. */
struct call {
	pid_t pid;
	int fd;
	char res[512];
};

static void call_start(struct call *c, const struct ctl_remote *r, const char *cmd)
{
	int p[2];

	memset(c, 0, sizeof(*c));
	if (pipe2(p, O_CLOEXEC) < 0)
		abort();
	c->pid = fork();
	if (c->pid == 0) {
		char *argv[] = { (char *)cmd, NULL };
		struct err e = { 0 };
		struct buf body;
		int rc;

		buf_init(&body);
		rc = remote_call(r, false, 1, argv, &body, &e);
		dprintf(p[1], "%d|%s|%s", rc, rc ? e.msg : "", body.data ? body.data : "");
		_exit(0);
	}
	close(p[1]);
	c->fd = p[0];
	fcntl(c->fd, F_SETFL, O_NONBLOCK);
}

static const char *call_wait(struct loop *l, struct call *c)
{
	uint64_t end = loop_now_ms() + 10000;
	size_t n = 0;

	while (loop_now_ms() < end) {
		ssize_t k = read(c->fd, c->res + n, sizeof(c->res) - 1 - n);

		if (k > 0)
			n += (size_t)k;
		else if (k == 0)
			break;
		else
			loop_run_once(l, 10);
	}
	if (loop_now_ms() >= end)
		kill(c->pid, SIGKILL);
	close(c->fd);
	waitpid(c->pid, NULL, 0);
	c->res[n] = '\0';
	return c->res;
}

static bool run_until(struct loop *l, const bool *flag)
{
	for (int i = 0; i < 1000 && !*flag; i++)
		loop_run_once(l, 10);
	return *flag;
}

static void test_deferred_tls(void)
{
	int64_t now = (int64_t)time(NULL);
	const char *tmp = getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp";
	char ca[256], crt[256], key[256];
	struct fixture fx = { .later.cb = fx_finish };
	struct cfg_remote cfg = { .enabled = true, .cert = crt, .key = key, .client_ca = ca };
	struct remote_server *s;
	struct ctl_remote r = { .cert = crt, .key = key, .ca = ca };
	struct err e = { 0 };
	struct call a, b;
	struct issued is;
	struct ip_addr lo;
	struct buf pem;

	/* one leaf (server and client use) for both ends, naming 127.0.0.1 */
	ip_parse("127.0.0.1", &lo, NULL);
	issue(&is, now - 60, now + 86400, &lo);
	snprintf(ca, sizeof(ca), "%s/ca.crt", tmp);
	snprintf(crt, sizeof(crt), "%s/leaf.crt", tmp);
	snprintf(key, sizeof(key), "%s/leaf.key", tmp);
	buf_init(&pem);
	tls_pem(&pem, "CERTIFICATE", is.ca_der.data, is.ca_der.len);
	write_file(ca, &pem);
	buf_reset(&pem);
	tls_pem(&pem, "CERTIFICATE", is.leaf_der.data, is.leaf_der.len);
	write_file(crt, &pem);
	buf_reset(&pem);
	tls_key_pem(&pem, &is.leaf);
	write_file(key, &pem);
	buf_free(&pem);
	cfg.addr = lo;
	cfg.port = 0;               /* any free port */

	loop_init(&fx.loop, &e);
	s = remote_server_open(&fx.loop, &cfg, fx_handler, &fx, NULL, &e);
	T_OK(s != NULL, "a TLS listener opens on 127.0.0.1 (%s)", s ? remote_server_addr(s) : e.msg);
	if (!s)
		return;
	r.host = remote_server_addr(s);

	call_start(&b, &r, "now");
	T_STREQ(call_wait(&fx.loop, &b), "0||now read_only=0\n", "a synchronous request over TLS");
	call_start(&a, &r, "wait");
	T_OK(run_until(&fx.loop, &fx.deferred), "a handler defers its reply over TLS");
	call_start(&b, &r, "now");
	T_STREQ(call_wait(&fx.loop, &b), "0||now read_only=0\n", "another TLS client is answered meanwhile");
	T_OK(!fx.finished, "while the first one still waits");
	T_STREQ(call_wait(&fx.loop, &a), "0||done\n", "the deferred reply arrives over TLS");

	/* the client dies while its reply is owed */
	fx.deferred = false;
	call_start(&a, &r, "wait");
	T_OK(run_until(&fx.loop, &fx.deferred), "another deferred reply");
	kill(a.pid, SIGKILL);
	waitpid(a.pid, NULL, 0);
	close(a.fd);
	T_OK(run_until(&fx.loop, &fx.cancelled), "the owner is told when the TLS client goes away");
	T_OK(fx.r && ctl_reply_gone(fx.r), "the reply knows its client is gone");
	T_OK(run_until(&fx.loop, &fx.finished), "finishing it afterwards only frees it");

	remote_server_close(s);
	loop_free(&fx.loop);
	issued_free(&is);
}

int main(void)
{
	signal(SIGPIPE, SIG_IGN);
	test_issue_validate();
	test_pem_and_keys();
	test_handle_line();
	test_deferred_tls();
	return t_done();
}
