/* nft.h - nf_tables encoder/decoder on net/netlink: tables, chains, sets and
 * maps, elements and rules as plain structs, written into one batch. Internal
 * to net/ (NAT, the firewall) and its unit tests; no state, no socket. */
#ifndef BERTH_NET_NFT_H
#define BERTH_NET_NFT_H

#include "net/netlink.h"

#include <netinet/in.h>          /* before the UAPI headers: they defer to libc */
#include <linux/netfilter.h>
#include <linux/netfilter/nf_tables.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/*
 * Objects are described by structs (a chain, a set, a rule as an array of
 * expressions) and written by nft_put_*() into a struct nft_batch, which is a
 * struct nl_msg in a heap buffer plus the batch framing. The decoder turns
 * messages back into the same structs, so every encoder path has a
 * build -> parse -> compare test that needs no root (tests/unit/test_nft.c).
 *
 * The caller chooses the size of a batch's buffer; every put is bounds-checked
 * (netlink.h) and an overflow surfaces once, as -EMSGSIZE from nft_batch_send,
 * so a caller building a big batch retries with twice the room.
 */

#define NFT_NAME_MAX 32             /* table, chain, set names with their NUL (kernel: 256) */
#define NFT_VALUE_MAX 16            /* one register's worth: cmp, bitwise, immediate */
#define NFT_KEY_MAX 64              /* a concatenated set key or map value */
#define NFT_CONCAT_MAX 8            /* fields in a concatenation */
#define NFT_RULE_MAX 24             /* expressions in one rule */

/* nft's data type numbers (userspace names; the kernel only stores them),
 * so that `nft list` prints keys as "tcp . 8080", not hex. A concatenation's
 * type is the field types shifted in 6 bits at a time: nft_type_concat(). */
enum {
	NFT_TYPE_VERDICT = 1,
	NFT_TYPE_IPADDR = 7,
	NFT_TYPE_IP6ADDR = 8,
	NFT_TYPE_INET_PROTO = 12,
	NFT_TYPE_INET_SERVICE = 13,
	NFT_TYPE_MARK = 19,         /* a host-order u32 (numgen's result) */
	NFT_TYPE_IFNAME = 41,
};
uint32_t nft_type_concat(const uint32_t *types, unsigned n);
/* nft's byte orders, kept in a set's user data (libnftnl's udata TLVs). */
enum { NFT_BYTEORDER_HOST = 1, NFT_BYTEORDER_BIG = 2 };

/* Registers: the verdict, and 32-bit registers 8..23 (NFT_REG32_00..15); a
 * 128-bit NFT_REG_1..4 is the same storage as NFT_REG32_00 + 4 * (n - 1). A
 * concatenation loaded into consecutive 32-bit registers is one key; each
 * field takes a multiple of 4 bytes (nft_field_len). */
static inline uint32_t nft_field_len(uint32_t bytes)
{
	return (bytes + 3) & ~3u;
}

enum nft_expr_kind {
	NFT_X_META = 1,     /* key, dreg                          [ meta load KEY => reg ] */
	NFT_X_PAYLOAD,      /* key = base, off, len, dreg         [ payload load ... ] */
	NFT_X_CMP,          /* op, sreg, data[len]                [ cmp OP reg data ] */
	NFT_X_BITWISE,      /* sreg, dreg, len, data = mask, xor  [ bitwise reg = (reg & mask) ^ xor ] */
	NFT_X_LOOKUP,       /* set, sreg, dreg (0: none), flags   [ lookup reg set S [dreg] ] */
	NFT_X_IMMEDIATE,    /* dreg, data[len]                    [ immediate reg data ] */
	NFT_X_VERDICT,      /* verdict (NF_ACCEPT, NFT_JUMP...), chain for jump/goto */
	NFT_X_CT,           /* key, dir (0 orig, 1 reply, 0xff none), dreg; or sreg: set the key */
	NFT_X_NAT,          /* key = NFT_NAT_DNAT/SNAT, op = NFPROTO_*, sreg = addr, sreg2 = proto */
	NFT_X_MASQ,         /* (no arguments) */
	NFT_X_COUNTER,      /* packets, bytes (on parse) */
	NFT_X_FIB,          /* key = NFT_FIB_RESULT_*, flags = NFTA_FIB_F_*, dreg */
	NFT_X_VMAP,         /* set, sreg: the verdict map's verdict [ lookup reg set S dreg 0 ] */
	NFT_X_NOTRACK,      /* (no arguments): the packet skips conntrack (raw priority) */
	NFT_X_NUMGEN,       /* key = NFT_NG_RANDOM/_INCREMENTAL, modulus, off = offset, dreg
			     *                                    [ numgen reg = inc mod N offset O ] */
	NFT_X_REJECT,       /* key = NFT_REJECT_TCP_RST/_ICMPX_UNREACH/..., op = icmp code */
	NFT_X_DYNSET,       /* op = NFT_DYNSET_OP_ADD/_UPDATE/_DELETE, name = set, sreg = key,
			     * sreg2 = data (0: none), timeout_ms (0: the set's), flags
			     *                                    [ dynset OP reg_key R set S sreg_data D ] */
};

#define NFT_CT_DIR_NONE 0xff

struct nft_expr {
	uint8_t kind;               /* enum nft_expr_kind */
	uint8_t op;                 /* cmp: enum nft_cmp_ops; nat: family */
	uint8_t dir;                /* ct: IP_CT_DIR_ORIGINAL/REPLY or NFT_CT_DIR_NONE */
	uint8_t len;                /* bytes: payload load, cmp/immediate data, bitwise */
	uint32_t key;               /* meta/ct key, payload base, fib result, nat type */
	uint32_t off;               /* payload offset */
	uint32_t flags;             /* lookup NFT_LOOKUP_F_INV, fib NFTA_FIB_F_* */
	uint32_t sreg, dreg, sreg2;
	int32_t verdict;
	uint8_t data[NFT_VALUE_MAX];
	uint8_t xor[NFT_VALUE_MAX];
	uint64_t packets, bytes;    /* counter */
	uint32_t modulus;           /* numgen */
	uint64_t timeout_ms;        /* dynset */
	char name[NFT_NAME_MAX];    /* lookup, dynset: set; verdict: chain */
};

/* Shorthands for building rules as arrays: struct nft_expr r[] = { ... }. */
#define NFT_META(k, r) { .kind = NFT_X_META, .key = (k), .dreg = (r) }
#define NFT_PAYLOAD(b, o, l, r) { .kind = NFT_X_PAYLOAD, .key = (b), .off = (o), .len = (l), .dreg = (r) }
#define NFT_CMP(o, r, l, ...) { .kind = NFT_X_CMP, .op = (o), .sreg = (r), .len = (l), .data = __VA_ARGS__ }
#define NFT_LOOKUP(s, r, d, f) { .kind = NFT_X_LOOKUP, .name = s, .sreg = (r), .dreg = (d), .flags = (f) }
#define NFT_CT(k, d, r) { .kind = NFT_X_CT, .key = (k), .dir = (d), .dreg = (r) }
#define NFT_CT_SET(k, r) { .kind = NFT_X_CT, .key = (k), .dir = NFT_CT_DIR_NONE, .sreg = (r) }
#define NFT_VERDICT(v, c) { .kind = NFT_X_VERDICT, .verdict = (v), .name = c }
#define NFT_VMAP(s, r) { .kind = NFT_X_VMAP, .name = s, .sreg = (r) }
#define NFT_FIB(res, f, r) { .kind = NFT_X_FIB, .key = (res), .flags = (f), .dreg = (r) }
#define NFT_NAT(t, fam, ra, rp) { .kind = NFT_X_NAT, .key = (t), .op = (fam), .sreg = (ra), .sreg2 = (rp) }
#define NFT_MASQ() { .kind = NFT_X_MASQ }
#define NFT_COUNTER() { .kind = NFT_X_COUNTER }
#define NFT_NOTRACK() { .kind = NFT_X_NOTRACK }
/* Matches the rules of nat.c and svc.c share: the packet's family is f
 * (NFPROTO_IPV4/6; clobbers NFT_REG_1), its transport destination port and
 * its layer-4 protocol into register r. */
#define NFT_NFPROTO_IS(f) NFT_META(NFT_META_NFPROTO, NFT_REG_1), NFT_CMP(NFT_CMP_EQ, NFT_REG_1, 1, { f })
#define NFT_TH_DPORT(r) NFT_PAYLOAD(NFT_PAYLOAD_TRANSPORT_HEADER, 2, 2, r)
#define NFT_L4PROTO(r) NFT_META(NFT_META_L4PROTO, r)
#define NFT_NUMGEN(t, mod, o, r) { .kind = NFT_X_NUMGEN, .key = (t), .modulus = (mod), .off = (o), .dreg = (r) }
/* "reject with tcp reset": NFT_REJECT(NFT_REJECT_TCP_RST, 0); "reject with
 * icmpx port-unreachable" (inet, bridge: ICMP or ICMPv6 as the packet):
 * NFT_REJECT(NFT_REJECT_ICMPX_UNREACH, NFT_REJECT_ICMPX_PORT_UNREACH) */
#define NFT_REJECT(t, code) { .kind = NFT_X_REJECT, .key = (t), .op = (code) }
/* Add or update the element keyed by sreg (with data from sreg2, for a
 * map) in set s from the packet path: the set needs NFT_SET_EVAL, and
 * NFT_SET_TIMEOUT for a timeout. */
#define NFT_DYNSET(o, s, rk, rd, tmo) { .kind = NFT_X_DYNSET, .op = (o), .name = s, .sreg = (rk), \
					.sreg2 = (rd), .timeout_ms = (tmo) }
/* (sreg & data) ^ xor -> dreg; fill .data (mask) and .xor afterwards, e.g. for
 * "ct status dnat": bitwise with mask IPS_DST_NAT, then cmp neq 0. */
#define NFT_BITWISE(s, d, l) { .kind = NFT_X_BITWISE, .sreg = (s), .dreg = (d), .len = (l) }

struct nft_chain {
	char name[NFT_NAME_MAX];
	char type[8];               /* "filter", "nat", "route"; "" for a regular chain */
	int hook;                   /* NF_INET_*; -1 for a regular chain */
	int32_t prio;               /* NF_IP_PRI_* */
	int policy;                 /* NF_ACCEPT or NF_DROP (base chains) */
};

struct nft_set {
	char name[NFT_NAME_MAX];
	uint32_t flags;             /* NFT_SET_MAP, _INTERVAL, _CONCAT, _TIMEOUT, ... */
	uint32_t key_type, key_len; /* key_len: bytes, fields padded to 4 */
	uint8_t fields[NFT_CONCAT_MAX]; /* each field's unpadded length (concatenations) */
	unsigned n_fields;
	uint32_t data_type, data_len; /* maps: NFT_DATA_VERDICT (len 0) or a value type */
	bool counter;               /* each element has its own packet/byte counter */
	uint64_t timeout_ms;        /* default element timeout (NFT_SET_TIMEOUT) */
	uint32_t key_byteorder;     /* for nft's display only: NFT_BYTEORDER_HOST for
				     * strings (ifname); 0 writes no user data */
	uint32_t id;                /* NFTA_SET_ID: set by nft_put_set */
};

struct nft_elem {
	uint8_t key[NFT_KEY_MAX];
	uint8_t key_len;
	uint8_t data_len;           /* value maps */
	uint8_t data[NFT_KEY_MAX];
	bool has_verdict;           /* verdict maps */
	int32_t verdict;
	char chain[NFT_NAME_MAX];
	uint32_t flags;             /* NFT_SET_ELEM_INTERVAL_END */
	uint64_t timeout_ms;
	bool has_counter;           /* on parse: the element's counter */
	uint64_t packets, bytes;
};

struct nft_batch {
	struct nl_msg m;
	uint8_t *buf;
	size_t cap;
	uint32_t next_set_id;
};

/* Allocate a buffer of cap bytes and write the batch begin. -ENOMEM. */
int nft_batch_init(struct nft_batch *b, size_t cap);
void nft_batch_free(struct nft_batch *b);
/* Write the batch end, size the socket's send buffer for it, and send it;
 * every message asked for an ACK, so the first failure comes back as -errno
 * with the kernel's text in e (nl_talk). on_error may accept some (index is
 * the message's position in the batch, 0 = begin). -EMSGSIZE: the buffer
 * was too small. */
int nft_batch_send(struct nl_sock *s, struct nft_batch *b, nl_error_fn *on_error, void *ctx,
		   struct err *e);

/* The puts. Each writes one message (nft_put_elems as many as it needs) with
 * NLM_F_ACK, so that nl_talk maps an error back to its message. */
void nft_put_table(struct nft_batch *b, uint8_t family, const char *table, uint32_t flags);
void nft_put_del_table(struct nft_batch *b, uint8_t family, const char *table);
void nft_put_chain(struct nft_batch *b, uint8_t family, const char *table,
		   const struct nft_chain *c);
/* Delete a chain (no rule may jump to it) or a set (no rule may use it). */
void nft_put_del_chain(struct nft_batch *b, uint8_t family, const char *table, const char *chain);
void nft_put_del_set(struct nft_batch *b, uint8_t family, const char *table, const char *set);
void nft_put_flush_chain(struct nft_batch *b, uint8_t family, const char *table,
			 const char *chain);
/* Assigns s->id (a batch-local id later lookups may use). */
void nft_put_set(struct nft_batch *b, uint8_t family, const char *table, struct nft_set *s);
void nft_put_rule(struct nft_batch *b, uint8_t family, const char *table, const char *chain,
		  const struct nft_expr *x, size_t n);
/* NEWSETELEM (del = false) or DELSETELEM; packs n elements into messages of
 * at most ~32 KiB each. */
void nft_put_elems(struct nft_batch *b, uint8_t family, const char *table, const char *set,
		   bool del, const struct nft_elem *el, size_t n);
/* DESTROYSETELEM (Linux 6.3): delete the elements that exist, and no error
 * for those that do not (a dynamic set's element may time out between the
 * dump that found it and the batch). */
#define NFT_MSG_DESTROYSETELEM_ 30  /* NFT_MSG_DESTROYSETELEM, missing from older UAPI headers */
void nft_put_destroy_elems(struct nft_batch *b, uint8_t family, const char *table,
			   const char *set, const struct nft_elem *el, size_t n);
/* The same, streamed: begin, add one element at a time, end. */
struct nft_elems_writer {
	struct nft_batch *b;
	uint8_t family;
	bool del;
	bool destroy;               /* with del: DESTROYSETELEM */
	const char *table, *set;
	struct nlattr *list;        /* the current message's element list */
	size_t msg_start;
};
void nft_elems_begin(struct nft_elems_writer *w, struct nft_batch *b, uint8_t family,
		     const char *table, const char *set, bool del);
void nft_elems_add(struct nft_elems_writer *w, const struct nft_elem *el);
void nft_elems_end(struct nft_elems_writer *w);
/* Start a GETSETELEM dump of one set into m (request, not a batch). */
void nft_put_get_elems(struct nl_msg *m, uint8_t family, const char *table, const char *set);
/* A GETSETELEM of the one element with key->key (no dump): the kernel
 * answers with a NEWSETELEM holding the element (its data or verdict, for a
 * map) and the ACK, or with -ENOENT when the element, the set or the table
 * is missing (kernels since 4.x; berth needs newer ones anyway). */
void nft_put_get_elem(struct nl_msg *m, uint8_t family, const char *table, const char *set,
		      const struct nft_elem *key);

/*
 * Decoder. nft_parse_head reads what every nf_tables message has: its type
 * (NFT_MSG_*), family, and table (the first attribute of every object).
 * The others decode one kind of message into the structs above; they return
 * 0, -EBADMSG on malformed input, or -ENOTSUP for an expression this decoder
 * does not know.
 */
struct nft_head {
	uint16_t msg;               /* NFT_MSG_NEWRULE, ... */
	uint8_t family;
	char table[NFT_NAME_MAX];   /* "" when absent */
	char name[NFT_NAME_MAX];    /* chain (rules too) or set name; "" if none */
};
int nft_parse_head(const struct nlmsghdr *nlh, struct nft_head *h);
int nft_parse_chain(const struct nlmsghdr *nlh, struct nft_chain *c);
int nft_parse_set(const struct nlmsghdr *nlh, struct nft_set *s);
int nft_parse_rule(const struct nlmsghdr *nlh, struct nft_expr *x, size_t max, size_t *n);
/* Calls fn for each element of a NEWSETELEM/DELSETELEM message. */
typedef int nft_elem_fn(void *ctx, const struct nft_elem *el);
int nft_parse_elems(const struct nlmsghdr *nlh, nft_elem_fn *fn, void *ctx);

#endif
