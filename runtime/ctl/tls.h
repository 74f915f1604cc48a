/* tls.h - remote management over mutual TLS (BearSSL, TLS 1.2 only): certificate
 * and key files, the daemon's listener, the CLI's transport, `berth tls`.
 * Internal to runtime/ctl/, and shared with runtime/image/http.c (registry
 * pulls load the CA bundle and validate servers with the same code); the
 * rest of berth uses runtime/ctl/ctl.h.
 *
 * Choices (DESIGN §3, §7; issue 11):
 *  - TLS 1.2 only; ECDHE with P-256 only; AES-GCM and ChaCha20-Poly1305 suites
 *    only; ECDSA P-256 or RSA certificates. The CA's and clients' signatures
 *    may use SHA-256/384/512.
 *  - Client certificates are required and verified against [remote]
 *    client_ca. A client's identity is the SHA-256 of its certificate's
 *    SubjectPublicKeyInfo ("sha256:<64 hex>", `berth tls spki FILE` prints it,
 *    same as `openssl x509 -pubkey | openssl pkey -pubin -outform der | sha256sum`).
 *  - [remote] clients = (when given) pins the keys that may connect at all;
 *    read_only = keys that may only run read-only commands (these may connect
 *    even when not listed in clients).
 */
#ifndef BERTH_TLS_H
#define BERTH_TLS_H

#include "runtime/config/config.h"
#include "runtime/ctl/ctl.h"
#include "lib/lib.h"

#include <bearssl.h>

#define TLS_FILE_MAX (1024 * 1024)  /* a PEM file larger than this is refused (a system
					 * CA bundle is ~220 KiB) */
#define TLS_CHAIN_MAX 8             /* certificates in one chain file */
#define TLS_ANCHORS_MAX 1024        /* CA certificates in one file (a system bundle: ~150) */
#define TLS_EE_MAX 8192             /* bytes of a peer's own certificate we keep */

#define REMOTE_MAX_CONNS 16         /* concurrent TLS clients (~30 KiB each); then the one idle longest goes */
#define REMOTE_IDLE_MS 10000        /* from accept to the request, and again to take the reply */
#define REMOTE_LOG_EVERY_MS 10000   /* one log line per kind of refusal per window */
#define REMOTE_CALL_TIMEOUT_S 30    /* the CLI gives up on a silent server */

/* A certificate chain (leaf first) and its private key. */
struct tls_creds {
	br_x509_certificate chain[TLS_CHAIN_MAX];
	size_t chain_len;
	int key_type;               /* BR_KEYTYPE_EC or BR_KEYTYPE_RSA; 0: no key */
	br_ec_private_key ec;
	br_rsa_private_key rsa;
	unsigned issuer_key_type;   /* BR_KEYTYPE_EC/RSA: what signed the leaf */
	unsigned char *keymem;      /* owns the key's bytes */
};

/* Trust anchors (CA certificates): a growable array (lib.h); zeroed is empty. */
struct tls_anchors {
	br_x509_trust_anchor *v;
	size_t n, cap;
};

/* Load PEM (or one DER) certificates from a file or from memory. what names
 * the file's role in errors ("[remote] cert"). Returns 0 or -errno. Loading
 * a chain (or a key) replaces the one c held; start from a zeroed c. */
int tls_load_chain(const char *path, const char *what, struct tls_creds *c, struct err *e);
int tls_parse_chain(const void *data, size_t len, const char *what, struct tls_creds *c,
		    struct err *e);
/* A private key: PEM "EC PRIVATE KEY", "RSA PRIVATE KEY" or "PRIVATE KEY". */
int tls_load_key(const char *path, const char *what, struct tls_creds *c, struct err *e);
int tls_parse_key(const void *data, size_t len, const char *what, struct tls_creds *c,
		  struct err *e);
void tls_creds_free(struct tls_creds *c);
/* Does the key belong to the first certificate? (A test signature.) Returns 0
 * or -EINVAL. */
int tls_creds_check(const struct tls_creds *c, struct err *e);
int tls_load_anchors(const char *path, const char *what, struct tls_anchors *a, struct err *e);
int tls_parse_anchors(const void *data, size_t len, const char *what, struct tls_anchors *a,
		      struct err *e);
void tls_anchors_free(struct tls_anchors *a);

/* SHA-256 of the certificate's SubjectPublicKeyInfo. Returns 0 or -EINVAL. */
int tls_cert_spki_sha256(const uint8_t *der, size_t len, uint8_t out[32]);
/* Does the certificate name this address in subjectAltName iPAddress? */
bool tls_cert_has_ip(const uint8_t *der, size_t len, const struct ip_addr *ip);
/* "sha256:" and 64 hex digits into buf (72 bytes). */
const char *tls_spki_format(const uint8_t h[32], char *buf);
/* What a BearSSL error code means, for people. */
const char *tls_strerror(int br_err);

/* The certificate validator both ends use: BearSSL's minimal X.509 engine
 * plus what it lacks here: the peer's SPKI hash (read-only lookup, pinning)
 * and iPAddress names (BearSSL matches only DNS names). */
struct tls_x509 {
	const br_x509_class *vtable;
	br_x509_minimal_context min;
	const uint8_t (*pins)[32];  /* non-NULL: the peer's key must be one of these */
	size_t n_pins;
	bool check_ip;              /* the leaf must carry ip as iPAddress */
	bool ee_optional;           /* no SPKI wanted: a leaf over TLS_EE_MAX is fine
				     * (without pins or check_ip only) */
	struct ip_addr ip;
	bool pin_failed, ip_failed; /* why end_chain said no */
	bool have_spki;
	uint8_t spki[32];           /* the leaf's, once the chain was accepted */
	unsigned ncerts;
	size_t ee_len;
	bool ee_trunc;
	uint8_t ee[TLS_EE_MAX];
};

/* Set x up against anchors, with the clock read now. */
void tls_x509_init(struct tls_x509 *x, const struct tls_anchors *a);
/* The suites, versions and primitives berth allows, on either end. */
void tls_engine_setup(br_ssl_engine_context *eng);

/* ---- generating certificates (`berth tls`) -------------------------------- */

struct tls_keypair {                /* a P-256 key */
	br_ec_private_key sk;
	br_ec_public_key pk;
	uint8_t skbuf[BR_EC_KBUF_PRIV_MAX_SIZE], pkbuf[BR_EC_KBUF_PUB_MAX_SIZE];
};

struct tls_cert_req {
	const char *cn;             /* subject common name */
	bool ca;                    /* a CA (keyCertSign) or a leaf (digitalSignature) */
	bool server, client;        /* extendedKeyUsage */
	const char *const *dns;     /* subjectAltName dNSName */
	size_t n_dns;
	const struct ip_addr *ips;  /* subjectAltName iPAddress */
	size_t n_ips;
	int64_t not_before, not_after;  /* Unix time */
};

int tls_keygen(struct tls_keypair *k, struct err *e);
/* Load a P-256 key written by tls_key_pem (or openssl's SEC1/PKCS#8 P-256). */
int tls_keypair_from_creds(struct tls_keypair *k, const struct tls_creds *c, struct err *e);
/* Issue a certificate for subject's key, signed by issuer_key; the issuer's
 * name is issuer_dn (DER, from tls_cert_subject of its certificate; NULL:
 * self-signed). DER appended to out. */
int tls_cert_issue(const struct tls_cert_req *r, const struct tls_keypair *subject,
		   const uint8_t *issuer_dn, size_t issuer_dn_len,
		   const struct tls_keypair *issuer_key, struct buf *out, struct err *e);
/* The subject Name (DER, pointing into der). Returns 0 or -EINVAL. */
int tls_cert_subject(const uint8_t *der, size_t len, const uint8_t **dn, size_t *dn_len);
/* PEM-armour der under label ("CERTIFICATE"), appended to out. */
void tls_pem(struct buf *out, const char *label, const void *der, size_t len);
/* The key as PEM "EC PRIVATE KEY" (SEC1), appended to out. */
void tls_key_pem(struct buf *out, const struct tls_keypair *k);

/* Drive a fresh server engine with creds over in-memory bytes (fuzzing):
 * feed data as a client's first flight, discard what the server sends. */
void remote_fuzz_handshake(const struct tls_creds *creds, const struct tls_anchors *a,
			   const uint8_t *data, size_t len);

#endif
