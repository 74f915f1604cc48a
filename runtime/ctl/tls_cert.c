/* tls_cert.c - certificates and keys for remote management: PEM/DER loading into
 * BearSSL's structures, the validator wrapper (SPKI pins, iPAddress names), and
 * a small DER writer that issues P-256 certificates (BearSSL has no encoder). */
#include "runtime/ctl/tls.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

/* ---- files and PEM ------------------------------------------------------- */

static int tls_read_file(const char *path, const char *what, struct buf *out, struct err *e)
{
	char chunk[4096];
	ssize_t n;
	int fd = open(path, O_RDONLY | O_CLOEXEC);

	if (fd < 0)
		return err_sys(e, errno, "%s %s", what, path);
	while ((n = read(fd, chunk, sizeof(chunk))) > 0) {
		if (out->len + (size_t)n > TLS_FILE_MAX) {
			close(fd);
			return err_set(e, EFBIG, "%s %s: larger than %d KiB", what, path,
				       TLS_FILE_MAX / 1024);
		}
		buf_append(out, chunk, (size_t)n);
	}
	if (n < 0) {
		int en = errno;

		close(fd);
		return err_sys(e, en, "%s %s", what, path);
	}
	close(fd);
	return 0;
}

struct pem_obj {
	char name[128];
	struct buf der;
};
struct pem_list {
	struct pem_obj *v;
	size_t n, cap;
};

static void pem_sink(void *ctx, const void *data, size_t len)
{
	buf_append(ctx, data, len);
}

static void pem_free(struct pem_list *l)
{
	for (size_t i = 0; i < l->n; i++)
		buf_free(&l->v[i].der);
	array_free(l);
}

/* Split PEM text into its objects (at most max) appended to l, which is
 * empty on failure. Input that is not PEM but starts like a DER SEQUENCE is
 * one object named "" (a DER file). Returns the number of objects or
 * -EINVAL. */
static int pem_split(const void *data, size_t len, struct pem_list *l, size_t max,
		     const char *what, struct err *e)
{
	br_pem_decoder_context pc;
	const unsigned char *p = data;
	struct pem_obj *o = NULL;

	if (len && p[0] == 0x30) {
		if (!(o = array_push(l)))
			abort();
		buf_append(&o->der, data, len);
		return 1;
	}
	br_pem_decoder_init(&pc);
	while (len > 0) {
		size_t k = br_pem_decoder_push(&pc, p, len);

		p += k;
		len -= k;
		switch (br_pem_decoder_event(&pc)) {
		case BR_PEM_BEGIN_OBJ:
			if (l->n >= max)
				goto err_many;
			if (!(o = array_push(l)))
				abort();
			snprintf(o->name, sizeof(o->name), "%s", br_pem_decoder_name(&pc));
			br_pem_decoder_setdest(&pc, pem_sink, &o->der);
			break;
		case BR_PEM_END_OBJ:
			o = NULL;
			break;
		case BR_PEM_ERROR:
			goto err_bad;
		default:
			if (k == 0 && len > 0)
				goto err_bad;   /* cannot happen: push takes input until an event */
		}
	}
	/* a final line without its newline: give the decoder one */
	if (o) {
		br_pem_decoder_push(&pc, "\n", 1);
		if (br_pem_decoder_event(&pc) == BR_PEM_END_OBJ)
			o = NULL;
	}
	if (o)
		goto err_bad;
	if (l->n == 0)
		return err_set(e, EINVAL, "%s: no PEM object found", what);
	return (int)l->n;
err_many:
	pem_free(l);
	return err_set(e, EINVAL, "%s: more than %zu PEM objects", what, max);
err_bad:
	pem_free(l);
	return err_set(e, EINVAL, "%s: malformed PEM", what);
}

static bool pem_is_cert(const char *name)
{
	return !name[0] || !strcmp(name, "CERTIFICATE") || !strcmp(name, "X509 CERTIFICATE");
}

/* ---- certificates -------------------------------------------------------- */

struct dn_sink {
	struct buf b;
};

static void dn_append(void *ctx, const void *data, size_t len)
{
	struct dn_sink *s = ctx;

	if (s->b.len + len <= 4096)
		buf_append(&s->b, data, len);
}

/* Decode one certificate; on success *pk is a deep copy of its key (in mem). */
static int cert_decode(const uint8_t *der, size_t len, const char *what,
		       br_x509_decoder_context *dc, struct dn_sink *dn, struct err *e)
{
	int err;

	buf_init(&dn->b);
	br_x509_decoder_init(dc, dn_append, dn);
	br_x509_decoder_push(dc, der, len);
	err = br_x509_decoder_last_error(dc);
	if (err) {
		buf_free(&dn->b);
		return err_set(e, EINVAL, "%s: not a valid certificate (%s)", what, tls_strerror(err));
	}
	if (dn->b.len > 4096) {
		buf_free(&dn->b);
		return err_set(e, EINVAL, "%s: subject name too long", what);
	}
	return 0;
}

int tls_parse_chain(const void *data, size_t len, const char *what, struct tls_creds *c,
		    struct err *e)
{
	struct pem_list l = { 0 };
	struct pem_obj *objs;
	int n = pem_split(data, len, &l, TLS_CHAIN_MAX, what, e);
	int ret = 0;

	if (n < 0)
		return n;
	objs = l.v;
	for (size_t i = 0; i < c->chain_len; i++)      /* replaces a chain loaded before */
		free(c->chain[i].data);
	c->chain_len = 0;
	for (int i = 0; i < n; i++) {
		br_x509_decoder_context dc;
		struct dn_sink dn;

		if (!pem_is_cert(objs[i].name))
			continue;
		if ((ret = cert_decode((uint8_t *)objs[i].der.data, objs[i].der.len, what, &dc, &dn, e)) < 0)
			break;
		buf_free(&dn.b);
		if (c->chain_len == 0)
			c->issuer_key_type = (unsigned)br_x509_decoder_get_signer_key_type(&dc);
		c->chain[c->chain_len].data = (unsigned char *)objs[i].der.data;
		c->chain[c->chain_len].data_len = objs[i].der.len;
		objs[i].der.data = NULL;        /* moved */
		objs[i].der.len = 0;
		c->chain_len++;
	}
	pem_free(&l);
	if (ret == 0 && c->chain_len == 0)
		ret = err_set(e, EINVAL, "%s: no CERTIFICATE in the file", what);
	if (ret < 0) {
		for (size_t i = 0; i < c->chain_len; i++)
			free(c->chain[i].data);
		c->chain_len = 0;
	}
	return ret;
}

int tls_load_chain(const char *path, const char *what, struct tls_creds *c, struct err *e)
{
	struct buf b;
	char w[256];
	int ret;

	buf_init(&b);
	if ((ret = tls_read_file(path, what, &b, e)) == 0) {
		snprintf(w, sizeof(w), "%s %s", what, path);
		ret = tls_parse_chain(b.data, b.len, w, c, e);
	}
	buf_free(&b);
	return ret;
}

/* ---- private keys -------------------------------------------------------- */

int tls_parse_key(const void *data, size_t len, const char *what, struct tls_creds *c,
		  struct err *e)
{
	struct pem_list l = { 0 };
	struct pem_obj *objs;
	br_skey_decoder_context *kc;
	int n = pem_split(data, len, &l, 4, what, e), ret = 0, found = -1;

	if (n < 0)
		return n;
	objs = l.v;
	for (int i = 0; i < n && found < 0; i++)
		if (strstr(objs[i].name, "PRIVATE KEY") || !objs[i].name[0])
			found = i;
	if (found < 0) {
		pem_free(&l);
		return err_set(e, EINVAL, "%s: no PRIVATE KEY in the file", what);
	}
	kc = malloc(sizeof(*kc));
	if (!kc) {
		pem_free(&l);
		return err_set(e, ENOMEM, "%s: out of memory", what);
	}
	br_skey_decoder_init(kc);
	br_skey_decoder_push(kc, objs[found].der.data, objs[found].der.len);
	if (c->keymem) {                                /* replaces a key loaded before */
		struct tls_creds old = *c;

		old.chain_len = 0;
		tls_creds_free(&old);
		c->keymem = NULL;
		c->key_type = 0;
	}
	if (br_skey_decoder_last_error(kc)) {
		ret = err_set(e, EINVAL, "%s: not a valid private key (%s)", what,
			      tls_strerror(br_skey_decoder_last_error(kc)));
	} else if (br_skey_decoder_key_type(kc) == BR_KEYTYPE_EC) {
		const br_ec_private_key *k = br_skey_decoder_get_ec(kc);

		if (k->curve != BR_EC_secp256r1) {
			ret = err_set(e, EINVAL, "%s: only P-256 EC keys are supported", what);
		} else {
			c->keymem = malloc(k->xlen);
			if (!c->keymem)
				abort();
			memcpy(c->keymem, k->x, k->xlen);
			c->ec = *k;
			c->ec.x = c->keymem;
			c->key_type = BR_KEYTYPE_EC;
		}
	} else {
		const br_rsa_private_key *k = br_skey_decoder_get_rsa(kc);
		size_t tot = k->plen + k->qlen + k->dplen + k->dqlen + k->iqlen;
		unsigned char *m = malloc(tot ? tot : 1);

		if (!m)
			abort();
		c->rsa = *k;
		c->keymem = m;
#define TLS_COPY(f) do { if (k->f##len) memcpy(m, k->f, k->f##len); c->rsa.f = m; m += k->f##len; } while (0)
		TLS_COPY(p);
		TLS_COPY(q);
		TLS_COPY(dp);
		TLS_COPY(dq);
		TLS_COPY(iq);
#undef TLS_COPY
		c->key_type = BR_KEYTYPE_RSA;
	}
	memset(kc, 0, sizeof(*kc));         /* no copy of the key left behind */
	free(kc);
	for (int i = 0; i < n; i++)
		if (objs[i].der.data)       /* an empty PEM block has none */
			memset(objs[i].der.data, 0, objs[i].der.len);
	pem_free(&l);
	return ret;
}

int tls_creds_check(const struct tls_creds *c, struct err *e)
{
	static const uint8_t hash[32] = { 'b', 'e', 'r', 't', 'h' };
	br_x509_decoder_context *dc;
	const br_x509_pkey *pk;
	uint8_t sig[512];
	bool ok = false;

	if (!c->chain_len || !c->key_type)
		return err_set(e, EINVAL, "no certificate or no key");
	dc = malloc(sizeof(*dc));
	if (!dc)
		abort();
	br_x509_decoder_init(dc, NULL, NULL);
	br_x509_decoder_push(dc, c->chain[0].data, c->chain[0].data_len);
	pk = br_x509_decoder_get_pkey(dc);
	/* sign with the key, verify with the certificate's public key */
	if (pk && pk->key_type == BR_KEYTYPE_EC && c->key_type == BR_KEYTYPE_EC) {
		size_t n = pk->key.ec.curve == c->ec.curve ?
			   br_ecdsa_i31_sign_asn1(&br_ec_p256_m31, &br_sha256_vtable, hash, &c->ec, sig) : 0;

		ok = n && br_ecdsa_i31_vrfy_asn1(&br_ec_p256_m31, hash, sizeof(hash), &pk->key.ec, sig, n);
	} else if (pk && pk->key_type == BR_KEYTYPE_RSA && c->key_type == BR_KEYTYPE_RSA &&
		   (c->rsa.n_bitlen + 7) / 8 <= sizeof(sig)) {
		uint8_t back[32];

		ok = br_rsa_i31_pkcs1_sign(BR_HASH_OID_SHA256, hash, sizeof(hash), &c->rsa, sig) &&
		     br_rsa_i31_pkcs1_vrfy(sig, (c->rsa.n_bitlen + 7) / 8, BR_HASH_OID_SHA256,
					   sizeof(back), &pk->key.rsa, back) &&
		     !memcmp(back, hash, sizeof(back));
	}
	free(dc);
	return ok ? 0 : err_set(e, EINVAL, "the key does not belong to the certificate");
}

int tls_load_key(const char *path, const char *what, struct tls_creds *c, struct err *e)
{
	struct buf b;
	char w[256];
	int ret;

	buf_init(&b);
	if ((ret = tls_read_file(path, what, &b, e)) == 0) {
		snprintf(w, sizeof(w), "%s %s", what, path);
		ret = tls_parse_key(b.data, b.len, w, c, e);
	}
	if (b.data)
		memset(b.data, 0, b.len);
	buf_free(&b);
	return ret;
}

void tls_creds_free(struct tls_creds *c)
{
	for (size_t i = 0; i < c->chain_len; i++)
		free(c->chain[i].data);
	c->chain_len = 0;
	if (c->keymem) {
		size_t n = c->key_type == BR_KEYTYPE_EC ? c->ec.xlen :
			   c->rsa.plen + c->rsa.qlen + c->rsa.dplen + c->rsa.dqlen + c->rsa.iqlen;

		memset(c->keymem, 0, n);
		free(c->keymem);
	}
	c->keymem = NULL;
	c->key_type = 0;
}

/* ---- trust anchors ------------------------------------------------------- */

int tls_parse_anchors(const void *data, size_t len, const char *what, struct tls_anchors *a,
		      struct err *e)
{
	struct pem_list l = { 0 };
	struct pem_obj *objs;
	int n = pem_split(data, len, &l, TLS_ANCHORS_MAX, what, e), ret = 0;

	tls_anchors_free(a);                /* replaces what a held */
	if (n < 0)
		return n;
	objs = l.v;
	if (array_reserve(a, (size_t)n) < 0)
		abort();
	for (int i = 0; i < n; i++) {
		br_x509_trust_anchor *ta = &a->v[a->n];
		br_x509_decoder_context dc;
		struct dn_sink dn;
		const br_x509_pkey *pk;

		if (!pem_is_cert(objs[i].name))
			continue;
		ret = cert_decode((uint8_t *)objs[i].der.data, objs[i].der.len, what, &dc, &dn, e);
		if (ret < 0)
			break;
		memset(ta, 0, sizeof(*ta));
		ta->dn.data = (unsigned char *)dn.b.data;
		ta->dn.len = dn.b.len;
		if (!ta->dn.data)
			ta->dn.data = calloc(1, 1);
		ta->flags = br_x509_decoder_isCA(&dc) ? BR_X509_TA_CA : 0;
		pk = br_x509_decoder_get_pkey(&dc);
		ta->pkey = *pk;
		if (pk->key_type == BR_KEYTYPE_EC) {
			ta->pkey.key.ec.q = malloc(pk->key.ec.qlen);
			if (!ta->pkey.key.ec.q)
				abort();
			memcpy(ta->pkey.key.ec.q, pk->key.ec.q, pk->key.ec.qlen);
		} else {
			unsigned char *m = malloc(pk->key.rsa.nlen + pk->key.rsa.elen);

			if (!m)
				abort();
			memcpy(m, pk->key.rsa.n, pk->key.rsa.nlen);
			memcpy(m + pk->key.rsa.nlen, pk->key.rsa.e, pk->key.rsa.elen);
			ta->pkey.key.rsa.n = m;
			ta->pkey.key.rsa.e = m + pk->key.rsa.nlen;
		}
		a->n++;
	}
	pem_free(&l);
	if (ret == 0 && a->n == 0)
		ret = err_set(e, EINVAL, "%s: no CERTIFICATE in the file", what);
	if (ret < 0)
		tls_anchors_free(a);
	return ret;
}

int tls_load_anchors(const char *path, const char *what, struct tls_anchors *a, struct err *e)
{
	struct buf b;
	char w[256];
	int ret;

	buf_init(&b);
	if ((ret = tls_read_file(path, what, &b, e)) == 0) {
		snprintf(w, sizeof(w), "%s %s", what, path);
		ret = tls_parse_anchors(b.data, b.len, w, a, e);
	}
	buf_free(&b);
	return ret;
}

void tls_anchors_free(struct tls_anchors *a)
{
	for (size_t i = 0; i < a->n; i++) {
		br_x509_trust_anchor *ta = &a->v[i];

		free(ta->dn.data);
		if (ta->pkey.key_type == BR_KEYTYPE_EC)
			free(ta->pkey.key.ec.q);
		else
			free(ta->pkey.key.rsa.n);  /* e lives in the same block */
	}
	array_free(a);
}

/* ---- reading DER (only what BearSSL does not expose) --------------------- */

/* Read one TLV at *p (bounded by end): single-byte tags, definite lengths up
 * to 3 bytes. Returns 0 and advances *p past it, or -1. */
static int der_get(const uint8_t **p, const uint8_t *end, uint8_t *tag, const uint8_t **val,
		   size_t *len, const uint8_t **start)
{
	const uint8_t *q = *p;
	size_t l;

	if (end - q < 2)
		return -1;
	if (start)
		*start = q;
	*tag = *q++;
	if ((*tag & 0x1f) == 0x1f)
		return -1;
	l = *q++;
	if (l & 0x80) {
		size_t nb = l & 0x7f;

		if (nb == 0 || nb > 3 || (size_t)(end - q) < nb)
			return -1;
		for (l = 0; nb--; )
			l = l << 8 | *q++;
	}
	if (l > (size_t)(end - q))
		return -1;
	*val = q;
	*len = l;
	*p = q + l;
	return 0;
}

/* Walk into TBSCertificate up to the SPKI (returned as a whole TLV) and the
 * extensions ([3], *ext NULL when absent). Returns 0 or -1. */
static int der_tbs(const uint8_t *der, size_t len, const uint8_t **spki, size_t *spki_len,
		   const uint8_t **ext, size_t *ext_len, const uint8_t **subject, size_t *subject_len)
{
	const uint8_t *p = der, *end = der + len, *v, *start;
	size_t l;
	uint8_t tag;

	if (der_get(&p, end, &tag, &v, &l, NULL) < 0 || tag != 0x30)
		return -1;
	p = v;
	end = v + l;
	if (der_get(&p, end, &tag, &v, &l, NULL) < 0 || tag != 0x30)   /* tbs */
		return -1;
	p = v;
	end = v + l;
	if (der_get(&p, end, &tag, &v, &l, NULL) < 0)
		return -1;
	if (tag == 0xa0 && der_get(&p, end, &tag, &v, &l, NULL) < 0)   /* version */
		return -1;
	if (tag != 0x02)                                               /* serial */
		return -1;
	for (int i = 0; i < 4; i++) {   /* signature, issuer, validity, subject */
		if (der_get(&p, end, &tag, &v, &l, &start) < 0 || tag != 0x30)
			return -1;
		if (i == 3 && subject) {
			*subject = start;
			*subject_len = (size_t)(v + l - start);
		}
	}
	if (der_get(&p, end, &tag, &v, &l, &start) < 0 || tag != 0x30)
		return -1;
	*spki = start;
	*spki_len = (size_t)(v + l - start);
	*ext = NULL;
	*ext_len = 0;
	while (p < end) {
		if (der_get(&p, end, &tag, &v, &l, NULL) < 0)
			return -1;
		if (tag == 0xa3) {
			*ext = v;
			*ext_len = l;
		}
	}
	return 0;
}

int tls_cert_spki_sha256(const uint8_t *der, size_t len, uint8_t out[32])
{
	const uint8_t *spki, *ext;
	size_t sl, el;
	br_sha256_context h;

	if (der_tbs(der, len, &spki, &sl, &ext, &el, NULL, NULL) < 0)
		return -EINVAL;
	br_sha256_init(&h);
	br_sha256_update(&h, spki, sl);
	br_sha256_out(&h, out);
	return 0;
}

bool tls_cert_has_ip(const uint8_t *der, size_t len, const struct ip_addr *ip)
{
	static const uint8_t san_oid[] = { 0x55, 0x1d, 0x11 };
	const uint8_t *spki, *ext, *p, *end, *v;
	size_t sl, el, l, n = ip->family == AF_INET6 ? 16 : 4;
	uint8_t tag;

	if (der_tbs(der, len, &spki, &sl, &ext, &el, NULL, NULL) < 0 || !ext)
		return false;
	p = ext;
	end = ext + el;
	if (der_get(&p, end, &tag, &v, &l, NULL) < 0 || tag != 0x30)
		return false;
	p = v;
	end = v + l;
	while (p < end) {                       /* Extension ::= SEQ { OID, [BOOL], OCTETS } */
		const uint8_t *q, *qend, *ov;
		size_t ol;

		if (der_get(&p, end, &tag, &v, &l, NULL) < 0 || tag != 0x30)
			return false;
		q = v;
		qend = v + l;
		if (der_get(&q, qend, &tag, &ov, &ol, NULL) < 0 || tag != 0x06)
			return false;
		if (ol != sizeof(san_oid) || memcmp(ov, san_oid, ol))
			continue;
		if (der_get(&q, qend, &tag, &v, &l, NULL) < 0)
			return false;
		if (tag == 0x01 && der_get(&q, qend, &tag, &v, &l, NULL) < 0)
			return false;
		if (tag != 0x04)
			return false;
		q = v;
		qend = v + l;
		if (der_get(&q, qend, &tag, &v, &l, NULL) < 0 || tag != 0x30)
			return false;
		q = v;
		qend = v + l;
		while (q < qend) {
			if (der_get(&q, qend, &tag, &v, &l, NULL) < 0)
				return false;
			if (tag == 0x87 && l == n && !memcmp(v, ip->b, n))
				return true;
		}
		return false;
	}
	return false;
}

int tls_cert_subject(const uint8_t *der, size_t len, const uint8_t **dn, size_t *dn_len)
{
	const uint8_t *spki, *ext;
	size_t sl, el;

	return der_tbs(der, len, &spki, &sl, &ext, &el, dn, dn_len) < 0 ? -EINVAL : 0;
}

const char *tls_spki_format(const uint8_t h[32], char *buf)
{
	memcpy(buf, "sha256:", 7);
	for (int i = 0; i < 32; i++)
		sprintf(buf + 7 + 2 * i, "%02x", h[i]);
	return buf;
}

const char *tls_strerror(int err)
{
	static _Thread_local char other[64];   /* registry pulls run in worker threads */

	if (err >= BR_ERR_SEND_FATAL_ALERT) {
		switch (err - BR_ERR_SEND_FATAL_ALERT) {
		case 40: return "no common version, suite or curve (TLS 1.2, ECDHE P-256, AES-GCM or "
				"ChaCha20-Poly1305 required)";
		case 70: return "not TLS 1.2";
		}
		snprintf(other, sizeof(other), "refused with alert %d", err - BR_ERR_SEND_FATAL_ALERT);
		return other;
	}
	if (err >= BR_ERR_RECV_FATAL_ALERT) {
		switch (err - BR_ERR_RECV_FATAL_ALERT) {
		case 42: return "the peer rejected the certificate (bad certificate)";
		case 45: return "the peer says the certificate expired";
		case 46: return "the peer does not know the certificate (unknown)";
		case 48: return "the peer does not trust the certificate's CA (unknown CA)";
		case 40: return "the peer refused the handshake (handshake failure)";
		case 70: return "the peer refused the TLS version (TLS 1.2 required)";
		}
		snprintf(other, sizeof(other), "the peer sent fatal alert %d",
			 err - BR_ERR_RECV_FATAL_ALERT);
		return other;
	}
	switch (err) {
	case BR_ERR_OK: return "no error";
	case BR_ERR_UNSUPPORTED_VERSION:
	case BR_ERR_BAD_VERSION: return "not a TLS 1.2 handshake";
	case BR_ERR_BAD_LENGTH:
	case BR_ERR_UNKNOWN_TYPE:
	case BR_ERR_UNEXPECTED:
	case BR_ERR_BAD_HANDSHAKE: return "not a TLS handshake (malformed records)";
	case BR_ERR_TOO_LARGE: return "record too large";
	case BR_ERR_BAD_MAC: return "bad record MAC";
	case BR_ERR_BAD_CIPHER_SUITE: return "no common cipher suite (AES-GCM or ChaCha20-Poly1305 with ECDHE required)";
	case BR_ERR_INVALID_ALGORITHM: return "no common algorithm (P-256 ECDHE required)";
	case BR_ERR_BAD_SIGNATURE: return "bad handshake signature";
	case BR_ERR_WRONG_KEY_USAGE: return "the certificate's key may not be used this way";
	case BR_ERR_NO_CLIENT_AUTH: return "no client certificate";
	case BR_ERR_IO: return "connection closed during the handshake";
	case BR_ERR_X509_EMPTY_CHAIN: return "no client certificate";
	case BR_ERR_X509_BAD_SIGNATURE: return "certificate signature does not verify";
	case BR_ERR_X509_TIME_UNKNOWN: return "the clock is unknown: cannot check certificate dates";
	case BR_ERR_X509_EXPIRED: return "certificate expired or not yet valid";
	case BR_ERR_X509_DN_MISMATCH: return "certificate chain names do not match";
	case BR_ERR_X509_BAD_SERVER_NAME: return "certificate does not name this server";
	case BR_ERR_X509_CRITICAL_EXTENSION: return "certificate has an unsupported critical extension";
	case BR_ERR_X509_NOT_CA: return "an issuer in the chain is not a CA";
	case BR_ERR_X509_FORBIDDEN_KEY_USAGE: return "certificate key usage forbids this";
	case BR_ERR_X509_WEAK_PUBLIC_KEY: return "certificate key too weak";
	case BR_ERR_X509_NOT_TRUSTED: return "certificate not signed by a trusted CA";
	case BR_ERR_X509_UNSUPPORTED: return "certificate uses an unsupported algorithm (P-256 or RSA)";
	case BR_ERR_X509_LIMIT_EXCEEDED: return "certificate too large";
	case BR_ERR_X509_WRONG_KEY_TYPE: return "wrong key type";
	}
	if (err > BR_ERR_X509_OK && err < 64)
		snprintf(other, sizeof(other), "malformed certificate (X.509 error %d)", err);
	else
		snprintf(other, sizeof(other), "TLS error %d", err);
	return other;
}

/* ---- the validator ------------------------------------------------------- */

static struct tls_x509 *x509_of(const br_x509_class **ctx)
{
	return container_of(ctx, struct tls_x509, vtable);
}

static void x509_start_chain(const br_x509_class **ctx, const char *server_name)
{
	struct tls_x509 *x = x509_of(ctx);

	x->ncerts = 0;
	x->ee_len = 0;
	x->ee_trunc = false;
	x->have_spki = x->pin_failed = x->ip_failed = false;
	x->min.vtable->start_chain(&x->min.vtable, server_name);
}

static void x509_start_cert(const br_x509_class **ctx, uint32_t length)
{
	struct tls_x509 *x = x509_of(ctx);

	x->ncerts++;
	x->min.vtable->start_cert(&x->min.vtable, length);
}

static void x509_append(const br_x509_class **ctx, const unsigned char *buf, size_t len)
{
	struct tls_x509 *x = x509_of(ctx);

	if (x->ncerts == 1) {               /* keep the peer's own certificate */
		if (x->ee_len + len > sizeof(x->ee)) {
			x->ee_trunc = true;
		} else {
			memcpy(x->ee + x->ee_len, buf, len);
			x->ee_len += len;
		}
	}
	x->min.vtable->append(&x->min.vtable, buf, len);
}

static void x509_end_cert(const br_x509_class **ctx)
{
	struct tls_x509 *x = x509_of(ctx);

	x->min.vtable->end_cert(&x->min.vtable);
}

static unsigned x509_end_chain(const br_x509_class **ctx)
{
	struct tls_x509 *x = x509_of(ctx);
	unsigned r = x->min.vtable->end_chain(&x->min.vtable);
	bool pinned = false;

	if (r != 0)
		return r;
	if (x->ee_trunc && x->ee_optional && !x->check_ip && !x->pins)
		return 0;
	if (x->ee_trunc)
		return BR_ERR_X509_LIMIT_EXCEEDED;
	if (tls_cert_spki_sha256(x->ee, x->ee_len, x->spki) < 0)
		return BR_ERR_X509_INVALID_VALUE;
	x->have_spki = true;
	if (x->check_ip && !tls_cert_has_ip(x->ee, x->ee_len, &x->ip)) {
		x->ip_failed = true;
		return BR_ERR_X509_BAD_SERVER_NAME;
	}
	for (size_t i = 0; x->pins && i < x->n_pins && !pinned; i++)
		pinned = !memcmp(x->pins[i], x->spki, 32);
	if (x->pins && !pinned) {
		x->pin_failed = true;
		return BR_ERR_X509_NOT_TRUSTED;
	}
	return 0;
}

static const br_x509_pkey *x509_get_pkey(const br_x509_class *const *ctx, unsigned *usages)
{
	const struct tls_x509 *x = container_of(ctx, struct tls_x509, vtable);

	return x->min.vtable->get_pkey(&x->min.vtable, usages);
}

static const br_x509_class tls_x509_vtable = {
	sizeof(struct tls_x509),
	x509_start_chain,
	x509_start_cert,
	x509_append,
	x509_end_cert,
	x509_end_chain,
	x509_get_pkey,
};

void tls_x509_init(struct tls_x509 *x, const struct tls_anchors *a)
{
	time_t now = time(NULL);

	memset(x, 0, offsetof(struct tls_x509, ee));
	x->vtable = &tls_x509_vtable;
	br_x509_minimal_init(&x->min, &br_sha256_vtable, a->v, a->n);
	br_x509_minimal_set_hash(&x->min, br_sha256_ID, &br_sha256_vtable);
	br_x509_minimal_set_hash(&x->min, br_sha384_ID, &br_sha384_vtable);
	br_x509_minimal_set_hash(&x->min, br_sha512_ID, &br_sha512_vtable);
	br_x509_minimal_set_rsa(&x->min, br_rsa_i31_pkcs1_vrfy);
	br_x509_minimal_set_ecdsa(&x->min, &br_ec_p256_m31, br_ecdsa_i31_vrfy_asn1);
	/* days since 1 January of year 0; 719528 is 1970-01-01 */
	br_x509_minimal_set_time(&x->min, (uint32_t)(now / 86400 + 719528), (uint32_t)(now % 86400));
}

/*
 * The record ciphers: AES-NI and PCLMULQDQ when the CPU has them (BearSSL
 * says so at run time; a pull's layers are megabytes, and the constant-time
 * software AES-GCM costs ~10x more per byte), SSE2 ChaCha20 where it runs.
 * The suites are offered in the order that is fastest here: AES-GCM first
 * with AES-NI, else ChaCha20-Poly1305 first (an ARM gateway without the
 * crypto extensions BearSSL uses, for instance); servers that follow the
 * client's order (Go's, docker-registry's, do when the first is not AES-GCM)
 * then pick the cheap one.
 */
void tls_engine_setup(br_ssl_engine_context *eng)
{
	static const uint16_t aes_first[] = {
		BR_TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,
		BR_TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,
		BR_TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256,
		BR_TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256,
		BR_TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384,
		BR_TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384,
	};
	static const uint16_t chacha_first[] = {
		BR_TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256,
		BR_TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256,
		BR_TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,
		BR_TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,
		BR_TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384,
		BR_TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384,
	};
	const br_block_ctr_class *aes = br_aes_x86ni_ctr_get_vtable();
	br_ghash ghash = br_ghash_pclmul_get();
	br_chacha20_run chacha = br_chacha20_sse2_get();
	uint8_t seed[32];

	br_ssl_engine_set_versions(eng, BR_TLS12, BR_TLS12);
	if (aes && ghash)
		br_ssl_engine_set_suites(eng, aes_first, ARRAY_SIZE(aes_first));
	else
		br_ssl_engine_set_suites(eng, chacha_first, ARRAY_SIZE(chacha_first));
	br_ssl_engine_set_hash(eng, br_sha256_ID, &br_sha256_vtable);
	br_ssl_engine_set_hash(eng, br_sha384_ID, &br_sha384_vtable);
	br_ssl_engine_set_prf_sha256(eng, br_tls12_sha256_prf);
	br_ssl_engine_set_prf_sha384(eng, br_tls12_sha384_prf);
	br_ssl_engine_set_ec(eng, &br_ec_p256_m31);
	br_ssl_engine_set_ecdsa(eng, br_ecdsa_i31_vrfy_asn1);
	br_ssl_engine_set_rsavrfy(eng, br_rsa_i31_pkcs1_vrfy);
	br_ssl_engine_set_aes_ctr(eng, aes ? aes : &br_aes_ct64_ctr_vtable);
	br_ssl_engine_set_ghash(eng, ghash ? ghash : br_ghash_ctmul64);
	br_ssl_engine_set_gcm(eng, &br_sslrec_in_gcm_vtable, &br_sslrec_out_gcm_vtable);
	br_ssl_engine_set_chacha20(eng, chacha ? chacha : br_chacha20_ct_run);
	br_ssl_engine_set_poly1305(eng, br_poly1305_ctmul_run);
	br_ssl_engine_set_chapol(eng, &br_sslrec_in_chapol_vtable, &br_sslrec_out_chapol_vtable);
	/* our own seed: no dependence on how BearSSL was configured to find one */
	if (getrandom(seed, sizeof(seed), 0) == (ssize_t)sizeof(seed))
		br_ssl_engine_inject_entropy(eng, seed, sizeof(seed));
	memset(seed, 0, sizeof(seed));
}

/* ---- writing DER --------------------------------------------------------- */

static void der_hdr(struct buf *b, uint8_t tag, size_t len)
{
	uint8_t h[5];
	size_t n = 0;

	h[n++] = tag;
	if (len < 0x80) {
		h[n++] = (uint8_t)len;
	} else if (len < 0x100) {
		h[n++] = 0x81;
		h[n++] = (uint8_t)len;
	} else if (len < 0x10000) {
		h[n++] = 0x82;
		h[n++] = (uint8_t)(len >> 8);
		h[n++] = (uint8_t)len;
	} else {
		h[n++] = 0x83;
		h[n++] = (uint8_t)(len >> 16);
		h[n++] = (uint8_t)(len >> 8);
		h[n++] = (uint8_t)len;
	}
	buf_append(b, h, n);
}

static void der_put(struct buf *b, uint8_t tag, const void *v, size_t len)
{
	der_hdr(b, tag, len);
	if (len)
		buf_append(b, v, len);
}

/* Wrap inner as one TLV appended to b; inner is consumed. */
static void der_wrap(struct buf *b, uint8_t tag, struct buf *inner)
{
	der_put(b, tag, inner->data, inner->len);
	buf_free(inner);
}

/* An unsigned big-endian INTEGER (a leading 0 when the top bit is set). */
static void der_uint(struct buf *b, const uint8_t *v, size_t len)
{
	while (len > 1 && v[0] == 0) {
		v++;
		len--;
	}
	if (v[0] & 0x80) {
		der_hdr(b, 0x02, len + 1);
		buf_append(b, "", 1);
		buf_append(b, v, len);
	} else {
		der_put(b, 0x02, v, len);
	}
}

static const uint8_t oid_ecdsa_sha256[] = { 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x03, 0x02 };
static const uint8_t oid_ec_pubkey[] = { 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01 };
static const uint8_t oid_p256[] = { 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07 };
static const uint8_t oid_cn[] = { 0x55, 0x04, 0x03 };

static void der_name(struct buf *b, const char *cn)
{
	struct buf atv, set, rdn;

	buf_init(&atv);
	der_put(&atv, 0x06, oid_cn, sizeof(oid_cn));
	der_put(&atv, 0x0c, cn, strlen(cn));            /* UTF8String */
	buf_init(&set);
	der_wrap(&set, 0x30, &atv);
	buf_init(&rdn);
	der_wrap(&rdn, 0x31, &set);
	der_wrap(b, 0x30, &rdn);
}

static void der_time(struct buf *b, int64_t t)
{
	time_t tt = (time_t)t;
	struct tm tm;
	char s[64];

	gmtime_r(&tt, &tm);
	if (tm.tm_year >= 50 && tm.tm_year < 150) {     /* RFC 5280: UTCTime until 2049 */
		snprintf(s, sizeof(s), "%02d%02d%02d%02d%02d%02dZ", tm.tm_year % 100, tm.tm_mon + 1,
			 tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec);
		der_put(b, 0x17, s, strlen(s));
	} else {
		snprintf(s, sizeof(s), "%04d%02d%02d%02d%02d%02dZ", (tm.tm_year + 1900) % 10000,
			 tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec);
		der_put(b, 0x18, s, strlen(s));
	}
}

static void der_sigalg(struct buf *b)
{
	struct buf s;

	buf_init(&s);
	der_put(&s, 0x06, oid_ecdsa_sha256, sizeof(oid_ecdsa_sha256));
	der_wrap(b, 0x30, &s);
}

static void der_spki(struct buf *b, const br_ec_public_key *pk)
{
	struct buf alg, spki, bits;

	buf_init(&alg);
	der_put(&alg, 0x06, oid_ec_pubkey, sizeof(oid_ec_pubkey));
	der_put(&alg, 0x06, oid_p256, sizeof(oid_p256));
	buf_init(&spki);
	der_wrap(&spki, 0x30, &alg);
	buf_init(&bits);
	buf_append(&bits, "", 1);                       /* no unused bits */
	buf_append(&bits, pk->q, pk->qlen);
	der_wrap(&spki, 0x03, &bits);
	der_wrap(b, 0x30, &spki);
}

/* Extension { OID 2.5.29.x, [critical], OCTET STRING { value } }, value consumed. */
static void der_ext(struct buf *b, uint8_t id, bool critical, struct buf *value)
{
	const uint8_t oid[] = { 0x55, 0x1d, id };
	struct buf x;

	buf_init(&x);
	der_put(&x, 0x06, oid, sizeof(oid));
	if (critical)
		der_put(&x, 0x01, "\xff", 1);
	der_wrap(&x, 0x04, value);
	der_wrap(b, 0x30, &x);
}

static void der_extensions(struct buf *b, const struct tls_cert_req *r, const br_ec_public_key *pk)
{
	struct buf exts, v, seq;
	uint8_t kid[32];
	br_sha256_context h;

	buf_init(&exts);
	buf_init(&v);                           /* basicConstraints */
	buf_init(&seq);
	if (r->ca)
		der_put(&seq, 0x01, "\xff", 1);
	der_wrap(&v, 0x30, &seq);
	der_ext(&exts, 19, true, &v);
	buf_init(&v);                           /* keyUsage */
	der_put(&v, 0x03, r->ca ? "\x01\x06" : "\x07\x80", 2);
	der_ext(&exts, 15, true, &v);
	if (r->server || r->client) {           /* extKeyUsage */
		static const uint8_t kp[] = { 0x2b, 0x06, 0x01, 0x05, 0x05, 0x07, 0x03, 0x00 };
		uint8_t o[sizeof(kp)];

		buf_init(&v);
		buf_init(&seq);
		memcpy(o, kp, sizeof(kp));
		if (r->server) {
			o[7] = 1;
			der_put(&seq, 0x06, o, sizeof(o));
		}
		if (r->client) {
			o[7] = 2;
			der_put(&seq, 0x06, o, sizeof(o));
		}
		der_wrap(&v, 0x30, &seq);
		der_ext(&exts, 37, false, &v);
	}
	if (r->n_dns || r->n_ips) {             /* subjectAltName */
		buf_init(&v);
		buf_init(&seq);
		for (size_t i = 0; i < r->n_dns; i++)
			der_put(&seq, 0x82, r->dns[i], strlen(r->dns[i]));
		for (size_t i = 0; i < r->n_ips; i++)
			der_put(&seq, 0x87, r->ips[i].b, r->ips[i].family == AF_INET6 ? 16 : 4);
		der_wrap(&v, 0x30, &seq);
		der_ext(&exts, 17, false, &v);
	}
	br_sha256_init(&h);                     /* subjectKeyIdentifier: hash of the key */
	br_sha256_update(&h, pk->q, pk->qlen);
	br_sha256_out(&h, kid);
	buf_init(&v);
	der_put(&v, 0x04, kid, 20);
	der_ext(&exts, 14, false, &v);
	buf_init(&seq);
	der_wrap(&seq, 0x30, &exts);
	der_wrap(b, 0xa3, &seq);
}

/* ---- keys and certificates ----------------------------------------------- */

static void tls_drbg(br_hmac_drbg_context *rng)
{
	uint8_t seed[48];

	if (getrandom(seed, sizeof(seed), 0) != (ssize_t)sizeof(seed))
		abort();    /* getrandom without GRND_NONBLOCK only waits, it does not fail */
	br_hmac_drbg_init(rng, &br_sha256_vtable, seed, sizeof(seed));
	memset(seed, 0, sizeof(seed));
}

int tls_keygen(struct tls_keypair *k, struct err *e)
{
	br_hmac_drbg_context rng;

	tls_drbg(&rng);
	if (!br_ec_keygen(&rng.vtable, &br_ec_p256_m31, &k->sk, k->skbuf, BR_EC_secp256r1) ||
	    !br_ec_compute_pub(&br_ec_p256_m31, &k->pk, k->pkbuf, &k->sk))
		return err_set(e, EIO, "generate a P-256 key: BearSSL failed");
	memset(&rng, 0, sizeof(rng));
	return 0;
}

int tls_keypair_from_creds(struct tls_keypair *k, const struct tls_creds *c, struct err *e)
{
	if (c->key_type != BR_KEYTYPE_EC || c->ec.curve != BR_EC_secp256r1 ||
	    c->ec.xlen > sizeof(k->skbuf))
		return err_set(e, EINVAL, "the CA key is not a P-256 EC key");
	memcpy(k->skbuf, c->ec.x, c->ec.xlen);
	k->sk = c->ec;
	k->sk.x = k->skbuf;
	if (!br_ec_compute_pub(&br_ec_p256_m31, &k->pk, k->pkbuf, &k->sk))
		return err_set(e, EINVAL, "the CA key is not a valid P-256 key");
	return 0;
}

int tls_cert_issue(const struct tls_cert_req *r, const struct tls_keypair *subject,
		   const uint8_t *issuer_dn, size_t issuer_dn_len,
		   const struct tls_keypair *issuer_key, struct buf *out, struct err *e)
{
	struct buf tbs, v, cert, bits;
	uint8_t serial[16], hash[32], sig[80];
	br_sha256_context h;
	size_t siglen;

	if (getrandom(serial, sizeof(serial), 0) != (ssize_t)sizeof(serial))
		return err_sys(e, errno, "getrandom");
	serial[0] = (uint8_t)((serial[0] & 0x7f) | 0x40);   /* positive, 16 bytes */
	buf_init(&tbs);
	buf_init(&v);
	der_put(&v, 0x02, "\x02", 1);                   /* v3 */
	der_wrap(&tbs, 0xa0, &v);
	der_uint(&tbs, serial, sizeof(serial));
	der_sigalg(&tbs);
	if (issuer_dn)
		buf_append(&tbs, issuer_dn, issuer_dn_len);
	else
		der_name(&tbs, r->cn);              /* self-signed */
	buf_init(&v);
	der_time(&v, r->not_before);
	der_time(&v, r->not_after);
	der_wrap(&tbs, 0x30, &v);
	der_name(&tbs, r->cn);
	der_spki(&tbs, &subject->pk);
	der_extensions(&tbs, r, &subject->pk);
	buf_init(&cert);
	der_put(&cert, 0x30, tbs.data, tbs.len);        /* TBSCertificate */
	br_sha256_init(&h);
	br_sha256_update(&h, cert.data, cert.len);
	br_sha256_out(&h, hash);
	buf_free(&tbs);
	siglen = br_ecdsa_i31_sign_asn1(&br_ec_p256_m31, &br_sha256_vtable, hash, &issuer_key->sk, sig);
	if (!siglen) {
		buf_free(&cert);
		return err_set(e, EIO, "sign the certificate: BearSSL failed");
	}
	der_sigalg(&cert);
	buf_init(&bits);
	buf_append(&bits, "", 1);
	buf_append(&bits, sig, siglen);
	der_wrap(&cert, 0x03, &bits);
	der_wrap(out, 0x30, &cert);
	return 0;
}

void tls_pem(struct buf *out, const char *label, const void *der, size_t len)
{
	size_t n = br_pem_encode(NULL, der, len, label, BR_PEM_LINE64);
	char *p = malloc(n + 1);

	if (!p)
		abort();
	br_pem_encode(p, der, len, label, BR_PEM_LINE64);
	buf_append(out, p, n);
	free(p);
}

void tls_key_pem(struct buf *out, const struct tls_keypair *k)
{
	struct buf key, v, bits;

	buf_init(&key);
	der_put(&key, 0x02, "\x01", 1);
	der_put(&key, 0x04, k->sk.x, k->sk.xlen);
	buf_init(&v);
	der_put(&v, 0x06, oid_p256, sizeof(oid_p256));
	der_wrap(&key, 0xa0, &v);
	buf_init(&bits);
	buf_append(&bits, "", 1);
	buf_append(&bits, k->pk.q, k->pk.qlen);
	buf_init(&v);
	der_wrap(&v, 0x03, &bits);
	der_wrap(&key, 0xa1, &v);
	buf_init(&v);
	der_wrap(&v, 0x30, &key);
	tls_pem(out, "EC PRIVATE KEY", v.data, v.len);
	memset(v.data, 0, v.len);
	buf_free(&v);
}
