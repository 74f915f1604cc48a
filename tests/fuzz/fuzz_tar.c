/* fuzz_tar.c - libFuzzer: the tar reader on arbitrary bytes, handed out in
 * short reads. Every entry's name is clean (no leading '/', no empty or "."
 * component), its data is exactly the input's bytes at its offset, and a
 * failure always says why. Input starting with gzip's magic is inflated
 * first (at most 1 MiB out), as a layer would be. */
#include "runtime/image/image_int.h"

#include <stdlib.h>
#include <string.h>
#include <zlib.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

struct mem {
	const uint8_t *p;
	size_t n, pos, chunk;
};

static ssize_t mem_read(void *ctx, void *p, size_t n, struct err *e)
{
	struct mem *m = ctx;

	(void)e;
	if (n > m->chunk)
		n = m->chunk;
	if (n > m->n - m->pos)
		n = m->n - m->pos;
	memcpy(p, m->p + m->pos, n);
	m->pos += n;
	return (ssize_t)n;
}

static bool clean(const char *s)
{
	if (s[0] == '/')
		return false;
	for (const char *c = s; *c;) {
		const char *end = strchr(c, '/');
		size_t n = end ? (size_t)(end - c) : strlen(c);

		if (n == 0 || (n == 1 && c[0] == '.'))
			return false;
		c += n + (end ? 1 : 0);
		if (end && !*c)
			return false;   /* trailing '/' */
	}
	return true;
}

static uint8_t *inflate_all(const uint8_t *data, size_t size, size_t *out_len)
{
	size_t cap = 1u << 20;
	uint8_t *out = malloc(cap);
	z_stream z = { 0 };

	if (!out || inflateInit2(&z, 16 + MAX_WBITS) != Z_OK) {
		free(out);
		return NULL;
	}
	z.next_in = (Bytef *)(uintptr_t)data;
	z.avail_in = (uInt)size;
	z.next_out = out;
	z.avail_out = (uInt)cap;
	inflate(&z, Z_FINISH);
	*out_len = cap - z.avail_out;
	inflateEnd(&z);
	return out;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct tar_entry ent;
	static uint8_t buf[4096];
	struct mem m = { .p = data, .n = size, .chunk = 1 + (size ? data[size - 1] % 700 : 0) };
	struct tar_reader *t;
	struct err e = { 0 };
	uint8_t *plain = NULL;
	int r;

	if (size >= 2 && data[0] == 0x1f && data[1] == 0x8b) {
		plain = inflate_all(data, size, &m.n);
		if (!plain)
			return 0;
		m.p = plain;
	}
	if (tar_open(&t, (struct image_src){ .read = mem_read, .ctx = &m }, &e) < 0)
		abort();
	while ((r = tar_next(t, &ent, &e)) > 0) {
		struct image_src d = tar_data(t);
		uint64_t off = 0;
		ssize_t n;

		if (!clean(ent.name) || ent.n_xattrs > TAR_XATTRS_MAX || ent.mode > 07777)
			abort();
		if (ent.type != TAR_FILE && ent.size)
			abort();
		if (ent.name[0] & 1)
			continue;       /* some entries' data left unread: skipped */
		while ((n = d.read(d.ctx, buf, sizeof(buf), &e)) > 0) {
			if (ent.offset + off + (uint64_t)n > m.n ||
			    memcmp(buf, m.p + ent.offset + off, (size_t)n) != 0)
				abort();        /* the data is not where offset says */
			off += (uint64_t)n;
		}
		if (n < 0) {
			if (!e.code || !e.msg[0])
				abort();
			r = n;
			break;
		}
		if (off != ent.size)
			abort();
	}
	if (r < 0 && (!e.code || !e.msg[0]))
		abort();                /* a failure says why */
	tar_close(t);
	free(plain);
	return 0;
}
