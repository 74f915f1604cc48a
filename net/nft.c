/* nft.c - nf_tables messages: the encoder (structs -> batch) and its decoder. */
#include "net/nft.h"

#include <errno.h>
#include <linux/netfilter/nfnetlink.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>

/* Elements per NEWSETELEM message: the list is one nested attribute, whose
 * length is 16 bits, so a message must stay well under 64 KiB. */
#define ELEMS_MSG_BYTES 32768

#define ACK (NLM_F_REQUEST | NLM_F_ACK)

uint32_t nft_type_concat(const uint32_t *types, unsigned n)
{
	uint32_t t = 0;

	for (unsigned i = 0; i < n; i++)
		t = t << 6 | types[i];
	return t;
}

/* ---- batch --------------------------------------------------------------- */

int nft_batch_init(struct nft_batch *b, size_t cap)
{
	b->buf = malloc(cap);
	if (!b->buf)
		return -ENOMEM;
	b->cap = cap;
	b->next_set_id = 1;
	nl_msg_init(&b->m, b->buf, cap);
	nl_batch_begin(&b->m, NFNL_SUBSYS_NFTABLES);
	return 0;
}

void nft_batch_free(struct nft_batch *b)
{
	free(b->buf);
	b->buf = NULL;
	b->cap = 0;
}

struct first_error {
	nl_error_fn *on_error;      /* the caller's, if any */
	void *ctx;
	bool seen;
	unsigned index;
};

static int note_error(unsigned index, int code, const char *ext, void *ctx)
{
	struct first_error *fe = ctx;
	int r = fe->on_error ? fe->on_error(index, code, ext, fe->ctx) : -code;

	if (r < 0 && !fe->seen) {
		fe->seen = true;
		fe->index = index;
	}
	return r;
}

/* "NEWRULE inet berth fw_input" for message index of the batch. */
static void describe_msg(const struct nft_batch *b, unsigned index, char *buf, size_t len)
{
	static const char *const names[] = {
		[NFT_MSG_NEWTABLE] = "NEWTABLE", [NFT_MSG_DELTABLE] = "DELTABLE",
		[NFT_MSG_NEWCHAIN] = "NEWCHAIN", [NFT_MSG_DELCHAIN] = "DELCHAIN",
		[NFT_MSG_NEWRULE] = "NEWRULE", [NFT_MSG_DELRULE] = "DELRULE",
		[NFT_MSG_NEWSET] = "NEWSET", [NFT_MSG_DELSET] = "DELSET",
		[NFT_MSG_NEWSETELEM] = "NEWSETELEM", [NFT_MSG_DELSETELEM] = "DELSETELEM",
		[NFT_MSG_DESTROYSETELEM_] = "DESTROYSETELEM",
	};
	size_t off = 0;
	struct nft_head h;

	buf[0] = '\0';
	for (unsigned i = 0; i < index && off < b->m.len; i++)
		off += NLMSG_ALIGN(((const struct nlmsghdr *)(const void *)(b->buf + off))->nlmsg_len);
	if (off >= b->m.len || nft_parse_head((const void *)(b->buf + off), &h) < 0)
		return;
	snprintf(buf, len, "%s %s %s %s", h.msg < ARRAY_SIZE(names) && names[h.msg] ? names[h.msg] : "?",
		 h.family == NFPROTO_BRIDGE ? "bridge" : h.family == NFPROTO_INET ? "inet" : "?",
		 h.table, h.name);
}

int nft_batch_send(struct nl_sock *s, struct nft_batch *b, nl_error_fn *on_error, void *ctx,
		   struct err *e)
{
	struct first_error fe = { .on_error = on_error, .ctx = ctx };
	struct nl_handlers h = { .on_error = note_error, .ctx = &fe };
	char what[128];
	int need, ret;

	nl_batch_end(&b->m, NFNL_SUBSYS_NFTABLES);
	if (b->m.overflow)
		return err_set(e, EMSGSIZE, "nf_tables batch does not fit its %zu-byte buffer", b->cap);
	/* netlink refuses a datagram bigger than the sender's buffer; FORCE
	 * works for root past net.core.wmem_max. Only ever grows. */
	need = b->m.len + 4096 > (size_t)1 << 30 ? 1 << 30 : (int)(b->m.len + 4096);
	if (b->m.len > 128 * 1024 &&
	    setsockopt(s->fd, SOL_SOCKET, SO_SNDBUFFORCE, &need, sizeof(need)) < 0)
		(void)setsockopt(s->fd, SOL_SOCKET, SO_SNDBUF, &need, sizeof(need));
	ret = nl_talk(s, &b->m, &h, e);
	if (ret < 0 && fe.seen && e) {
		/* which object the kernel refused: the first thing to know */
		describe_msg(b, fe.index, what, sizeof(what));
		if (what[0])
			err_wrap(e, "%s", what);
	}
	return ret;
}

/* ---- encoder ------------------------------------------------------------- */

static void start(struct nl_msg *m, uint16_t msg, uint16_t flags, uint8_t family)
{
	nl_nfmsg_start(m, NFNL_SUBSYS_NFTABLES, msg, flags, family);
}

static void put_be64(struct nl_msg *m, uint16_t type, uint64_t v)
{
	uint8_t b[8];

	for (int i = 0; i < 8; i++)
		b[i] = (uint8_t)(v >> (56 - 8 * i));
	nl_put(m, type, b, sizeof(b));
}

/* nft_data: a value (NFTA_DATA_VALUE) inside the nest `type`. */
static void put_data(struct nl_msg *m, uint16_t type, const void *p, size_t len)
{
	struct nlattr *d = nl_nest_start(m, type);

	nl_put(m, NFTA_DATA_VALUE, p, len);
	nl_nest_end(m, d);
}

static void put_verdict(struct nl_msg *m, uint16_t type, int32_t verdict, const char *chain)
{
	struct nlattr *d = nl_nest_start(m, type), *v = nl_nest_start(m, NFTA_DATA_VERDICT);

	nl_put_be32(m, NFTA_VERDICT_CODE, (uint32_t)verdict);
	if (chain && *chain && (verdict == NFT_JUMP || verdict == NFT_GOTO))
		nl_put_str(m, NFTA_VERDICT_CHAIN, chain);
	nl_nest_end(m, v);
	nl_nest_end(m, d);
}

void nft_put_table(struct nft_batch *b, uint8_t family, const char *table, uint32_t flags)
{
	start(&b->m, NFT_MSG_NEWTABLE, ACK | NLM_F_CREATE, family);
	nl_put_str(&b->m, NFTA_TABLE_NAME, table);
	nl_put_be32(&b->m, NFTA_TABLE_FLAGS, flags);
}

void nft_put_del_table(struct nft_batch *b, uint8_t family, const char *table)
{
	start(&b->m, NFT_MSG_DELTABLE, ACK, family);
	nl_put_str(&b->m, NFTA_TABLE_NAME, table);
}

void nft_put_chain(struct nft_batch *b, uint8_t family, const char *table,
		   const struct nft_chain *c)
{
	struct nlattr *hook;

	start(&b->m, NFT_MSG_NEWCHAIN, ACK | NLM_F_CREATE, family);
	nl_put_str(&b->m, NFTA_CHAIN_TABLE, table);
	nl_put_str(&b->m, NFTA_CHAIN_NAME, c->name);
	if (c->hook >= 0) {
		hook = nl_nest_start(&b->m, NFTA_CHAIN_HOOK);
		nl_put_be32(&b->m, NFTA_HOOK_HOOKNUM, (uint32_t)c->hook);
		nl_put_be32(&b->m, NFTA_HOOK_PRIORITY, (uint32_t)c->prio);
		nl_nest_end(&b->m, hook);
		nl_put_be32(&b->m, NFTA_CHAIN_POLICY, (uint32_t)c->policy);
		nl_put_str(&b->m, NFTA_CHAIN_TYPE, c->type[0] ? c->type : "filter");
	}
}

void nft_put_flush_chain(struct nft_batch *b, uint8_t family, const char *table,
			 const char *chain)
{
	start(&b->m, NFT_MSG_DELRULE, ACK, family);
	nl_put_str(&b->m, NFTA_RULE_TABLE, table);
	nl_put_str(&b->m, NFTA_RULE_CHAIN, chain);
}

void nft_put_del_chain(struct nft_batch *b, uint8_t family, const char *table, const char *chain)
{
	start(&b->m, NFT_MSG_DELCHAIN, ACK, family);
	nl_put_str(&b->m, NFTA_CHAIN_TABLE, table);
	nl_put_str(&b->m, NFTA_CHAIN_NAME, chain);
}

void nft_put_del_set(struct nft_batch *b, uint8_t family, const char *table, const char *set)
{
	start(&b->m, NFT_MSG_DELSET, ACK, family);
	nl_put_str(&b->m, NFTA_SET_TABLE, table);
	nl_put_str(&b->m, NFTA_SET_NAME, set);
}

static void put_expr_counter(struct nl_msg *m)
{
	struct nlattr *data;

	nl_put_str(m, NFTA_EXPR_NAME, "counter");
	data = nl_nest_start(m, NFTA_EXPR_DATA);
	nl_nest_end(m, data);
}

void nft_put_set(struct nft_batch *b, uint8_t family, const char *table, struct nft_set *s)
{
	struct nlattr *desc, *concat, *el, *ex;

	s->id = b->next_set_id++;
	start(&b->m, NFT_MSG_NEWSET, ACK | NLM_F_CREATE, family);
	nl_put_str(&b->m, NFTA_SET_TABLE, table);
	nl_put_str(&b->m, NFTA_SET_NAME, s->name);
	nl_put_be32(&b->m, NFTA_SET_FLAGS, s->flags);
	nl_put_be32(&b->m, NFTA_SET_KEY_TYPE, s->key_type);
	nl_put_be32(&b->m, NFTA_SET_KEY_LEN, s->key_len);
	if (s->flags & NFT_SET_MAP) {
		nl_put_be32(&b->m, NFTA_SET_DATA_TYPE, s->data_type);
		nl_put_be32(&b->m, NFTA_SET_DATA_LEN, s->data_len);
	}
	if (s->timeout_ms)
		put_be64(&b->m, NFTA_SET_TIMEOUT, s->timeout_ms);
	nl_put_be32(&b->m, NFTA_SET_ID, s->id);
	if (s->n_fields > 1) {
		desc = nl_nest_start(&b->m, NFTA_SET_DESC);
		concat = nl_nest_start(&b->m, NFTA_SET_DESC_CONCAT);
		for (unsigned i = 0; i < s->n_fields && i < NFT_CONCAT_MAX; i++) {
			el = nl_nest_start(&b->m, NFTA_LIST_ELEM);
			nl_put_be32(&b->m, NFTA_SET_FIELD_LEN, s->fields[i]);
			nl_nest_end(&b->m, el);
		}
		nl_nest_end(&b->m, concat);
		nl_nest_end(&b->m, desc);
	}
	if (s->key_byteorder) {
		/* one TLV: type NFTNL_UDATA_SET_KEYBYTEORDER (0), length, u32 */
		uint8_t ud[6] = { 0, 4 };

		memcpy(ud + 2, &s->key_byteorder, 4);
		nl_put(&b->m, NFTA_SET_USERDATA, ud, sizeof(ud));
	}
	if (s->counter) {
		ex = nl_nest_start(&b->m, NFTA_SET_EXPR);
		put_expr_counter(&b->m);
		nl_nest_end(&b->m, ex);
	}
}

static void put_reg(struct nl_msg *m, uint16_t type, uint32_t reg)
{
	nl_put_be32(m, type, reg);
}

static void put_expr(struct nl_msg *m, const struct nft_expr *x)
{
	static const char *const names[] = {
		[NFT_X_META] = "meta", [NFT_X_PAYLOAD] = "payload", [NFT_X_CMP] = "cmp",
		[NFT_X_BITWISE] = "bitwise", [NFT_X_LOOKUP] = "lookup",
		[NFT_X_IMMEDIATE] = "immediate", [NFT_X_VERDICT] = "immediate", [NFT_X_CT] = "ct",
		[NFT_X_NAT] = "nat", [NFT_X_MASQ] = "masq", [NFT_X_COUNTER] = "counter",
		[NFT_X_FIB] = "fib", [NFT_X_VMAP] = "lookup", [NFT_X_NOTRACK] = "notrack",
		[NFT_X_NUMGEN] = "numgen", [NFT_X_REJECT] = "reject", [NFT_X_DYNSET] = "dynset",
	};
	struct nlattr *el, *data;

	if (x->kind == 0 || x->kind >= ARRAY_SIZE(names)) {
		m->overflow = true;         /* a programming error: fail the batch */
		return;
	}
	el = nl_nest_start(m, NFTA_LIST_ELEM);
	if (x->kind == NFT_X_COUNTER) {
		put_expr_counter(m);
		nl_nest_end(m, el);
		return;
	}
	if (x->kind == NFT_X_NOTRACK) {     /* a name and no data, as nft sends it */
		nl_put_str(m, NFTA_EXPR_NAME, names[x->kind]);
		nl_nest_end(m, el);
		return;
	}
	nl_put_str(m, NFTA_EXPR_NAME, names[x->kind]);
	data = nl_nest_start(m, NFTA_EXPR_DATA);
	switch (x->kind) {
	case NFT_X_META:
		nl_put_be32(m, NFTA_META_KEY, x->key);
		put_reg(m, NFTA_META_DREG, x->dreg);
		break;
	case NFT_X_PAYLOAD:
		put_reg(m, NFTA_PAYLOAD_DREG, x->dreg);
		nl_put_be32(m, NFTA_PAYLOAD_BASE, x->key);
		nl_put_be32(m, NFTA_PAYLOAD_OFFSET, x->off);
		nl_put_be32(m, NFTA_PAYLOAD_LEN, x->len);
		break;
	case NFT_X_CMP:
		put_reg(m, NFTA_CMP_SREG, x->sreg);
		nl_put_be32(m, NFTA_CMP_OP, x->op);
		put_data(m, NFTA_CMP_DATA, x->data, x->len);
		break;
	case NFT_X_BITWISE:
		put_reg(m, NFTA_BITWISE_SREG, x->sreg);
		put_reg(m, NFTA_BITWISE_DREG, x->dreg);
		nl_put_be32(m, NFTA_BITWISE_LEN, x->len);
		put_data(m, NFTA_BITWISE_MASK, x->data, x->len);
		put_data(m, NFTA_BITWISE_XOR, x->xor, x->len);
		break;
	case NFT_X_LOOKUP:
		nl_put_str(m, NFTA_LOOKUP_SET, x->name);
		put_reg(m, NFTA_LOOKUP_SREG, x->sreg);
		if (x->dreg)
			put_reg(m, NFTA_LOOKUP_DREG, x->dreg);
		if (x->flags)
			nl_put_be32(m, NFTA_LOOKUP_FLAGS, x->flags);
		break;
	case NFT_X_VMAP:
		nl_put_str(m, NFTA_LOOKUP_SET, x->name);
		put_reg(m, NFTA_LOOKUP_SREG, x->sreg);
		put_reg(m, NFTA_LOOKUP_DREG, NFT_REG_VERDICT);
		break;
	case NFT_X_IMMEDIATE:
		put_reg(m, NFTA_IMMEDIATE_DREG, x->dreg);
		put_data(m, NFTA_IMMEDIATE_DATA, x->data, x->len);
		break;
	case NFT_X_VERDICT:
		put_reg(m, NFTA_IMMEDIATE_DREG, NFT_REG_VERDICT);
		put_verdict(m, NFTA_IMMEDIATE_DATA, x->verdict, x->name);
		break;
	case NFT_X_CT:
		nl_put_be32(m, NFTA_CT_KEY, x->key);
		if (x->dir != NFT_CT_DIR_NONE)
			nl_put_u8(m, NFTA_CT_DIRECTION, x->dir);
		if (x->sreg)
			put_reg(m, NFTA_CT_SREG, x->sreg);
		else
			put_reg(m, NFTA_CT_DREG, x->dreg);
		break;
	case NFT_X_NAT:
		nl_put_be32(m, NFTA_NAT_TYPE, x->key);
		nl_put_be32(m, NFTA_NAT_FAMILY, x->op);
		if (x->sreg)
			put_reg(m, NFTA_NAT_REG_ADDR_MIN, x->sreg);
		if (x->sreg2)
			put_reg(m, NFTA_NAT_REG_PROTO_MIN, x->sreg2);
		if (x->flags)
			nl_put_be32(m, NFTA_NAT_FLAGS, x->flags);
		break;
	case NFT_X_MASQ:
		break;
	case NFT_X_FIB:
		put_reg(m, NFTA_FIB_DREG, x->dreg);
		nl_put_be32(m, NFTA_FIB_RESULT, x->key);
		nl_put_be32(m, NFTA_FIB_FLAGS, x->flags);
		break;
	case NFT_X_NUMGEN:
		put_reg(m, NFTA_NG_DREG, x->dreg);
		nl_put_be32(m, NFTA_NG_MODULUS, x->modulus);
		nl_put_be32(m, NFTA_NG_TYPE, x->key);
		nl_put_be32(m, NFTA_NG_OFFSET, x->off);
		break;
	case NFT_X_REJECT:
		nl_put_be32(m, NFTA_REJECT_TYPE, x->key);
		nl_put_u8(m, NFTA_REJECT_ICMP_CODE, x->op);
		break;
	case NFT_X_DYNSET:
		nl_put_str(m, NFTA_DYNSET_SET_NAME, x->name);
		nl_put_be32(m, NFTA_DYNSET_OP, x->op);
		put_reg(m, NFTA_DYNSET_SREG_KEY, x->sreg);
		if (x->sreg2)
			put_reg(m, NFTA_DYNSET_SREG_DATA, x->sreg2);
		if (x->timeout_ms)
			put_be64(m, NFTA_DYNSET_TIMEOUT, x->timeout_ms);
		if (x->flags)
			nl_put_be32(m, NFTA_DYNSET_FLAGS, x->flags);
		break;
	}
	nl_nest_end(m, data);
	nl_nest_end(m, el);
}

void nft_put_rule(struct nft_batch *b, uint8_t family, const char *table, const char *chain,
		  const struct nft_expr *x, size_t n)
{
	struct nlattr *exprs;

	start(&b->m, NFT_MSG_NEWRULE, ACK | NLM_F_CREATE | NLM_F_APPEND, family);
	nl_put_str(&b->m, NFTA_RULE_TABLE, table);
	nl_put_str(&b->m, NFTA_RULE_CHAIN, chain);
	exprs = nl_nest_start(&b->m, NFTA_RULE_EXPRESSIONS);
	for (size_t i = 0; i < n; i++)
		put_expr(&b->m, &x[i]);
	nl_nest_end(&b->m, exprs);
}

static struct nlattr *elems_start(struct nl_msg *m, uint8_t family, const char *table,
				  const char *set, bool del, bool destroy)
{
	start(m, del ? (destroy ? NFT_MSG_DESTROYSETELEM_ : NFT_MSG_DELSETELEM) : NFT_MSG_NEWSETELEM,
	      del ? ACK : ACK | NLM_F_CREATE, family);
	nl_put_str(m, NFTA_SET_ELEM_LIST_TABLE, table);
	nl_put_str(m, NFTA_SET_ELEM_LIST_SET, set);
	return nl_nest_start(m, NFTA_SET_ELEM_LIST_ELEMENTS);
}

void nft_elems_begin(struct nft_elems_writer *w, struct nft_batch *b, uint8_t family,
		     const char *table, const char *set, bool del)
{
	*w = (struct nft_elems_writer){ .b = b, .family = family, .del = del, .table = table,
					.set = set };
}

void nft_elems_add(struct nft_elems_writer *w, const struct nft_elem *x)
{
	struct nl_msg *m = &w->b->m;
	struct nlattr *one;

	if (!w->list || m->len - w->msg_start > ELEMS_MSG_BYTES) {
		nl_nest_end(m, w->list);
		w->msg_start = m->len;
		w->list = elems_start(m, w->family, w->table, w->set, w->del, w->destroy);
	}
	one = nl_nest_start(m, NFTA_LIST_ELEM);
	put_data(m, NFTA_SET_ELEM_KEY, x->key, x->key_len);
	if (x->flags)
		nl_put_be32(m, NFTA_SET_ELEM_FLAGS, x->flags);
	if (!w->del && x->has_verdict)
		put_verdict(m, NFTA_SET_ELEM_DATA, x->verdict, x->chain);
	else if (!w->del && x->data_len)
		put_data(m, NFTA_SET_ELEM_DATA, x->data, x->data_len);
	if (!w->del && x->timeout_ms)
		put_be64(m, NFTA_SET_ELEM_TIMEOUT, x->timeout_ms);
	nl_nest_end(m, one);
}

void nft_elems_end(struct nft_elems_writer *w)
{
	nl_nest_end(&w->b->m, w->list);
	w->list = NULL;
}

void nft_put_elems(struct nft_batch *b, uint8_t family, const char *table, const char *set,
		   bool del, const struct nft_elem *el, size_t n)
{
	struct nft_elems_writer w;

	nft_elems_begin(&w, b, family, table, set, del);
	for (size_t i = 0; i < n; i++)
		nft_elems_add(&w, &el[i]);
	nft_elems_end(&w);
}

void nft_put_destroy_elems(struct nft_batch *b, uint8_t family, const char *table,
			   const char *set, const struct nft_elem *el, size_t n)
{
	struct nft_elems_writer w;

	nft_elems_begin(&w, b, family, table, set, true);
	w.destroy = true;
	for (size_t i = 0; i < n; i++)
		nft_elems_add(&w, &el[i]);
	nft_elems_end(&w);
}

void nft_put_get_elems(struct nl_msg *m, uint8_t family, const char *table, const char *set)
{
	start(m, NFT_MSG_GETSETELEM, NLM_F_REQUEST | NLM_F_DUMP, family);
	nl_put_str(m, NFTA_SET_ELEM_LIST_TABLE, table);
	nl_put_str(m, NFTA_SET_ELEM_LIST_SET, set);
}

void nft_put_get_elem(struct nl_msg *m, uint8_t family, const char *table, const char *set,
		      const struct nft_elem *key)
{
	struct nlattr *list, *one;

	start(m, NFT_MSG_GETSETELEM, ACK, family);
	nl_put_str(m, NFTA_SET_ELEM_LIST_TABLE, table);
	nl_put_str(m, NFTA_SET_ELEM_LIST_SET, set);
	list = nl_nest_start(m, NFTA_SET_ELEM_LIST_ELEMENTS);
	one = nl_nest_start(m, NFTA_LIST_ELEM);
	put_data(m, NFTA_SET_ELEM_KEY, key->key, key->key_len);
	nl_nest_end(m, one);
	nl_nest_end(m, list);
}

/* ---- decoder ------------------------------------------------------------- */

static int get_be32(const struct nlattr *a, uint32_t *out)
{
	const uint8_t *p;

	if (!a || nl_attr_len(a) != 4)
		return -EBADMSG;
	p = nl_attr_data(a);
	*out = (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
	return 0;
}

static int get_be64(const struct nlattr *a, uint64_t *out)
{
	const uint8_t *p;

	if (!a || nl_attr_len(a) != 8)
		return -EBADMSG;
	p = nl_attr_data(a);
	*out = 0;
	for (int i = 0; i < 8; i++)
		*out = *out << 8 | p[i];
	return 0;
}

static int get_str(const struct nlattr *a, char *out, size_t size)
{
	const char *s;

	if (nl_attr_str(a, &s) < 0 || strlen(s) >= size)
		return -EBADMSG;
	memcpy(out, s, strlen(s) + 1);
	return 0;
}

/* An optional be32: absent leaves *out alone. */
static int opt_be32(const struct nlattr *a, uint32_t *out)
{
	return a ? get_be32(a, out) : 0;
}

static int get_data(const struct nlattr *nest, uint8_t *out, size_t max, uint8_t *len)
{
	const struct nlattr *tb[NFTA_DATA_MAX + 1];

	if (!nest || nl_nest_parse(nest, tb, NFTA_DATA_MAX) < 0 || !tb[NFTA_DATA_VALUE] ||
	    nl_attr_len(tb[NFTA_DATA_VALUE]) > max)
		return -EBADMSG;
	*len = (uint8_t)nl_attr_len(tb[NFTA_DATA_VALUE]);
	memcpy(out, nl_attr_data(tb[NFTA_DATA_VALUE]), *len);
	return 0;
}

/* A verdict inside nest; *is_verdict false (0 returned) when it holds a value. */
static int get_verdict(const struct nlattr *nest, bool *is_verdict, int32_t *verdict,
		       char *chain, size_t size)
{
	const struct nlattr *tb[NFTA_DATA_MAX + 1], *vt[NFTA_VERDICT_MAX + 1];
	uint32_t code;

	*is_verdict = false;
	if (!nest || nl_nest_parse(nest, tb, NFTA_DATA_MAX) < 0)
		return -EBADMSG;
	if (!tb[NFTA_DATA_VERDICT])
		return 0;
	if (nl_nest_parse(tb[NFTA_DATA_VERDICT], vt, NFTA_VERDICT_MAX) < 0 ||
	    get_be32(vt[NFTA_VERDICT_CODE], &code) < 0)
		return -EBADMSG;
	*is_verdict = true;
	*verdict = (int32_t)code;
	chain[0] = '\0';
	if (vt[NFTA_VERDICT_CHAIN] && get_str(vt[NFTA_VERDICT_CHAIN], chain, size) < 0)
		return -EBADMSG;
	return 0;
}

int nft_parse_head(const struct nlmsghdr *nlh, struct nft_head *h)
{
	const struct nfgenmsg *g;
	const struct nlattr *tb[4];
	size_t len;

	memset(h, 0, sizeof(*h));
	if (NFNL_SUBSYS_ID(nlh->nlmsg_type) != NFNL_SUBSYS_NFTABLES ||
	    !nl_msg_attrs(nlh, sizeof(*g), &len))
		return -EBADMSG;
	g = NLMSG_DATA(nlh);
	h->msg = NFNL_MSG_TYPE(nlh->nlmsg_type);
	h->family = g->nfgen_family;
	if (h->msg == NFT_MSG_NEWGEN)
		return 0;
	/* Attribute 1 is the table of every object (NFTA_TABLE_NAME,
	 * NFTA_CHAIN_TABLE, NFTA_RULE_TABLE, NFTA_SET_TABLE, ...), and
	 * attribute 2 or 3 the object's own name. */
	if (nl_msg_parse(nlh, sizeof(*g), tb, 3) < 0)
		return -EBADMSG;
	if (tb[1] && get_str(tb[1], h->table, sizeof(h->table)) < 0)
		return -EBADMSG;
	switch (h->msg) {
	case NFT_MSG_NEWCHAIN: case NFT_MSG_DELCHAIN:
		if (tb[NFTA_CHAIN_NAME] && get_str(tb[NFTA_CHAIN_NAME], h->name, sizeof(h->name)) < 0)
			return -EBADMSG;
		break;
	case NFT_MSG_NEWRULE: case NFT_MSG_DELRULE:
	case NFT_MSG_NEWSET: case NFT_MSG_DELSET:
	case NFT_MSG_NEWSETELEM: case NFT_MSG_DELSETELEM: case NFT_MSG_GETSETELEM:
	case NFT_MSG_DESTROYSETELEM_:
		if (tb[2] && get_str(tb[2], h->name, sizeof(h->name)) < 0)
			return -EBADMSG;
		break;
	}
	return 0;
}

int nft_parse_chain(const struct nlmsghdr *nlh, struct nft_chain *c)
{
	const struct nlattr *tb[NFTA_CHAIN_MAX + 1], *ht[NFTA_HOOK_MAX + 1];
	uint32_t v;

	memset(c, 0, sizeof(*c));
	c->hook = -1;
	if (nl_msg_parse(nlh, sizeof(struct nfgenmsg), tb, NFTA_CHAIN_MAX) < 0 ||
	    get_str(tb[NFTA_CHAIN_NAME], c->name, sizeof(c->name)) < 0)
		return -EBADMSG;
	if (tb[NFTA_CHAIN_HOOK]) {
		if (nl_nest_parse(tb[NFTA_CHAIN_HOOK], ht, NFTA_HOOK_MAX) < 0 ||
		    get_be32(ht[NFTA_HOOK_HOOKNUM], &v) < 0)
			return -EBADMSG;
		c->hook = (int)v;
		if (get_be32(ht[NFTA_HOOK_PRIORITY], &v) < 0)
			return -EBADMSG;
		c->prio = (int32_t)v;
		if (opt_be32(tb[NFTA_CHAIN_POLICY], &v) < 0)
			return -EBADMSG;
		c->policy = tb[NFTA_CHAIN_POLICY] ? (int)v : NF_ACCEPT;
		if (tb[NFTA_CHAIN_TYPE] && get_str(tb[NFTA_CHAIN_TYPE], c->type, sizeof(c->type)) < 0)
			return -EBADMSG;
	}
	return 0;
}

int nft_parse_set(const struct nlmsghdr *nlh, struct nft_set *s)
{
	const struct nlattr *tb[NFTA_SET_MAX + 1], *dt[NFTA_SET_DESC_MAX + 1];
	const struct nlattr *a, *ft[NFTA_SET_FIELD_MAX + 1], *et[NFTA_EXPR_MAX + 1];
	struct nl_attr_iter it;
	uint32_t v;

	memset(s, 0, sizeof(*s));
	if (nl_msg_parse(nlh, sizeof(struct nfgenmsg), tb, NFTA_SET_MAX) < 0 ||
	    get_str(tb[NFTA_SET_NAME], s->name, sizeof(s->name)) < 0 ||
	    opt_be32(tb[NFTA_SET_FLAGS], &s->flags) < 0 ||
	    opt_be32(tb[NFTA_SET_KEY_TYPE], &s->key_type) < 0 ||
	    get_be32(tb[NFTA_SET_KEY_LEN], &s->key_len) < 0 ||
	    opt_be32(tb[NFTA_SET_DATA_TYPE], &s->data_type) < 0 ||
	    opt_be32(tb[NFTA_SET_DATA_LEN], &s->data_len) < 0 ||
	    opt_be32(tb[NFTA_SET_ID], &s->id) < 0 ||
	    (tb[NFTA_SET_TIMEOUT] && get_be64(tb[NFTA_SET_TIMEOUT], &s->timeout_ms) < 0))
		return -EBADMSG;
	if (tb[NFTA_SET_DESC]) {
		if (nl_nest_parse(tb[NFTA_SET_DESC], dt, NFTA_SET_DESC_MAX) < 0)
			return -EBADMSG;
		if (dt[NFTA_SET_DESC_CONCAT]) {
			for (a = nl_attr_first(nl_attr_data(dt[NFTA_SET_DESC_CONCAT]),
					       nl_attr_len(dt[NFTA_SET_DESC_CONCAT]), &it);
			     a; a = nl_attr_next(&it)) {
				if (s->n_fields >= NFT_CONCAT_MAX ||
				    nl_nest_parse(a, ft, NFTA_SET_FIELD_MAX) < 0 ||
				    get_be32(ft[NFTA_SET_FIELD_LEN], &v) < 0 || v > 255)
					return -EBADMSG;
				s->fields[s->n_fields++] = (uint8_t)v;
			}
			if (it.bad)
				return -EBADMSG;
		}
	}
	if (tb[NFTA_SET_USERDATA] && nl_attr_len(tb[NFTA_SET_USERDATA]) == 6) {
		const uint8_t *ud = nl_attr_data(tb[NFTA_SET_USERDATA]);

		if (ud[0] == 0 && ud[1] == 4)
			memcpy(&s->key_byteorder, ud + 2, 4);
	}
	if (tb[NFTA_SET_EXPR]) {
		const char *name;

		if (nl_nest_parse(tb[NFTA_SET_EXPR], et, NFTA_EXPR_MAX) < 0 ||
		    nl_attr_str(et[NFTA_EXPR_NAME], &name) < 0)
			return -EBADMSG;
		s->counter = !strcmp(name, "counter");
	}
	return 0;
}

static int parse_counter(const struct nlattr *data, uint64_t *packets, uint64_t *bytes)
{
	const struct nlattr *tb[NFTA_COUNTER_MAX + 1];

	*packets = *bytes = 0;
	if (!data)
		return 0;
	if (nl_nest_parse(data, tb, NFTA_COUNTER_MAX) < 0 ||
	    (tb[NFTA_COUNTER_PACKETS] && get_be64(tb[NFTA_COUNTER_PACKETS], packets) < 0) ||
	    (tb[NFTA_COUNTER_BYTES] && get_be64(tb[NFTA_COUNTER_BYTES], bytes) < 0))
		return -EBADMSG;
	return 0;
}

static int parse_expr(const struct nlattr *el, struct nft_expr *x)
{
	const struct nlattr *et[NFTA_EXPR_MAX + 1], *tb[16 + 1];
	const char *name;
	uint32_t v = 0;
	uint8_t len;

	memset(x, 0, sizeof(*x));
	if (nl_nest_parse(el, et, NFTA_EXPR_MAX) < 0 || nl_attr_str(et[NFTA_EXPR_NAME], &name) < 0)
		return -EBADMSG;
	memset(tb, 0, sizeof(tb));
	if (et[NFTA_EXPR_DATA] && nl_nest_parse(et[NFTA_EXPR_DATA], tb, 16) < 0)
		return -EBADMSG;
	if (!strcmp(name, "meta")) {
		x->kind = NFT_X_META;
		if (get_be32(tb[NFTA_META_KEY], &x->key) < 0 || get_be32(tb[NFTA_META_DREG], &x->dreg) < 0)
			return -EBADMSG;
	} else if (!strcmp(name, "payload")) {
		x->kind = NFT_X_PAYLOAD;
		if (get_be32(tb[NFTA_PAYLOAD_DREG], &x->dreg) < 0 ||
		    get_be32(tb[NFTA_PAYLOAD_BASE], &x->key) < 0 ||
		    get_be32(tb[NFTA_PAYLOAD_OFFSET], &x->off) < 0 ||
		    get_be32(tb[NFTA_PAYLOAD_LEN], &v) < 0 || v > 255)
			return -EBADMSG;
		x->len = (uint8_t)v;
	} else if (!strcmp(name, "cmp")) {
		x->kind = NFT_X_CMP;
		if (get_be32(tb[NFTA_CMP_SREG], &x->sreg) < 0 || get_be32(tb[NFTA_CMP_OP], &v) < 0 ||
		    get_data(tb[NFTA_CMP_DATA], x->data, sizeof(x->data), &x->len) < 0)
			return -EBADMSG;
		x->op = (uint8_t)v;
	} else if (!strcmp(name, "bitwise")) {
		x->kind = NFT_X_BITWISE;
		if (get_be32(tb[NFTA_BITWISE_SREG], &x->sreg) < 0 ||
		    get_be32(tb[NFTA_BITWISE_DREG], &x->dreg) < 0 ||
		    get_be32(tb[NFTA_BITWISE_LEN], &v) < 0 ||
		    get_data(tb[NFTA_BITWISE_MASK], x->data, sizeof(x->data), &x->len) < 0 ||
		    get_data(tb[NFTA_BITWISE_XOR], x->xor, sizeof(x->xor), &len) < 0 ||
		    v != x->len || len != x->len)
			return -EBADMSG;
	} else if (!strcmp(name, "lookup")) {
		x->kind = NFT_X_LOOKUP;
		if (get_str(tb[NFTA_LOOKUP_SET], x->name, sizeof(x->name)) < 0 ||
		    get_be32(tb[NFTA_LOOKUP_SREG], &x->sreg) < 0 ||
		    opt_be32(tb[NFTA_LOOKUP_DREG], &x->dreg) < 0 ||
		    opt_be32(tb[NFTA_LOOKUP_FLAGS], &x->flags) < 0)
			return -EBADMSG;
		if (tb[NFTA_LOOKUP_DREG] && x->dreg == NFT_REG_VERDICT)
			x->kind = NFT_X_VMAP;     /* the map's verdict is the rule's */
	} else if (!strcmp(name, "immediate")) {
		bool is_verdict;

		if (get_be32(tb[NFTA_IMMEDIATE_DREG], &x->dreg) < 0 ||
		    get_verdict(tb[NFTA_IMMEDIATE_DATA], &is_verdict, &x->verdict, x->name,
				sizeof(x->name)) < 0)
			return -EBADMSG;
		if (is_verdict) {
			x->kind = NFT_X_VERDICT;
			x->dreg = 0;
		} else {
			x->kind = NFT_X_IMMEDIATE;
			if (get_data(tb[NFTA_IMMEDIATE_DATA], x->data, sizeof(x->data), &x->len) < 0)
				return -EBADMSG;
		}
	} else if (!strcmp(name, "ct")) {
		x->kind = NFT_X_CT;
		x->dir = NFT_CT_DIR_NONE;
		if (get_be32(tb[NFTA_CT_KEY], &x->key) < 0 ||
		    (tb[NFTA_CT_SREG] ? get_be32(tb[NFTA_CT_SREG], &x->sreg) :
		     get_be32(tb[NFTA_CT_DREG], &x->dreg)) < 0 ||
		    (tb[NFTA_CT_DIRECTION] && nl_attr_u8(tb[NFTA_CT_DIRECTION], &x->dir) < 0))
			return -EBADMSG;
	} else if (!strcmp(name, "nat")) {
		x->kind = NFT_X_NAT;
		if (get_be32(tb[NFTA_NAT_TYPE], &x->key) < 0 || get_be32(tb[NFTA_NAT_FAMILY], &v) < 0 ||
		    opt_be32(tb[NFTA_NAT_REG_ADDR_MIN], &x->sreg) < 0 ||
		    opt_be32(tb[NFTA_NAT_REG_PROTO_MIN], &x->sreg2) < 0 ||
		    opt_be32(tb[NFTA_NAT_FLAGS], &x->flags) < 0)
			return -EBADMSG;
		x->op = (uint8_t)v;
	} else if (!strcmp(name, "masq")) {
		x->kind = NFT_X_MASQ;
	} else if (!strcmp(name, "notrack")) {
		x->kind = NFT_X_NOTRACK;
	} else if (!strcmp(name, "counter")) {
		x->kind = NFT_X_COUNTER;
		if (parse_counter(et[NFTA_EXPR_DATA], &x->packets, &x->bytes) < 0)
			return -EBADMSG;
	} else if (!strcmp(name, "numgen")) {
		x->kind = NFT_X_NUMGEN;
		if (get_be32(tb[NFTA_NG_DREG], &x->dreg) < 0 || get_be32(tb[NFTA_NG_TYPE], &x->key) < 0 ||
		    get_be32(tb[NFTA_NG_MODULUS], &x->modulus) < 0 ||
		    opt_be32(tb[NFTA_NG_OFFSET], &x->off) < 0)
			return -EBADMSG;
	} else if (!strcmp(name, "reject")) {
		x->kind = NFT_X_REJECT;
		if (get_be32(tb[NFTA_REJECT_TYPE], &x->key) < 0 ||
		    (tb[NFTA_REJECT_ICMP_CODE] && nl_attr_u8(tb[NFTA_REJECT_ICMP_CODE], &x->op) < 0))
			return -EBADMSG;
	} else if (!strcmp(name, "dynset")) {
		x->kind = NFT_X_DYNSET;
		if (get_str(tb[NFTA_DYNSET_SET_NAME], x->name, sizeof(x->name)) < 0 ||
		    get_be32(tb[NFTA_DYNSET_OP], &v) < 0 ||
		    get_be32(tb[NFTA_DYNSET_SREG_KEY], &x->sreg) < 0 ||
		    opt_be32(tb[NFTA_DYNSET_SREG_DATA], &x->sreg2) < 0 ||
		    opt_be32(tb[NFTA_DYNSET_FLAGS], &x->flags) < 0 ||
		    (tb[NFTA_DYNSET_TIMEOUT] && get_be64(tb[NFTA_DYNSET_TIMEOUT], &x->timeout_ms) < 0))
			return -EBADMSG;
		x->op = (uint8_t)v;
	} else if (!strcmp(name, "fib")) {
		x->kind = NFT_X_FIB;
		if (get_be32(tb[NFTA_FIB_DREG], &x->dreg) < 0 || get_be32(tb[NFTA_FIB_RESULT], &x->key) < 0 ||
		    get_be32(tb[NFTA_FIB_FLAGS], &x->flags) < 0)
			return -EBADMSG;
	} else {
		return -ENOTSUP;
	}
	return 0;
}

int nft_parse_rule(const struct nlmsghdr *nlh, struct nft_expr *x, size_t max, size_t *n)
{
	const struct nlattr *tb[NFTA_RULE_MAX + 1], *a;
	struct nl_attr_iter it;
	int ret;

	*n = 0;
	if (nl_msg_parse(nlh, sizeof(struct nfgenmsg), tb, NFTA_RULE_MAX) < 0)
		return -EBADMSG;
	if (!tb[NFTA_RULE_EXPRESSIONS])
		return 0;
	for (a = nl_attr_first(nl_attr_data(tb[NFTA_RULE_EXPRESSIONS]),
			       nl_attr_len(tb[NFTA_RULE_EXPRESSIONS]), &it); a; a = nl_attr_next(&it)) {
		if (*n >= max)
			return -EBADMSG;
		if ((ret = parse_expr(a, &x[*n])) < 0)
			return ret;
		(*n)++;
	}
	return it.bad ? -EBADMSG : 0;
}

/* The element's counter, from NFTA_SET_ELEM_EXPR or _EXPRESSIONS. */
static int elem_counter(const struct nlattr *tb[], struct nft_elem *x)
{
	const struct nlattr *et[NFTA_EXPR_MAX + 1], *a;
	struct nl_attr_iter it;
	const char *name;

	if (tb[NFTA_SET_ELEM_EXPR]) {
		if (nl_nest_parse(tb[NFTA_SET_ELEM_EXPR], et, NFTA_EXPR_MAX) < 0 ||
		    nl_attr_str(et[NFTA_EXPR_NAME], &name) < 0)
			return -EBADMSG;
		if (!strcmp(name, "counter")) {
			x->has_counter = true;
			return parse_counter(et[NFTA_EXPR_DATA], &x->packets, &x->bytes);
		}
	}
	if (!tb[NFTA_SET_ELEM_EXPRESSIONS])
		return 0;
	for (a = nl_attr_first(nl_attr_data(tb[NFTA_SET_ELEM_EXPRESSIONS]),
			       nl_attr_len(tb[NFTA_SET_ELEM_EXPRESSIONS]), &it); a; a = nl_attr_next(&it)) {
		if (nl_nest_parse(a, et, NFTA_EXPR_MAX) < 0 || nl_attr_str(et[NFTA_EXPR_NAME], &name) < 0)
			return -EBADMSG;
		if (!strcmp(name, "counter")) {
			x->has_counter = true;
			return parse_counter(et[NFTA_EXPR_DATA], &x->packets, &x->bytes);
		}
	}
	return it.bad ? -EBADMSG : 0;
}

int nft_parse_elems(const struct nlmsghdr *nlh, nft_elem_fn *fn, void *ctx)
{
	const struct nlattr *tb[NFTA_SET_ELEM_LIST_MAX + 1], *et[NFTA_SET_ELEM_MAX + 1], *a;
	struct nl_attr_iter it;
	struct nft_elem x;
	int ret;

	if (nl_msg_parse(nlh, sizeof(struct nfgenmsg), tb, NFTA_SET_ELEM_LIST_MAX) < 0)
		return -EBADMSG;
	if (!tb[NFTA_SET_ELEM_LIST_ELEMENTS])
		return 0;
	for (a = nl_attr_first(nl_attr_data(tb[NFTA_SET_ELEM_LIST_ELEMENTS]),
			       nl_attr_len(tb[NFTA_SET_ELEM_LIST_ELEMENTS]), &it); a; a = nl_attr_next(&it)) {
		memset(&x, 0, sizeof(x));
		if (nl_nest_parse(a, et, NFTA_SET_ELEM_MAX) < 0 ||
		    get_data(et[NFTA_SET_ELEM_KEY], x.key, sizeof(x.key), &x.key_len) < 0 ||
		    opt_be32(et[NFTA_SET_ELEM_FLAGS], &x.flags) < 0 ||
		    (et[NFTA_SET_ELEM_TIMEOUT] && get_be64(et[NFTA_SET_ELEM_TIMEOUT], &x.timeout_ms) < 0))
			return -EBADMSG;
		if (et[NFTA_SET_ELEM_DATA]) {
			if (get_verdict(et[NFTA_SET_ELEM_DATA], &x.has_verdict, &x.verdict, x.chain,
					sizeof(x.chain)) < 0)
				return -EBADMSG;
			if (!x.has_verdict &&
			    get_data(et[NFTA_SET_ELEM_DATA], x.data, sizeof(x.data), &x.data_len) < 0)
				return -EBADMSG;
		}
		if (elem_counter(et, &x) < 0)
			return -EBADMSG;
		if ((ret = fn(ctx, &x)) != 0)
			return ret;
	}
	return it.bad ? -EBADMSG : 0;
}
