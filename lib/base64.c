/* base64.c - RFC 4648 base64 (the standard alphabet, '=' padding): basic
 * credentials in registry auth files and the Authorization header. */
#include "lib/lib.h"

static const char b64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

size_t base64_encode(const void *in, size_t n, char *out)
{
	const uint8_t *p = in;
	size_t o = 0;

	for (; n >= 3; n -= 3, p += 3) {
		out[o++] = b64[p[0] >> 2];
		out[o++] = b64[(p[0] & 3) << 4 | p[1] >> 4];
		out[o++] = b64[(p[1] & 15) << 2 | p[2] >> 6];
		out[o++] = b64[p[2] & 63];
	}
	if (n) {
		out[o++] = b64[p[0] >> 2];
		out[o++] = b64[(p[0] & 3) << 4 | (n == 2 ? p[1] >> 4 : 0)];
		out[o++] = n == 2 ? b64[(p[1] & 15) << 2] : '=';
		out[o++] = '=';
	}
	out[o] = '\0';
	return o;
}

static int b64_value(char c)
{
	const char *q = c ? strchr(b64, c) : NULL;

	return q ? (int)(q - b64) : -1;
}

ssize_t base64_decode(const char *in, size_t n, void *out, size_t size)
{
	uint8_t *o = out;
	size_t k = 0;
	uint32_t acc = 0;
	unsigned bits = 0, pad = 0;

	for (size_t i = 0; i < n; i++) {
		int v;

		if (in[i] == '=') {             /* only at the end, at most two */
			pad++;
			continue;
		}
		if (pad || (v = b64_value(in[i])) < 0)
			return -EINVAL;
		acc = acc << 6 | (uint32_t)v;
		bits += 6;
		if (bits >= 8) {
			bits -= 8;
			if (k >= size)
				return -ERANGE;
			o[k++] = (uint8_t)(acc >> bits);
		}
	}
	/* left over: 0 bits (no padding), 2 (one byte: "=="), 4 (two: "="); the
	 * padding, when present, must match, and unused bits must be zero */
	if (bits >= 6 || (pad && (n % 4 || pad != bits / 2)) || (acc & ((1u << bits) - 1)))
		return -EINVAL;
	return (ssize_t)k;
}
