/* fuzz_tls_handshake.c - arbitrary bytes as a client's first flight into the
 * remote listener's server engine (the same set-up: suites, P-256, client
 * certificates required), and as a client certificate into the validator. */
#include "runtime/ctl/tls.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size);

static struct tls_creds creds;
static struct tls_anchors anchors;

/* A CA and a server certificate made once, in memory. */
static void setup(void)
{
	struct tls_keypair ca, srv;
	struct tls_cert_req ca_req = { .cn = "fuzz CA", .ca = true };
	struct tls_cert_req srv_req = { .cn = "fuzz", .server = true };
	struct buf ca_der, srv_der, key;
	const uint8_t *dn;
	size_t dn_len;
	int64_t now = (int64_t)time(NULL);

	ca_req.not_before = srv_req.not_before = now - 3600;
	ca_req.not_after = srv_req.not_after = now + 86400;
	buf_init(&ca_der);
	buf_init(&srv_der);
	buf_init(&key);
	if (tls_keygen(&ca, NULL) < 0 || tls_keygen(&srv, NULL) < 0 ||
	    tls_cert_issue(&ca_req, &ca, NULL, 0, &ca, &ca_der, NULL) < 0 ||
	    tls_cert_subject((uint8_t *)ca_der.data, ca_der.len, &dn, &dn_len) < 0 ||
	    tls_cert_issue(&srv_req, &srv, dn, dn_len, &ca, &srv_der, NULL) < 0)
		abort();
	tls_key_pem(&key, &srv);
	if (tls_parse_chain(srv_der.data, srv_der.len, "cert", &creds, NULL) < 0 ||
	    tls_parse_key(key.data, key.len, "key", &creds, NULL) < 0 ||
	    tls_parse_anchors(ca_der.data, ca_der.len, "ca", &anchors, NULL) < 0)
		abort();
	buf_free(&ca_der);
	buf_free(&srv_der);
	buf_free(&key);
}

int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size)
{
	static bool ready;

	if (!ready) {
		setup();
		ready = true;
	}
	remote_fuzz_handshake(&creds, &anchors, data, size);

	/* the same bytes as a client's certificate through the validator
	 * (BearSSL's checks plus our capture of the leaf, SPKI and addresses) */
	static struct tls_x509 x;
	const br_x509_class **vt = &x.vtable;
	static const uint8_t pin[1][32];

	tls_x509_init(&x, &anchors);
	x.pins = pin;
	x.n_pins = 1;
	x.check_ip = true;
	x.ip.family = AF_INET;
	(*vt)->start_chain(vt, NULL);
	(*vt)->start_cert(vt, (uint32_t)size);
	(*vt)->append(vt, data, size);
	(*vt)->end_cert(vt);
	(void)(*vt)->end_chain(vt);
	return 0;
}
