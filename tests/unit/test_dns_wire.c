/* test_dns_wire.c - dns/ wire format: names, compression, malformed queries. */
#include "dns/dns_int.h"
#include "t.h"

/* a query for NAME (dotted) type t, optionally with OPT */
static size_t mkquery(uint8_t *b, const char *name, uint16_t t, bool opt, uint8_t version)
{
	struct dns_wbuf w;
	uint8_t n[DNS_NAME_MAX];
	size_t nl;

	dns_name_from_str(name, n, &nl);
	dns_wbuf_init(&w, b, 512);
	dns_wput16(&w, 0x1234);
	dns_wput16(&w, DNS_F_RD);
	dns_wput16(&w, 1);
	dns_wput16(&w, 0);
	dns_wput16(&w, 0);
	dns_wput16(&w, opt ? 1 : 0);
	dns_wput(&w, n, nl);
	dns_wput16(&w, t);
	dns_wput16(&w, DNS_C_IN);
	if (opt) {
		dns_wput_opt(&w, 4096, 0, true);
		w.b[w.len - 5] = version;
	}
	return w.len;
}

static int read_name(const uint8_t *m, size_t len, size_t off, char *out)
{
	uint8_t n[DNS_NAME_MAX];
	size_t nl;

	if (dns_name_read(m, len, &off, n, &nl) < 0)
		return -1;
	dns_name_str(n, out, 300);
	return (int)off;
}

int main(void)
{
	uint8_t m[600], b[600];
	char s[300];
	struct dns_query q;
	size_t len;

	/* --- names --- */
	{
		static const uint8_t msg[] = {
			/* 0: www.example.org */ 3, 'w', 'w', 'w', 7, 'e', 'x', 'a', 'm', 'p', 'l', 'e',
			3, 'o', 'r', 'g', 0,
			/* 17: mail + pointer to 4 */ 4, 'm', 'a', 'i', 'l', 0xc0, 4,
			/* 24: pointer to itself */ 0xc0, 24,
			/* 26: pointer forward to 30 */ 0xc0, 30, 0, 0, 1, 'a', 0,
			/* 33: a pointer chain backwards: to 17 */ 0xc0, 17,
		};
		T_EQ(read_name(msg, sizeof(msg), 0, s), 17, "plain name: read to its end");
		T_STREQ(s, "www.example.org.", "plain name text");
		T_EQ(read_name(msg, sizeof(msg), 17, s), 24, "compressed name: offset after the pointer");
		T_STREQ(s, "mail.example.org.", "compressed name text");
		T_EQ(read_name(msg, sizeof(msg), 24, s), -1, "pointer to itself (a loop) is rejected");
		T_EQ(read_name(msg, sizeof(msg), 26, s), -1, "forward pointer is rejected");
		T_EQ(read_name(msg, sizeof(msg), 33, s), 35, "pointer to a compressed name");
		T_STREQ(s, "mail.example.org.", "two hops");
		T_EQ(read_name(msg, 10, 0, s), -1, "name running past the end is rejected");
		T_EQ(read_name(msg, 23, 17, s), -1, "pointer cut in half is rejected");
	}
	{
		uint8_t msg[300];

		memset(msg, 'a', sizeof(msg));
		msg[0] = 64;
		msg[65] = 0;
		T_EQ(read_name(msg, sizeof(msg), 0, s), -1, "64-byte label is rejected");
		msg[0] = 63;
		msg[64] = 0;
		T_EQ(read_name(msg, sizeof(msg), 0, s), 65, "63-byte label is accepted");
		/* 5 labels of 63 = 320 bytes > 255 */
		for (int i = 0; i < 4; i++)
			msg[i * 64] = 63;
		msg[256] = 0;
		T_EQ(read_name(msg, 257, 0, s), -1, "name over 255 bytes is rejected");
		msg[0] = 0x40;
		T_EQ(read_name(msg, sizeof(msg), 0, s), -1, "extended label type 01 is rejected");
		msg[0] = 0x80;
		T_EQ(read_name(msg, sizeof(msg), 0, s), -1, "reserved label type 10 is rejected");
	}
	{
		/* a long chain of backward pointers: bounded, no crash */
		uint8_t msg[600];
		msg[0] = 0;
		for (size_t i = 1; i + 1 < sizeof(msg); i += 2) {
			size_t target = i == 1 ? 0 : i - 2;
			msg[i] = 0xc0 | (uint8_t)(target >> 8);
			msg[i + 1] = (uint8_t)target;
		}
		T_EQ(read_name(msg, sizeof(msg), 597, s), -1, "pointer chain over 128 hops is rejected");
	}
	{
		uint8_t n[DNS_NAME_MAX];
		size_t nl;
		char big[300];

		T_EQ(dns_name_from_str("a.b.", n, &nl), 0, "text name with trailing dot");
		T_EQ(nl, 5, "a.b. is 5 bytes");
		T_EQ(dns_name_from_str("a..b", n, &nl), -1, "empty label is invalid");
		memset(big, 'x', sizeof(big));
		big[64] = '\0';
		T_EQ(dns_name_from_str(big, n, &nl), -1, "64-char label is invalid");
	}

	/* --- compression when building --- */
	{
		struct dns_wbuf w;
		uint8_t n1[DNS_NAME_MAX], n2[DNS_NAME_MAX], n3[DNS_NAME_MAX];
		size_t l1, l2, l3, off = 0;

		dns_name_from_str("www.Example.org", n1, &l1);
		dns_name_from_str("mail.example.ORG", n2, &l2);
		dns_name_from_str("example.org", n3, &l3);
		dns_wbuf_init(&w, b, sizeof(b));
		dns_wput_name(&w, n1, l1);
		T_EQ(w.len, 17, "first name written out");
		dns_wput_name(&w, n2, l2);
		T_EQ(w.len, 17 + 5 + 2, "second name: new label + pointer");
		T_EQ(dns_get16(b + 22), 0xc000 | 4, "pointer to the shared suffix (case-insensitive)");
		dns_wput_name(&w, n3, l3);
		T_EQ(w.len, 17 + 7 + 2, "third name: only a pointer");
		off = 17;
		T_EQ(read_name(b, w.len, (size_t)off, s), 24, "compressed name reads back");
		T_STREQ(s, "mail.Example.org.", "with the case of the first occurrence");
		dns_wbuf_init(&w, b, 10);
		dns_wput_name(&w, n1, l1);
		T_OK(w.overflow, "a name that does not fit sets overflow");
	}

	/* --- queries --- */
	len = mkquery(m, "Web.Berth.Internal", DNS_T_A, false, 0);
	T_EQ(dns_query_parse(m, len, &q), 0, "good query parses");
	T_EQ(q.id, 0x1234, "its id");
	T_EQ(q.qtype, DNS_T_A, "its type");
	T_OK(!memcmp(q.lname, "\003web\005berth\010internal", 20), "lower-cased name");
	T_OK(!memcmp(q.name, "\003Web\005Berth\010Internal", 20), "name as sent");
	T_OK(!q.edns, "no OPT: no EDNS");
	T_EQ(dns_query_parse(m, 11, &q), -1, "11 bytes: dropped");
	T_EQ(dns_query_parse(m, len - 1, &q), DNS_R_FORMERR, "question cut short: FORMERR");
	m[2] |= 0x80;
	T_EQ(dns_query_parse(m, len, &q), -1, "a response (QR=1) is dropped, never answered");
	m[2] &= 0x7f;
	m[2] |= 2 << 3;
	T_EQ(dns_query_parse(m, len, &q), DNS_R_NOTIMP, "opcode STATUS: NOTIMP");
	T_OK(q.has_q, "NOTIMP still echoes the question");
	m[2] &= (uint8_t)~(0xf << 3);
	m[5] = 0;
	T_EQ(dns_query_parse(m, len, &q), DNS_R_FORMERR, "QDCOUNT 0: FORMERR");
	m[5] = 2;
	T_EQ(dns_query_parse(m, len, &q), DNS_R_FORMERR, "QDCOUNT 2: FORMERR");
	m[5] = 1;
	m[7] = 3;
	T_EQ(dns_query_parse(m, len, &q), DNS_R_FORMERR, "ANCOUNT larger than the message: FORMERR");
	m[7] = 0;
	m[len] = 0;
	T_EQ(dns_query_parse(m, len + 1, &q), DNS_R_FORMERR, "trailing garbage: FORMERR");

	len = mkquery(m, "a.b", DNS_T_AAAA, true, 0);
	T_EQ(dns_query_parse(m, len, &q), 0, "query with OPT parses");
	T_OK(q.edns && q.edns_size == 4096 && q.edns_do, "OPT: payload 4096, DO bit");
	len = mkquery(m, "a.b", DNS_T_AAAA, true, 1);
	T_EQ(dns_query_parse(m, len, &q), DNS_R_BADVERS, "EDNS version 1: BADVERS");
	len = mkquery(m, "a.b", DNS_T_AAAA, true, 0);
	memcpy(m + len, m + len - 11, 11);
	m[11] = 2;
	T_EQ(dns_query_parse(m, len + 11, &q), DNS_R_FORMERR, "two OPT records: FORMERR");
	m[11] = 0;
	m[7] = 1;
	T_EQ(dns_query_parse(m, len, &q), DNS_R_FORMERR, "OPT in the answer section: FORMERR");
	m[7] = 0;
	m[11] = 1;
	m[len - 11] = 1;    /* OPT owner not root: a 1-byte label follows... malformed */
	T_EQ(dns_query_parse(m, len, &q), DNS_R_FORMERR, "OPT with a broken owner name: FORMERR");

	/* error replies echo id, question and OPT */
	len = mkquery(m, "x.y", DNS_T_A, true, 1);
	T_EQ(dns_query_parse(m, len, &q), DNS_R_BADVERS, "BADVERS query");
	len = dns_error_reply(&q, DNS_R_BADVERS, b, sizeof(b));
	T_EQ(len, 12 + 9 + 11, "BADVERS reply: header, question, OPT");
	T_EQ(dns_get16(b), 0x1234, "reply keeps the id");
	T_EQ(b[3] & 0xf, 0, "BADVERS: low RCODE bits 0");
	T_EQ(b[len - 6], 1, "BADVERS: extended RCODE 1 in OPT");
	T_OK(b[2] & 0x80 && b[3] & 0x80, "QR and RA set");
	return t_done();
}
