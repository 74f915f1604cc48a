/* fuzz_tls_cert.c - certificate and key file loading (PEM or DER) on arbitrary
 * bytes, and the DER walks BearSSL does not do for us (SPKI, subject, SAN). */
#include "runtime/ctl/tls.h"

#include <string.h>

int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size);

int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size)
{
	struct tls_creds c = { 0 };
	struct tls_anchors a = { 0 };
	struct ip_addr ip = { .family = AF_INET, .b = { 127, 0, 0, 1 } };
	const uint8_t *dn;
	size_t dn_len;
	uint8_t h[32];
	struct err e;

	if (tls_parse_chain(data, size, "fuzz", &c, &e) == 0) {
		for (size_t i = 0; i < c.chain_len; i++) {
			(void)tls_cert_spki_sha256(c.chain[i].data, c.chain[i].data_len, h);
			(void)tls_cert_has_ip(c.chain[i].data, c.chain[i].data_len, &ip);
			(void)tls_cert_subject(c.chain[i].data, c.chain[i].data_len, &dn, &dn_len);
		}
	}
	(void)tls_parse_key(data, size, "fuzz", &c, &e);
	tls_creds_free(&c);
	if (tls_parse_anchors(data, size, "fuzz", &a, &e) == 0)
		tls_anchors_free(&a);
	/* the raw walks on the bytes themselves, as if they were a DER certificate */
	(void)tls_cert_spki_sha256(data, size, h);
	(void)tls_cert_has_ip(data, size, &ip);
	(void)tls_cert_subject(data, size, &dn, &dn_len);
	return 0;
}
