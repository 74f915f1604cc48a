/* fuzz_nft.c - libFuzzer: net/nft.c's decoder on arbitrary nf_tables messages (event streams, dumps). */
#include "net/nft.h"

#include <stdint.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int count_elem(void *ctx, const struct nft_elem *el)
{
	(*(size_t *)ctx) += el->key_len;
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static uint8_t buf[NL_RECV_BUF] __attribute__((aligned(8)));
	static struct nft_expr x[NFT_RULE_MAX];
	const struct nlmsghdr *nlh = (const void *)buf;
	struct nft_head h;
	struct nft_chain c;
	struct nft_set s;
	size_t left, n, sum = 0;

	if (size > sizeof(buf))
		return 0;
	memcpy(buf, data, size);        /* aligned, as recv() gives it */
	left = size;
	while (nl_msg_ok(nlh, left)) {
		size_t step = NLMSG_ALIGN(nlh->nlmsg_len);

		/* every decoder on every message: each must reject what is not its kind */
		(void)nft_parse_head(nlh, &h);
		(void)nft_parse_chain(nlh, &c);
		(void)nft_parse_set(nlh, &s);
		(void)nft_parse_rule(nlh, x, NFT_RULE_MAX, &n);
		(void)nft_parse_elems(nlh, count_elem, &sum);
		if (step >= left)
			break;
		left -= step;
		nlh = (const void *)((const uint8_t *)nlh + step);
	}
	return 0;
}
