/* netlink.h - berth's own netlink transport (libmnl is the model): sockets, a
 * bounds-checked message builder, validated attribute parsing, request/ACK with
 * seq/portid checks and extended ACKs, dumps, and batched nfnetlink transactions.
 * Internal to net/ (and its unit tests); the NAT and firewall code build on it. */
#ifndef BERTH_NET_NETLINK_H
#define BERTH_NET_NETLINK_H

#include "lib/lib.h"

#include <linux/netlink.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Receive buffer: large enough for one dump part (the kernel sizes dump skbs
 * from the reader's buffer, up to 32 KiB); a bigger datagram is MSG_TRUNC. */
#define NL_RECV_BUF 32768

/*
 * Socket. Opened with CLOEXEC, bound to a kernel-chosen port id, with
 * NETLINK_EXT_ACK and NETLINK_CAP_ACK switched on where the kernel has them.
 */
struct nl_sock {
	int fd;                     /* -1 when closed */
	int proto;                  /* NETLINK_ROUTE, NETLINK_NETFILTER, ... */
	uint32_t portid;            /* our address, from getsockname() */
	uint32_t seq;               /* last sequence number used */
};

int nl_open(struct nl_sock *s, int proto, struct err *e);
void nl_close(struct nl_sock *s);   /* safe on a closed socket */

/*
 * Builder. A struct nl_msg writes one or more netlink messages into a buffer
 * the caller owns (usually on the stack). Every put is bounds-checked: a put
 * that does not fit writes nothing and marks the builder as overflowed, and
 * the overflow is reported once, by nl_msg_error() / nl_talk(), as -EMSGSIZE.
 * So a sequence of puts needs no check after each call.
 *
 *   struct nl_msg m; char buf[1024];
 *   nl_msg_init(&m, buf, sizeof(buf));
 *   nlh = nl_msg_start(&m, RTM_NEWLINK, NLM_F_REQUEST | NLM_F_ACK | NLM_F_CREATE);
 *   ifi = nl_msg_put_header(&m, sizeof(*ifi));
 *   nl_put_str(&m, IFLA_IFNAME, "berth0");
 *   nest = nl_nest_start(&m, IFLA_LINKINFO);
 *   nl_put_str(&m, IFLA_INFO_KIND, "bridge");
 *   nl_nest_end(&m, nest);
 */
#define NL_MSG_MAX 65536            /* messages in one builder (one sendmsg) */

struct nl_msg {
	uint8_t *buf;
	size_t cap;                 /* bytes available in buf */
	size_t len;                 /* bytes used (all finished + current message) */
	size_t cur;                 /* offset of the message being built */
	unsigned count;             /* messages started */
	bool overflow;              /* a put did not fit, or more than NL_MSG_MAX */
};

void nl_msg_init(struct nl_msg *m, void *buf, size_t cap);
/* Start a message (nlmsg_seq/pid are filled in by nl_talk). NULL on overflow. */
struct nlmsghdr *nl_msg_start(struct nl_msg *m, uint16_t type, uint16_t flags);
/* Append a zeroed family header (ifinfomsg, ifaddrmsg, nfgenmsg...) to the
 * current message and return it. NULL on overflow. */
void *nl_msg_put_header(struct nl_msg *m, size_t len);
/* The message at index i (0-based), or NULL. */
struct nlmsghdr *nl_msg_at(const struct nl_msg *m, unsigned i);
/* -EMSGSIZE once any put overflowed, else 0. */
int nl_msg_error(const struct nl_msg *m);

/* Attributes of the current message. Each returns false (and writes nothing)
 * when it would not fit. */
bool nl_put(struct nl_msg *m, uint16_t type, const void *data, size_t len);
bool nl_put_u8(struct nl_msg *m, uint16_t type, uint8_t v);
bool nl_put_u16(struct nl_msg *m, uint16_t type, uint16_t v);
bool nl_put_u32(struct nl_msg *m, uint16_t type, uint32_t v);
bool nl_put_be16(struct nl_msg *m, uint16_t type, uint16_t host_order);
bool nl_put_be32(struct nl_msg *m, uint16_t type, uint32_t host_order);
bool nl_put_str(struct nl_msg *m, uint16_t type, const char *s);   /* with its NUL */
/* Open a nested attribute; close it with nl_nest_end. NULL on overflow, and
 * nl_nest_end(m, NULL) is a no-op so the caller need not check. */
struct nlattr *nl_nest_start(struct nl_msg *m, uint16_t type);
void nl_nest_end(struct nl_msg *m, struct nlattr *nest);

/*
 * Parser. Attribute walks never trust a length: each attribute header and its
 * payload must lie inside the region, or the walk stops with -EBADMSG.
 */
/* Is there a whole message at nlh within len bytes? */
bool nl_msg_ok(const struct nlmsghdr *nlh, size_t len);
/* Payload of a message after its family header of hdrlen bytes; *len gets the
 * attribute region's size. NULL if the message is shorter than the header. */
const void *nl_msg_attrs(const struct nlmsghdr *nlh, size_t hdrlen, size_t *len);

/* Fill tb[0..max] with the last attribute of each type (others NULL); types
 * above max are skipped (newer kernels add attributes). Returns 0 or -EBADMSG. */
int nl_attr_parse(const void *attrs, size_t len, const struct nlattr **tb, unsigned max);
/* Same, on the attributes of a message with a family header of hdrlen bytes. */
int nl_msg_parse(const struct nlmsghdr *nlh, size_t hdrlen, const struct nlattr **tb,
		 unsigned max);
/* Same, on the payload of a nested attribute. */
int nl_nest_parse(const struct nlattr *nest, const struct nlattr **tb, unsigned max);

/* Iterate: for (a = nl_attr_first(p, len, &it); a; a = nl_attr_next(&it)).
 * it.bad is set when the walk stopped on a malformed attribute. */
struct nl_attr_iter {
	const uint8_t *p, *end;
	bool bad;
};
const struct nlattr *nl_attr_first(const void *attrs, size_t len, struct nl_attr_iter *it);
const struct nlattr *nl_attr_next(struct nl_attr_iter *it);

static inline uint16_t nl_attr_type(const struct nlattr *a)
{
	return a->nla_type & NLA_TYPE_MASK;
}
static inline const void *nl_attr_data(const struct nlattr *a)
{
	return (const uint8_t *)a + NLA_HDRLEN;
}
static inline size_t nl_attr_len(const struct nlattr *a)
{
	return a->nla_len - NLA_HDRLEN;
}
/* Typed getters: 0 and *out set, or -EBADMSG when a is NULL or its payload
 * has the wrong size. nl_attr_str requires a NUL inside the payload. */
int nl_attr_u8(const struct nlattr *a, uint8_t *out);
int nl_attr_u16(const struct nlattr *a, uint16_t *out);
int nl_attr_u32(const struct nlattr *a, uint32_t *out);
int nl_attr_str(const struct nlattr *a, const char **out);

/*
 * Request / reply.
 *
 * nl_talk sends every message of m in one sendmsg, numbering them with
 * consecutive sequence numbers, and reads until each message that asked for
 * a reply (NLM_F_ACK or NLM_F_DUMP) got its ACK, error or NLMSG_DONE. Replies
 * are matched by sequence number and port id; anything else (events, stale
 * replies) is skipped. Data messages (dump parts, echoes) go to on_data.
 * Every error is reported to on_error, which returns 0 to accept it (EEXIST
 * on an idempotent create, say) or a negative code to fail; without on_error
 * every error fails. The first failure is returned as -errno and e gets
 * "<strerror> (<ENAME>)", plus ": <text>" when the kernel gave an extended
 * ACK message, so the caller adds what it was doing with err_wrap():
 * "create veth bh-web/eth0 for container web: File exists (EEXIST)".
 * All replies are drained even after a failure, so the socket stays usable.
 */
typedef int nl_data_fn(const struct nlmsghdr *nlh, void *ctx);
/* index: which message of m (0-based); ext: kernel's message or NULL. */
typedef int nl_error_fn(unsigned index, int code, const char *ext, void *ctx);

struct nl_handlers {
	nl_data_fn *on_data;
	nl_error_fn *on_error;
	void *ctx;
};

int nl_talk(struct nl_sock *s, struct nl_msg *m, const struct nl_handlers *h, struct err *e);

/*
 * Parse one received message the way nl_talk does (exposed for tests):
 * for NLMSG_ERROR, *code gets the error (0 = ACK) and ext the extended ACK
 * text (or ""), limited to extlen bytes. Returns 0 or -EBADMSG.
 */
int nl_parse_error(const struct nlmsghdr *nlh, int *code, char *ext, size_t extlen);

/*
 * nfnetlink batches: begin, the messages, end; the kernel applies all of them
 * or none. Begin and end carry res_id = the subsystem (NFNL_SUBSYS_NFTABLES).
 * Messages inside should set NLM_F_ACK so that each one's outcome comes back
 * (mapped to its index by nl_talk's on_error); an error of the whole
 * transaction (commit failure) is reported against the begin message.
 * For big batches (hundreds of set elements), set NLM_F_ACK on the last
 * message only: the kernel reports every failing message anyway, in order,
 * before that last ACK, and the receive buffer does not fill with ACKs.
 */
struct nlmsghdr *nl_batch_begin(struct nl_msg *m, uint16_t subsys);
struct nlmsghdr *nl_batch_end(struct nl_msg *m, uint16_t subsys);
/* Start an nfnetlink message: type (subsys << 8 | msg), nfgenmsg with family. */
struct nlmsghdr *nl_nfmsg_start(struct nl_msg *m, uint16_t subsys, uint16_t msg,
				uint16_t flags, uint8_t family);

#endif
