/* netlink.c - netlink transport: sockets, bounded builder, validated parser, request/ACK, batches. */
#include "net/netlink.h"

#include <arpa/inet.h>
#include <errno.h>
#include <linux/netfilter/nfnetlink.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

/* A reply that never comes (a kernel bug, a wrong expectation of ours) must
 * not hang the daemon: give up after this long. */
#define NL_RECV_TIMEOUT_S 10
#define NL_SOCK_RCVBUF (1 << 20)

int nl_open(struct nl_sock *s, int proto, struct err *e)
{
	struct sockaddr_nl sa = { .nl_family = AF_NETLINK };
	socklen_t salen = sizeof(sa);
	struct timeval tv = { .tv_sec = NL_RECV_TIMEOUT_S };
	int one = 1, rcvbuf = NL_SOCK_RCVBUF, ret;

	s->proto = proto;
	s->seq = 0;
	s->portid = 0;
	s->fd = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, proto);
	if (s->fd < 0)
		return err_sys(e, errno, "netlink socket (protocol %d)", proto);
	if (bind(s->fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 ||
	    getsockname(s->fd, (struct sockaddr *)&sa, &salen) < 0) {
		ret = err_sys(e, errno, "bind netlink socket (protocol %d)", proto);
		goto err_close;
	}
	s->portid = sa.nl_pid;
	/* Best effort: older kernels lack them, and errors then come without text. */
	(void)setsockopt(s->fd, SOL_NETLINK, NETLINK_EXT_ACK, &one, sizeof(one));
	(void)setsockopt(s->fd, SOL_NETLINK, NETLINK_CAP_ACK, &one, sizeof(one));
	(void)setsockopt(s->fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	/* Room for the replies of a whole batch (each ACK costs ~1 KiB of
	 * buffer); FORCE works for root past net.core.rmem_max. */
	if (setsockopt(s->fd, SOL_SOCKET, SO_RCVBUFFORCE, &rcvbuf, sizeof(rcvbuf)) < 0)
		(void)setsockopt(s->fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof(rcvbuf));
	return 0;
err_close:
	close(s->fd);
	s->fd = -1;
	return ret;
}

void nl_close(struct nl_sock *s)
{
	if (s->fd >= 0)
		close(s->fd);
	s->fd = -1;
}

/* ---- builder ------------------------------------------------------------- */

void nl_msg_init(struct nl_msg *m, void *buf, size_t cap)
{
	m->buf = buf;
	m->cap = cap;
	m->len = 0;
	m->cur = 0;
	m->count = 0;
	m->overflow = false;
}

static struct nlmsghdr *cur_msg(const struct nl_msg *m)
{
	return m->count ? (struct nlmsghdr *)(void *)(m->buf + m->cur) : NULL;
}

/* Reserve n bytes (aligned) at the end of the current message, zeroed. */
static void *reserve(struct nl_msg *m, size_t n)
{
	struct nlmsghdr *nlh = cur_msg(m);
	size_t an = NLMSG_ALIGN(n);
	void *p;

	if (!nlh || m->overflow || an > m->cap - m->len || m->len - m->cur + an > UINT32_MAX) {
		m->overflow = true;
		return NULL;
	}
	p = m->buf + m->len;
	memset(p, 0, an);
	m->len += an;
	nlh->nlmsg_len = (uint32_t)(m->len - m->cur);
	return p;
}

struct nlmsghdr *nl_msg_start(struct nl_msg *m, uint16_t type, uint16_t flags)
{
	struct nlmsghdr *nlh;

	if (m->overflow || m->count >= NL_MSG_MAX || NLMSG_HDRLEN > m->cap - m->len) {
		m->overflow = true;
		return NULL;
	}
	m->cur = m->len;
	m->count++;
	nlh = (struct nlmsghdr *)(void *)(m->buf + m->cur);
	memset(nlh, 0, NLMSG_HDRLEN);
	nlh->nlmsg_len = NLMSG_HDRLEN;
	nlh->nlmsg_type = type;
	nlh->nlmsg_flags = flags;
	m->len += NLMSG_HDRLEN;
	return nlh;
}

void *nl_msg_put_header(struct nl_msg *m, size_t len)
{
	return reserve(m, len);
}

struct nlmsghdr *nl_msg_at(const struct nl_msg *m, unsigned i)
{
	size_t off = 0;

	for (unsigned k = 0; k < m->count && off < m->len; k++) {
		struct nlmsghdr *nlh = (struct nlmsghdr *)(void *)(m->buf + off);

		if (k == i)
			return nlh;
		off += NLMSG_ALIGN(nlh->nlmsg_len);
	}
	return NULL;
}

int nl_msg_error(const struct nl_msg *m)
{
	return m->overflow ? -EMSGSIZE : 0;
}

bool nl_put(struct nl_msg *m, uint16_t type, const void *data, size_t len)
{
	struct nlattr *a;

	if (len > UINT16_MAX - NLA_HDRLEN) {
		m->overflow = true;
		return false;
	}
	a = reserve(m, NLA_HDRLEN + len);
	if (!a)
		return false;
	a->nla_type = type;
	a->nla_len = (uint16_t)(NLA_HDRLEN + len);
	if (len)
		memcpy((uint8_t *)a + NLA_HDRLEN, data, len);
	return true;
}

bool nl_put_u8(struct nl_msg *m, uint16_t type, uint8_t v)
{
	return nl_put(m, type, &v, sizeof(v));
}

bool nl_put_u16(struct nl_msg *m, uint16_t type, uint16_t v)
{
	return nl_put(m, type, &v, sizeof(v));
}

bool nl_put_u32(struct nl_msg *m, uint16_t type, uint32_t v)
{
	return nl_put(m, type, &v, sizeof(v));
}

bool nl_put_be16(struct nl_msg *m, uint16_t type, uint16_t host_order)
{
	uint8_t b[2] = { host_order >> 8, host_order };

	return nl_put(m, type, b, sizeof(b));
}

bool nl_put_be32(struct nl_msg *m, uint16_t type, uint32_t host_order)
{
	uint8_t b[4] = { host_order >> 24, host_order >> 16, host_order >> 8, host_order };

	return nl_put(m, type, b, sizeof(b));
}

bool nl_put_str(struct nl_msg *m, uint16_t type, const char *s)
{
	return nl_put(m, type, s, strlen(s) + 1);
}

struct nlattr *nl_nest_start(struct nl_msg *m, uint16_t type)
{
	struct nlattr *a = reserve(m, NLA_HDRLEN);

	if (!a)
		return NULL;
	a->nla_type = type | NLA_F_NESTED;
	a->nla_len = NLA_HDRLEN;
	return a;
}

void nl_nest_end(struct nl_msg *m, struct nlattr *nest)
{
	size_t n;

	if (!nest || m->overflow)
		return;
	n = (size_t)(m->buf + m->len - (uint8_t *)nest);
	if (n > UINT16_MAX) {           /* a nest's length is 16 bits */
		m->overflow = true;
		return;
	}
	nest->nla_len = (uint16_t)n;
}

/* ---- parser -------------------------------------------------------------- */

bool nl_msg_ok(const struct nlmsghdr *nlh, size_t len)
{
	return len >= sizeof(*nlh) && nlh->nlmsg_len >= sizeof(*nlh) && nlh->nlmsg_len <= len;
}

const void *nl_msg_attrs(const struct nlmsghdr *nlh, size_t hdrlen, size_t *len)
{
	size_t off = NLMSG_HDRLEN + NLMSG_ALIGN(hdrlen);

	if (nlh->nlmsg_len < NLMSG_HDRLEN + hdrlen)
		return NULL;
	*len = nlh->nlmsg_len > off ? nlh->nlmsg_len - off : 0;
	return (const uint8_t *)nlh + (off < nlh->nlmsg_len ? off : nlh->nlmsg_len);
}

const struct nlattr *nl_attr_first(const void *attrs, size_t len, struct nl_attr_iter *it)
{
	it->p = attrs;
	it->end = (const uint8_t *)attrs + len;
	it->bad = false;
	return nl_attr_next(it);
}

const struct nlattr *nl_attr_next(struct nl_attr_iter *it)
{
	const struct nlattr *a = (const void *)it->p;
	size_t left = (size_t)(it->end - it->p);

	if (left < NLA_HDRLEN) {
		/* Trailing bytes shorter than a header are padding at most. */
		if (left >= 4 || (left && it->p[0]))
			it->bad = true;
		return NULL;
	}
	if (a->nla_len < NLA_HDRLEN || a->nla_len > left) {
		it->bad = true;
		return NULL;
	}
	it->p += (size_t)NLA_ALIGN(a->nla_len) < left ? (size_t)NLA_ALIGN(a->nla_len) : left;
	return a;
}

int nl_attr_parse(const void *attrs, size_t len, const struct nlattr **tb, unsigned max)
{
	struct nl_attr_iter it;
	const struct nlattr *a;

	memset(tb, 0, (max + 1) * sizeof(*tb));
	for (a = nl_attr_first(attrs, len, &it); a; a = nl_attr_next(&it))
		if (nl_attr_type(a) <= max)
			tb[nl_attr_type(a)] = a;
	return it.bad ? -EBADMSG : 0;
}

int nl_msg_parse(const struct nlmsghdr *nlh, size_t hdrlen, const struct nlattr **tb,
		 unsigned max)
{
	size_t len;
	const void *p = nl_msg_attrs(nlh, hdrlen, &len);

	if (!p) {
		memset(tb, 0, (max + 1) * sizeof(*tb));
		return -EBADMSG;
	}
	return nl_attr_parse(p, len, tb, max);
}

int nl_nest_parse(const struct nlattr *nest, const struct nlattr **tb, unsigned max)
{
	return nl_attr_parse(nl_attr_data(nest), nl_attr_len(nest), tb, max);
}

static int attr_fixed(const struct nlattr *a, void *out, size_t n)
{
	if (!a || nl_attr_len(a) != n)
		return -EBADMSG;
	memcpy(out, nl_attr_data(a), n);
	return 0;
}

int nl_attr_u8(const struct nlattr *a, uint8_t *out)
{
	return attr_fixed(a, out, sizeof(*out));
}

int nl_attr_u16(const struct nlattr *a, uint16_t *out)
{
	return attr_fixed(a, out, sizeof(*out));
}

int nl_attr_u32(const struct nlattr *a, uint32_t *out)
{
	return attr_fixed(a, out, sizeof(*out));
}

int nl_attr_str(const struct nlattr *a, const char **out)
{
	if (!a || nl_attr_len(a) == 0 || !memchr(nl_attr_data(a), '\0', nl_attr_len(a)))
		return -EBADMSG;
	*out = nl_attr_data(a);
	return 0;
}

/* ---- request / reply ----------------------------------------------------- */

int nl_parse_error(const struct nlmsghdr *nlh, int *code, char *ext, size_t extlen)
{
	const struct nlmsgerr *me;
	const struct nlattr *tb[NLMSGERR_ATTR_MAX + 1];
	const char *msg;
	size_t off;

	if (extlen)
		ext[0] = '\0';
	if (nlh->nlmsg_len < NLMSG_HDRLEN + sizeof(*me))
		return -EBADMSG;
	me = NLMSG_DATA(nlh);
	*code = me->error;
	if (!(nlh->nlmsg_flags & NLM_F_ACK_TLVS) || !extlen)
		return 0;
	/* TLVs follow the echoed request: its header only when capped. */
	off = NLMSG_HDRLEN + sizeof(*me);
	if (!(nlh->nlmsg_flags & NLM_F_CAPPED)) {
		if (me->msg.nlmsg_len < sizeof(me->msg))
			return -EBADMSG;
		off += NLMSG_ALIGN(me->msg.nlmsg_len) - sizeof(me->msg);
	}
	if (off > nlh->nlmsg_len)
		return -EBADMSG;
	if (nl_attr_parse((const uint8_t *)nlh + off, nlh->nlmsg_len - off, tb,
			  NLMSGERR_ATTR_MAX) < 0)
		return -EBADMSG;
	if (tb[NLMSGERR_ATTR_MSG] && nl_attr_str(tb[NLMSGERR_ATTR_MSG], &msg) == 0)
		snprintf(ext, extlen, "%s", msg);
	return 0;
}

struct talk {
	struct nl_sock *s;
	struct nl_msg *m;
	const struct nl_handlers *h;
	uint32_t first_seq;
	unsigned pending;           /* replies still owed */
	bool *want;                 /* message i asked for a reply */
	bool *done;                 /* ... and got it */
	bool drain;                 /* read what is queued, then stop */
	int ret;                    /* first failure */
	int code;                   /* its errno */
	char ext[256];              /* its extended ACK text */
};

static void talk_fail(struct talk *t, int code, const char *ext)
{
	if (t->ret)
		return;
	t->ret = -code;
	t->code = code;
	snprintf(t->ext, sizeof(t->ext), "%s", ext ? ext : "");
}

/* One reply (ACK, error or DONE) for message i. */
static void talk_reply(struct talk *t, unsigned i, int code, const char *ext)
{
	if (t->want[i] && !t->done[i]) {
		t->done[i] = true;
		t->pending--;
	} else if (code) {
		/* An error for a message that asked for nothing, such as a batch
		 * begin whose transaction failed: the rest may never come. */
		t->drain = true;
	}
	if (code < 0) {
		int r = t->h && t->h->on_error ? t->h->on_error(i, -code, ext, t->h->ctx) : code;

		if (r < 0)
			talk_fail(t, -r, ext);
	}
}

static void talk_one(struct talk *t, const struct nlmsghdr *nlh)
{
	uint32_t i = nlh->nlmsg_seq - t->first_seq;
	char ext[256];
	int code, r;

	if (nlh->nlmsg_pid != t->s->portid || i >= t->m->count)
		return;                 /* an event or a reply to someone else */
	switch (nlh->nlmsg_type) {
	case NLMSG_NOOP:
		return;
	case NLMSG_ERROR:
		if (nl_parse_error(nlh, &code, ext, sizeof(ext)) < 0) {
			talk_fail(t, EBADMSG, "malformed error message");
			t->drain = true;
			return;
		}
		talk_reply(t, i, code > 0 ? -code : code, ext);
		return;
	case NLMSG_DONE:
		/* A dump's end may carry its error as an int. */
		code = 0;
		if (nlh->nlmsg_len >= NLMSG_HDRLEN + sizeof(int))
			memcpy(&code, NLMSG_DATA(nlh), sizeof(int));
		talk_reply(t, i, code > 0 ? -code : code, NULL);
		return;
	default:
		if (nlh->nlmsg_flags & NLM_F_DUMP_INTR)
			talk_fail(t, EINTR, "dump interrupted by a concurrent change; retry");
		if (t->h && t->h->on_data && !t->ret) {
			r = t->h->on_data(nlh, t->h->ctx);
			if (r < 0)
				talk_fail(t, -r, NULL);
		}
	}
}

int nl_talk(struct nl_sock *s, struct nl_msg *m, const struct nl_handlers *h, struct err *e)
{
	struct sockaddr_nl sa = { .nl_family = AF_NETLINK };
	struct talk t = { .s = s, .m = m, .h = h };
	uint8_t buf[NL_RECV_BUF] __attribute__((aligned(8)));
	bool *bits;
	char tb[ERRNO_TEXT_MAX];
	size_t off = 0;

	if (m->overflow)
		return err_set(e, EMSGSIZE, "netlink request does not fit its buffer (%zu bytes)",
			       m->cap);
	if (!m->count)
		return 0;
	bits = calloc(2 * (size_t)m->count, sizeof(bool));
	if (!bits)
		return err_set(e, ENOMEM, "netlink: out of memory");
	t.want = bits;
	t.done = bits + m->count;
	if (m->count > 256) {
		/* the kernel queues every ACK before we read one; each costs
		 * about 1 KiB of the receive buffer */
		int need = (int)(m->count > 1 << 20 ? 1 << 30 : m->count * 1024);

		if (setsockopt(s->fd, SOL_SOCKET, SO_RCVBUFFORCE, &need, sizeof(need)) < 0)
			(void)setsockopt(s->fd, SOL_SOCKET, SO_RCVBUF, &need, sizeof(need));
	}
	t.first_seq = s->seq + 1;
	for (unsigned i = 0; i < m->count; i++) {
		struct nlmsghdr *nlh = (struct nlmsghdr *)(void *)(m->buf + off);

		nlh->nlmsg_seq = ++s->seq;
		nlh->nlmsg_pid = 0;
		if (nlh->nlmsg_flags & (NLM_F_ACK | NLM_F_DUMP)) {
			t.want[i] = true;
			t.pending++;
		}
		off += NLMSG_ALIGN(nlh->nlmsg_len);
	}
	if (sendto(s->fd, m->buf, m->len, 0, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		free(bits);
		return err_sys(e, errno, "netlink send");
	}

	while (t.pending || t.drain) {
		ssize_t n = recv(s->fd, buf, sizeof(buf), MSG_TRUNC | (t.drain ? MSG_DONTWAIT : 0));
		size_t left;
		const struct nlmsghdr *nlh;

		if (n < 0) {
			if (errno == EINTR)
				continue;
			if (t.drain && (errno == EAGAIN || errno == EWOULDBLOCK))
				break;
			free(bits);
			if (errno == EAGAIN || errno == EWOULDBLOCK)
				return err_set(e, ETIMEDOUT, "netlink: no reply from the kernel in %d s",
					       NL_RECV_TIMEOUT_S);
			return err_sys(e, errno, "netlink receive");
		}
		if ((size_t)n > sizeof(buf)) {
			talk_fail(&t, EMSGSIZE, "reply larger than the receive buffer");
			continue;
		}
		left = (size_t)n;
		nlh = (const void *)buf;
		while (nl_msg_ok(nlh, left)) {
			size_t step = NLMSG_ALIGN(nlh->nlmsg_len);

			talk_one(&t, nlh);
			if (step >= left) {
				left = 0;
				break;
			}
			left -= step;
			nlh = (const void *)((const uint8_t *)nlh + step);
		}
		if (left) {
			talk_fail(&t, EBADMSG, "truncated netlink message");
			t.drain = true;
		}
		if (!t.pending && !t.drain)
			break;
	}
	free(bits);
	if (t.ret) {
		if (e)
			err_set(e, t.code, "%s%s%s", errno_text(t.code, tb, sizeof(tb)),
				t.ext[0] ? ": " : "", t.ext);
		return t.ret;
	}
	return 0;
}

/* ---- nfnetlink batches --------------------------------------------------- */

struct nlmsghdr *nl_nfmsg_start(struct nl_msg *m, uint16_t subsys, uint16_t msg,
				uint16_t flags, uint8_t family)
{
	struct nlmsghdr *nlh = nl_msg_start(m, (uint16_t)(subsys << 8 | msg), flags);
	struct nfgenmsg *g = nl_msg_put_header(m, sizeof(*g));

	if (!nlh || !g)
		return NULL;
	g->nfgen_family = family;
	g->version = NFNETLINK_V0;
	g->res_id = 0;
	return nlh;
}

static struct nlmsghdr *batch_mark(struct nl_msg *m, uint16_t type, uint16_t subsys)
{
	struct nlmsghdr *nlh = nl_msg_start(m, type, NLM_F_REQUEST);
	struct nfgenmsg *g = nl_msg_put_header(m, sizeof(*g));

	if (!nlh || !g)
		return NULL;
	g->nfgen_family = AF_UNSPEC;
	g->version = NFNETLINK_V0;
	g->res_id = htons(subsys);
	return nlh;
}

struct nlmsghdr *nl_batch_begin(struct nl_msg *m, uint16_t subsys)
{
	return batch_mark(m, NFNL_MSG_BATCH_BEGIN, subsys);
}

struct nlmsghdr *nl_batch_end(struct nl_msg *m, uint16_t subsys)
{
	return batch_mark(m, NFNL_MSG_BATCH_END, subsys);
}
