/* dns_int.h - what the files of dns/ share: wire format, record lookup, the
 * pure query path and the cache. Not part of the module's interface (only
 * the files of dns/ and their tests include it). */
#ifndef BERTH_DNS_INT_H
#define BERTH_DNS_INT_H

#include "dns/dns.h"

#define DNS_HDR_LEN 12
#define DNS_NAME_MAX 255            /* wire form, with the root byte */
#define DNS_LABEL_MAX 63
#define DNS_MSG_MAX 65535

enum {
	DNS_T_A = 1, DNS_T_NS = 2, DNS_T_CNAME = 5, DNS_T_SOA = 6, DNS_T_PTR = 12,
	DNS_T_MX = 15, DNS_T_TXT = 16, DNS_T_AAAA = 28, DNS_T_SRV = 33, DNS_T_OPT = 41,
	DNS_T_IXFR = 251, DNS_T_AXFR = 252, DNS_T_ANY = 255,
};
enum { DNS_C_IN = 1, DNS_C_ANY = 255 };
enum {
	DNS_R_NOERROR = 0, DNS_R_FORMERR = 1, DNS_R_SERVFAIL = 2, DNS_R_NXDOMAIN = 3,
	DNS_R_NOTIMP = 4, DNS_R_REFUSED = 5, DNS_R_BADVERS = 16,
};
/* header flag bits (host order of the 16-bit flags word) */
#define DNS_F_QR 0x8000
#define DNS_F_AA 0x0400
#define DNS_F_TC 0x0200
#define DNS_F_RD 0x0100
#define DNS_F_RA 0x0080
#define DNS_F_AD 0x0020
#define DNS_F_CD 0x0010
#define DNS_OPCODE(f) (((f) >> 11) & 0xf)

static inline uint16_t dns_get16(const uint8_t *p)
{
	return (uint16_t)(p[0] << 8 | p[1]);
}
static inline uint32_t dns_get32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}
static inline void dns_put16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)(v >> 8);
	p[1] = (uint8_t)v;
}
static inline void dns_put32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)(v >> 24);
	p[1] = (uint8_t)(v >> 16);
	p[2] = (uint8_t)(v >> 8);
	p[3] = (uint8_t)v;
}

/* ---- wire.c: parsing ---------------------------------------------------- */

/* Read the (possibly compressed) name at *off of m[0..len) into out as
 * uncompressed wire form; *outlen gets its length (with the root byte) and
 * *off moves past the name's bytes at that place. Pointers must point
 * strictly backwards (so no loop is possible); labels over 63 bytes, the
 * reserved label types and names over 255 bytes are rejected.
 * Returns 0, or -1 on any malformation. */
int dns_name_read(const uint8_t *m, size_t len, size_t *off, uint8_t *out, size_t *outlen);
void dns_name_lower(uint8_t *dst, const uint8_t *src, size_t len);
/* "www.example.org" from wire form (for logs and tests); buf >= 256 bytes. */
const char *dns_name_str(const uint8_t *name, char *buf, size_t bufsz);
/* The wire form of a dotted text name ("a.b" or "a.b."); -1 if invalid. */
int dns_name_from_str(const char *s, uint8_t *out, size_t *outlen);

struct dns_rr {                     /* one resource record, as offsets into m */
	size_t off;                 /* start of its owner name */
	size_t ttl_off;             /* offset of its TTL field */
	size_t rdata;               /* offset of RDATA */
	size_t end;                 /* first byte after it */
	uint16_t type, class, rdlen;
	uint32_t ttl;
};
/* Parse the RR at *off (owner name skipped, not copied); -1 if malformed. */
int dns_rr_read(const uint8_t *m, size_t len, size_t *off, struct dns_rr *rr);

struct dns_query {
	uint16_t id, flags;
	bool has_q;                 /* the question parsed */
	size_t name_len;
	uint16_t qtype, qclass;
	size_t qend;                /* offset after the question */
	bool edns;                  /* an OPT record came */
	uint8_t edns_version;
	bool edns_do;
	uint16_t edns_size;         /* requestor's UDP payload size */
	/* last: dns_query_parse clears everything before name */
	uint8_t name[DNS_NAME_MAX]; /* as sent (its case is echoed) */
	uint8_t lname[DNS_NAME_MAX];/* lower-cased */
};
/* Parse a query. Returns 0 (q complete), -1 to drop it silently (too short
 * for a header, or a response), or an RCODE to answer with (FORMERR, NOTIMP,
 * BADVERS); q->has_q says whether the question can be echoed. */
int dns_query_parse(const uint8_t *m, size_t len, struct dns_query *q);

/* ---- wire.c: building --------------------------------------------------- */

#define DNS_COMP_MAX 64
struct dns_wbuf {
	uint8_t *b;
	size_t len, max;            /* max: the size limit of this message */
	bool overflow;              /* something did not fit */
	unsigned ncomp;
	uint16_t comp[DNS_COMP_MAX];/* offsets of name suffixes written */
};
void dns_wbuf_init(struct dns_wbuf *w, uint8_t *b, size_t max);
void dns_wput16(struct dns_wbuf *w, uint16_t v);
void dns_wput32(struct dns_wbuf *w, uint32_t v);
void dns_wput(struct dns_wbuf *w, const void *p, size_t n);
/* Write a wire-form name, compressed against the names written so far. */
void dns_wput_name(struct dns_wbuf *w, const uint8_t *name, size_t len);
/* Start an RR; returns the offset of RDLENGTH for dns_rr_end(). */
size_t dns_rr_begin(struct dns_wbuf *w, const uint8_t *name, size_t nlen, uint16_t type,
		    uint32_t ttl);
void dns_rr_end(struct dns_wbuf *w, size_t rdlen_off);
/* The 11-byte OPT record we send: payload size, extended rcode, version 0. */
void dns_wput_opt(struct dns_wbuf *w, uint16_t payload, uint8_t ext_rcode, bool do_bit);

/* ---- records.c ----------------------------------------------------------- */

typedef uint64_t dns_netmask;       /* bit i: network i visible */

struct dns_addr_ent {
	struct ip_addr addr;
	uint8_t net;
	uint16_t ctr;               /* index of the owning container's node */
};
struct dns_srv_ent {                /* SRV ports of a name: one range, one protocol */
	uint16_t first, last;
	uint8_t proto;              /* 0 tcp, 1 udp, 2 sctp */
	bool own;                   /* declared by the container of this name */
	uint32_t refs;              /* declarations: its own, its service's members', static */
};
struct dns_srvs {
	uint16_t n, cap;
	struct dns_srv_ent v[];
};

#define DNS_NODE_USED 1
#define DNS_NODE_CTR 2              /* a container of this name is set */
#define DNS_NODE_SVC 4              /* a service with virtual IPs: its entries are
				       its VIPs (owner: the node itself), never a
				       container's or a `service =` group's */

/*
 * One label under DOMAIN: a container and/or a service (a `service =` group
 * of containers), or a service with virtual IPs (alone). Its address entries
 * are sorted by owner (the owners' names), each owner's in the order it gave
 * them, so that a set built in any order answers the same bytes; a node with
 * one entry keeps it inline. Kept small: one per container.
 */
struct dns_node {
	uint32_t hash;
	uint32_t key;               /* offset in r->keys: length byte + lower-cased label */
	uint8_t flags;
	uint8_t alog;               /* entries held: 0 the inline one, else 1 << alog */
	uint16_t svc;               /* a container's service node: index + 1; 0 none */
	uint16_t naddrs;
	uint16_t members;           /* containers whose service this is */
	dns_netmask nets;           /* a container's networks, a VIP service's
				       network (0: none) */
	struct dns_srvs *srvs;      /* NULL: none */
	union {
		struct dns_addr_ent one;
		struct dns_addr_ent *v;
	} a;
};
static inline const struct dns_addr_ent *dns_node_addrs(const struct dns_node *n)
{
	return n->alog ? n->a.v : &n->a.one;
}
struct dns_rzone {                  /* a reverse zone: one per subnet */
	struct ip_prefix subnet;
	uint8_t net;
	uint8_t apex[DNS_NAME_MAX]; /* e.g. 88.10.in-addr.arpa, wire form */
	size_t apex_len;
};
struct dns_addr_slot {              /* by address: the owner's entry that answers PTR */
	uint32_t hash;
	uint16_t ctr1;              /* owner's node index + 1; 0: empty slot */
	uint8_t k;                  /* the k-th of the owner's own entries */
	bool dups;                  /* other containers may hold the address too */
};
struct dns_records {
	uint8_t domain[DNS_NAME_MAX];   /* lower-cased wire form */
	size_t domain_len;
	int domain_labels;
	uint32_t ttl;
	uint32_t serial;
	char *netnames[DNS_MAX_NETWORKS];
	unsigned nnets;
	ARRAY(struct dns_rzone) zones;
	ARRAY(struct dns_node) nodes;
	uint32_t nodes_live;
	uint32_t free_node;         /* a free node's index + 1 (chained by hash); 0 none */
	uint16_t *node_tab;         /* open addressing: node index + 1, 0 empty */
	uint32_t node_tab_size;
	struct dns_addr_slot *addr_tab;
	uint32_t addr_tab_size, naddr_tab;
	uint8_t *keys;              /* the nodes' labels, exact size, one after another */
	uint32_t keys_len, keys_cap, keys_dead;
	size_t memory;
};
static inline const uint8_t *dns_node_key(const struct dns_records *r, const struct dns_node *n)
{
	return r->keys + n->key;
}

/* The node for a label (lower-cased, without length byte), or NULL. */
const struct dns_node *dns_records_find(const struct dns_records *r, const uint8_t *label,
					size_t len);
/* The entry owning addr (a container's address or a service's VIP: the
 * owner's node has DNS_NODE_CTR or DNS_NODE_SVC), or NULL. */
const struct dns_addr_ent *dns_records_find_addr(const struct dns_records *r,
						 const struct ip_addr *a);
/* The networks a client at src sees (the scoping rule in dns.h). */
dns_netmask dns_records_scope(const struct dns_records *r, const struct ip_addr *src);

/* ---- answer.c: the query path without sockets ---------------------------- */

enum dns_action { DNS_DROP, DNS_REPLY, DNS_FORWARD };

struct dns_ctx {                    /* what the query path needs to know */
	const struct dns_records *rec;  /* may be NULL */
	const struct ip_addr *src;      /* client address */
	const struct ip_addr *local;    /* address the query arrived on (NS glue) */
	bool tcp;
	uint32_t rotate;            /* per-query counter: rotation of services */
	struct dns_stats *stats;
	bool general_only;          /* never the fast path (answer_fast): for the
				       tests that hold both to the same bytes */
};
/* Answer m from the records into out (outcap bytes, >= 512), or say it must
 * be forwarded (q then holds the parsed query). *outlen gets the reply's
 * length for DNS_REPLY. */
enum dns_action dns_answer(struct dns_ctx *c, const uint8_t *m, size_t len,
			   struct dns_query *q, uint8_t *out, size_t outcap, size_t *outlen);
/* The largest reply the client of q accepts. */
size_t dns_reply_limit(const struct dns_query *q, bool tcp);
/* A reply to q with only a header, its question and RCODE rcode (and OPT
 * when q had one). Returns its length. */
size_t dns_error_reply(const struct dns_query *q, int rcode, uint8_t *out, size_t outcap);
/* Turn msg (an upstream answer normalised by dns_upstream_check, or a cached
 * copy) into the reply to q: ID, question case, flags (AA cleared: we are not
 * the authority), OPT, TTLs minus age,
 * trimmed to limit (additional records first, then TC=1). Returns the
 * length, 0 if it cannot be built. */
size_t dns_relay_reply(const struct dns_query *q, const uint8_t *msg, size_t len,
		       uint32_t age, size_t limit, uint8_t *out, size_t outcap);
void dns_count_rcode(struct dns_stats *st, const uint8_t *reply, size_t len);

/* ---- forward.c: upstream answers and the cache -------------------------- */

/* Build the query sent upstream for q with ID id. Returns its length. */
size_t dns_upstream_query(const struct dns_query *q, uint16_t id, uint8_t *out, size_t outcap);
/* Check an upstream answer to our query (id, q's question) and normalise it
 * in place: the OPT record (and anything after it) is cut. Returns
 *   >0  the new length: a usable answer (NOERROR or NXDOMAIN);
 *    0  a valid answer saying this upstream failed (SERVFAIL, REFUSED, ...);
 *   -1  not an answer to our query (ignore it, keep waiting). */
int dns_upstream_check(const struct dns_query *q, uint16_t id, uint8_t *m, size_t len);
/* The TTL an answer may be cached for (positive: least TTL of the answer
 * and authority; negative: RFC 2308 SOA minimum); 0: do not cache. */
uint32_t dns_cache_ttl(const uint8_t *m, size_t len);

struct dns_cache;
struct dns_cache *dns_cache_new(unsigned max_entries);
void dns_cache_free(struct dns_cache *c);
void dns_cache_put(struct dns_cache *c, const struct dns_query *q, const uint8_t *m, size_t len,
		   uint32_t ttl, uint64_t now_ms);
/* The cached answer for q's question, or NULL (expired entries are dropped);
 * *age gets the seconds since it was stored. */
const uint8_t *dns_cache_get(struct dns_cache *c, const struct dns_query *q, uint64_t now_ms,
			     size_t *len, uint32_t *age);
unsigned dns_cache_count(const struct dns_cache *c);

#endif
