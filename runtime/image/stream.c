/* stream.c - runtime/image: bytes in (a file descriptor as a source) and
 * digests as text. */
#include "runtime/image/image_int.h"

#include <bearssl.h>
#include <unistd.h>

static ssize_t fd_read(void *ctx, void *p, size_t n, struct err *e)
{
	struct image_fd_src *s = ctx;
	ssize_t r;

	if (s->left < n)
		n = (size_t)s->left;
	if (!n)
		return 0;
	do
		r = read(s->fd, p, n);
	while (r < 0 && errno == EINTR);
	if (r < 0)
		return err_sys(e, errno, "read");
	s->left -= (uint64_t)r;
	return r;
}

void image_fd_src_init(struct image_fd_src *s, int fd, uint64_t limit)
{
	s->fd = fd;
	s->left = limit;
	s->src.read = fd_read;
	s->src.ctx = s;
}

void image_digest_format(const uint8_t sha[32], char *out)
{
	static const char hex[] = "0123456789abcdef";

	memcpy(out, "sha256:", 7);
	for (int i = 0; i < 32; i++) {
		out[7 + 2 * i] = hex[sha[i] >> 4];
		out[8 + 2 * i] = hex[sha[i] & 15];
	}
	out[7 + 64] = '\0';
}

void image_digest_of(const void *p, size_t n, char *out)
{
	br_sha256_context c;
	uint8_t sum[32];

	br_sha256_init(&c);
	br_sha256_update(&c, p, n);
	br_sha256_out(&c, sum);
	image_digest_format(sum, out);
}

bool image_digest_valid(const char *s)
{
	if (!s || strncmp(s, "sha256:", 7) != 0)
		return false;
	s += 7;
	for (int i = 0; i < 64; i++)
		if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
			return false;
	return s[64] == '\0';
}
