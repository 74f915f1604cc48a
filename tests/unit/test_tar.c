/* test_tar.c - runtime/image: the tar reader on archives built here byte by
 * byte (ustar, GNU, pax), and layers unpacked into a temporary directory
 * (whiteouts, links, ownership, digests, gzip, and everything refused). */
#include "t.h"
#include "runtime/image/image_int.h"

#include <bearssl.h>
#include <fcntl.h>
#include <ftw.h>
#include <stdio.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>
#include <unistd.h>
#include <zlib.h>

/* ---- a tiny tar writer --------------------------------------------------------- */

struct hdr {
	const char *name, *link, *prefix;
	char type;
	uint64_t size;
	unsigned mode, uid, gid, major, minor;
	int64_t mtime;
	bool gnu_magic, b256_size, b256_uid;
};

static void octal(char *f, size_t n, uint64_t v)
{
	snprintf(f, n, "%0*llo", (int)(n - 1), (unsigned long long)v);
}

static void b256(char *f, size_t n, uint64_t v)
{
	memset(f, 0, n);
	f[0] = (char)0x80;
	for (size_t i = n - 1; i > 0 && v; i--, v >>= 8)
		f[i] = (char)(v & 0xff);
}

static void tw_block(struct buf *b, const void *p, size_t n)
{
	static const char zero[512];

	buf_append(b, p, n);
	if (n % 512)
		buf_append(b, zero, 512 - n % 512);
}

static void tw_header(struct buf *b, const struct hdr *h)
{
	char blk[512] = { 0 };
	unsigned sum = 0;

	strncpy(blk, h->name, 100);
	octal(blk + 100, 8, h->mode ? h->mode : 0644);
	if (h->b256_uid)
		b256(blk + 108, 8, h->uid);
	else
		octal(blk + 108, 8, h->uid);
	octal(blk + 116, 8, h->gid);
	if (h->b256_size)
		b256(blk + 124, 12, h->size);
	else
		octal(blk + 124, 12, h->size);
	octal(blk + 136, 12, (uint64_t)(h->mtime ? h->mtime : 1700000000));
	blk[156] = h->type ? h->type : '0';
	if (h->link)
		strncpy(blk + 157, h->link, 100);
	if (h->gnu_magic)
		memcpy(blk + 257, "ustar  ", 8);
	else
		memcpy(blk + 257, "ustar\0" "00", 8);
	octal(blk + 329, 8, h->major);
	octal(blk + 337, 8, h->minor);
	if (h->prefix)
		strncpy(blk + 345, h->prefix, 155);
	memset(blk + 148, ' ', 8);
	for (int i = 0; i < 512; i++)
		sum += (uint8_t)blk[i];
	snprintf(blk + 148, 8, "%06o", sum);
	blk[155] = ' ';
	buf_append(b, blk, 512);
}

static void tw_file(struct buf *b, const char *name, const char *data, unsigned mode)
{
	tw_header(b, &(struct hdr){ .name = name, .size = strlen(data), .mode = mode });
	tw_block(b, data, strlen(data));
}

static void tw_entry(struct buf *b, const char *name, char type, const char *link)
{
	tw_header(b, &(struct hdr){ .name = name, .type = type, .link = link,
				    .mode = type == '5' ? 0755 : 0644 });
}

/* One pax record, its length counting itself. */
static void pax_rec(struct buf *p, const char *key, const void *val, size_t vlen)
{
	size_t base = strlen(key) + vlen + 3, len = base;
	char num[24];

	for (;;) {
		size_t n = (size_t)snprintf(num, sizeof(num), "%zu", len);

		if (base + n == len)
			break;
		len = base + n;
	}
	buf_printf(p, "%s %s=", num, key);
	buf_append(p, val, vlen);
	buf_append(p, "\n", 1);
}

static void tw_pax(struct buf *b, char type, const struct buf *recs)
{
	tw_header(b, &(struct hdr){ .name = "PaxHeaders/x", .type = type, .size = recs->len });
	tw_block(b, recs->data, recs->len);
}

static void tw_gnu_long(struct buf *b, char type, const char *name)
{
	tw_header(b, &(struct hdr){ .name = "././@LongLink", .type = type,
				    .size = strlen(name) + 1, .gnu_magic = true });
	tw_block(b, name, strlen(name) + 1);
}

static void tw_end(struct buf *b)
{
	static const char zero[1024];

	buf_append(b, zero, sizeof(zero));
}

/* ---- sources ---------------------------------------------------------------------- */

/* Memory, handed out a few bytes at a time (readers must cope with short reads). */
struct mem {
	struct image_src src;
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

static struct image_src mem_src(struct mem *m, const void *p, size_t n, size_t chunk)
{
	*m = (struct mem){ .p = p, .n = n, .chunk = chunk };
	m->src = (struct image_src){ .read = mem_read, .ctx = m };
	return m->src;
}

static char *slurp(struct tar_reader *t, struct err *e)
{
	struct image_src d = tar_data(t);
	static char out[1 << 16];
	size_t n = 0;
	ssize_t r;

	while ((r = d.read(d.ctx, out + n, sizeof(out) - 1 - n, e)) > 0)
		n += (size_t)r;
	out[n] = '\0';
	return r < 0 ? NULL : out;
}

static void gzip(const void *p, size_t n, struct buf *out)
{
	z_stream z = { 0 };
	uint8_t tmp[4096];
	int r;

	deflateInit2(&z, 6, Z_DEFLATED, 16 + MAX_WBITS, 8, Z_DEFAULT_STRATEGY);
	z.next_in = (Bytef *)(uintptr_t)p;
	z.avail_in = (uInt)n;
	do {
		z.next_out = tmp;
		z.avail_out = sizeof(tmp);
		r = deflate(&z, Z_FINISH);
		buf_append(out, tmp, sizeof(tmp) - z.avail_out);
	} while (r != Z_STREAM_END);
	deflateEnd(&z);
}

/* ---- the reader --------------------------------------------------------------------- */

static void test_digest_text(void)
{
	uint8_t h[32];
	char d[IMAGE_DIGEST_SIZE];

	for (int i = 0; i < 32; i++)
		h[i] = (uint8_t)(i * 9);
	image_digest_format(h, d);
	T_STREQ(d, "sha256:0009121b242d363f48515a636c757e879099a2abb4bdc6cfd8e1eaf3fc050e17",
		"a digest is sha256: and 64 lower-case hex digits");
	T_OK(image_digest_valid(d), "... which image_digest_valid accepts");
	d[10] = 'A';
	T_OK(!image_digest_valid(d), "upper-case hex is not a digest");
	T_OK(!image_digest_valid("sha256:abc"), "a short one is not");
	T_OK(!image_digest_valid("sha512:0009121b242d363f48515a636c757e879099a2abb4bdc6cfd8e1eaf3fc050e17"),
	     "another algorithm is not");
}

static void test_fd_src(void)
{
	char path[] = "/tmp/berth-tar-fd.XXXXXX", got[16] = { 0 };
	int fd = mkstemp(path);
	struct image_fd_src s;
	ssize_t n, total = 0;

	T_OK(fd >= 0 && write(fd, "0123456789", 10) == 10, "a file to read");
	lseek(fd, 2, SEEK_SET);
	image_fd_src_init(&s, fd, 5);
	while ((n = s.src.read(s.src.ctx, got + total, sizeof(got) - 1 - (size_t)total, NULL)) > 0)
		total += n;
	T_STREQ(got, "23456", "a file source reads from the fd's offset up to its limit");
	close(fd);
	unlink(path);
}

static void test_ustar(void)
{
	struct buf b;
	struct mem m;
	struct tar_reader *t;
	struct tar_entry *ent = malloc(sizeof(*ent));
	struct err e = { 0 };
	char longpath[200];
	char *data;

	buf_init(&b);
	tw_entry(&b, "./etc/", '5', NULL);
	tw_file(&b, "./etc/hostname", "gateway-7\n", 0644);
	tw_entry(&b, "etc/localtime", '2', "/usr/share/zoneinfo/UTC");
	tw_file(&b, "skipped", "data nobody reads", 0600);
	snprintf(longpath, sizeof(longpath), "%0120d", 0);
	tw_header(&b, &(struct hdr){ .name = "file", .prefix = longpath, .size = 3 });
	tw_block(&b, "abc", 3);
	tw_header(&b, &(struct hdr){ .name = "big", .size = 2, .b256_size = true, .uid = 3000000,
				     .b256_uid = true });
	tw_block(&b, "hi", 2);
	tw_header(&b, &(struct hdr){ .name = "dev/ttyS0", .type = '3', .major = 4, .minor = 64 });
	tw_end(&b);

	T_EQ(tar_open(&t, mem_src(&m, b.data, b.len, 7), &e), 0, "open");
	T_EQ(tar_next(t, ent, &e), 1, "first entry");
	T_STREQ(ent->name, "etc", "'./etc/' is 'etc'");
	T_EQ(ent->type, TAR_DIR, "a directory");
	T_EQ(ent->mode, 0755, "with its mode");
	T_EQ(tar_next(t, ent, &e), 1, "second entry");
	T_STREQ(ent->name, "etc/hostname", "'./' is removed");
	T_EQ(ent->type, TAR_FILE, "a file");
	T_EQ(ent->size, 10, "of 10 bytes");
	T_EQ(ent->mtime, 1700000000, "its mtime");
	T_OK(memcmp(b.data + ent->offset, "gateway-7\n", 10) == 0,
	     "offset is where its data is in the archive (an importer seeks there)");
	data = slurp(t, NULL);
	T_STREQ(data, "gateway-7\n", "its data, read in 7-byte pieces");
	T_EQ(tar_next(t, ent, &e), 1, "third entry");
	T_EQ(ent->type, TAR_SYMLINK, "a symlink");
	T_STREQ(ent->link, "/usr/share/zoneinfo/UTC", "its target as written");
	T_EQ(tar_next(t, ent, &e), 1, "fourth entry (its data is not read)");
	T_EQ(tar_next(t, ent, &e), 1, "the next one after unread data");
	T_OK(strlen(ent->name) == 125 && strcmp(ent->name + 121, "file") == 0,
	     "a ustar prefix joins the name (%zu bytes)", strlen(ent->name));
	T_STREQ(slurp(t, NULL), "abc", "and its data follows");
	T_EQ(tar_next(t, ent, &e), 1, "base-256 entry");
	T_EQ(ent->size, 2, "a base-256 size");
	T_EQ(ent->uid, 3000000, "a base-256 uid beyond 7 octal digits");
	T_EQ(tar_next(t, ent, &e), 1, "device entry");
	T_OK(ent->type == TAR_CHAR && ent->devmajor == 4 && ent->devminor == 64,
	     "a character device 4:64");
	T_EQ(tar_next(t, ent, &e), 0, "two zero blocks end the archive");
	T_EQ(tar_next(t, ent, &e), 0, "and it stays ended");
	tar_close(t);

	/* the same without the end blocks: GNU tar accepts it */
	b.len -= 1024;
	T_EQ(tar_open(&t, mem_src(&m, b.data, b.len, 512), &e), 0, "open");
	int n = 0, r;

	while ((r = tar_next(t, ent, &e)) > 0)
		n++;
	T_EQ(r, 0, "the end of input at a block boundary ends the archive too");
	T_EQ(n, 7, "after every entry");
	tar_close(t);
	/* one zero block, then the end */
	buf_append(&b, (char[512]){ 0 }, 512);
	T_EQ(tar_open(&t, mem_src(&m, b.data, b.len, 4096), &e), 0, "open");
	while ((r = tar_next(t, ent, &e)) > 0)
		;
	T_EQ(r, 0, "a single zero block then the end of input ends it");
	tar_close(t);
	buf_free(&b);
	free(ent);
}

static void test_long_names(void)
{
	struct buf b, p;
	struct mem m;
	struct tar_reader *t;
	struct tar_entry *ent = malloc(sizeof(*ent));
	struct err e = { 0 };
	char name[301], target[401];

	memset(name, 'n', 300);
	name[300] = '\0';
	name[100] = '/';
	memset(target, 't', 400);
	target[400] = '\0';
	buf_init(&b);
	buf_init(&p);
	tw_gnu_long(&b, 'L', name);
	tw_gnu_long(&b, 'K', target);
	tw_header(&b, &(struct hdr){ .name = "truncated-name", .type = '2', .link = "short",
				     .gnu_magic = true });
	pax_rec(&p, "path", "pax/very/long/../name", 21);
	pax_rec(&p, "linkpath", target, 300);
	pax_rec(&p, "uid", "4294967295", 10);
	pax_rec(&p, "gid", "70000", 5);
	pax_rec(&p, "mtime", "1700000123.999999", 17);
	pax_rec(&p, "size", "5", 1);
	pax_rec(&p, "SCHILY.xattr.security.capability", "\x01\x00\x00\x02", 4);
	pax_rec(&p, "SCHILY.xattr.user.note", "a=b\nc", 5);
	pax_rec(&p, "atime", "1", 1);
	tw_pax(&b, 'x', &p);
	tw_header(&b, &(struct hdr){ .name = "short", .size = 0 });     /* pax size wins */
	tw_block(&b, "hello", 5);
	buf_reset(&p);
	pax_rec(&p, "uid", "1234", 4);
	pax_rec(&p, "SCHILY.xattr.user.all", "g", 1);
	tw_pax(&b, 'g', &p);
	tw_file(&b, "after-global", "x", 0644);
	tw_end(&b);

	T_EQ(tar_open(&t, mem_src(&m, b.data, b.len, 100), &e), 0, "open");
	T_EQ(tar_next(t, ent, &e), 1, "GNU long name and link");
	T_STREQ(ent->name, name, "a 300-byte GNU long name ('L')");
	T_STREQ(ent->link, target, "a 400-byte GNU long link ('K')");
	T_EQ(tar_next(t, ent, &e), 1, "pax entry");
	T_STREQ(ent->name, "pax/very/long/../name", "pax path (kept as is but for './')");
	T_EQ(strlen(ent->link), 300, "pax linkpath");
	T_EQ(ent->uid, 4294967295u, "pax uid up to 2^32-1");
	T_EQ(ent->gid, 70000, "pax gid");
	T_EQ(ent->mtime, 1700000123, "pax mtime (the fraction dropped)");
	T_EQ(ent->size, 5, "pax size overrides the header's");
	T_EQ(ent->n_xattrs, 2, "two xattrs");
	T_OK(ent->n_xattrs == 2 && strcmp(ent->xattrs[0].name, "security.capability") == 0 &&
	     ent->xattrs[0].len == 4 && memcmp(ent->xattrs[0].value, "\x01\x00\x00\x02", 4) == 0,
	     "a binary xattr value with NULs");
	T_OK(ent->n_xattrs == 2 && ent->xattrs[1].len == 5 &&
	     memcmp(ent->xattrs[1].value, "a=b\nc", 5) == 0, "a value with '=' and a newline");
	T_STREQ(slurp(t, NULL), "hello", "the data is pax size long");
	T_EQ(tar_next(t, ent, &e), 1, "after a global header");
	T_EQ(ent->uid, 1234, "a global pax uid applies to later entries");
	T_OK(ent->n_xattrs == 1 && strcmp(ent->xattrs[0].name, "user.all") == 0,
	     "and its xattrs");
	T_EQ(tar_next(t, ent, &e), 0, "end");
	tar_close(t);
	buf_free(&b);
	buf_free(&p);
	free(ent);
}

/* The error of reading archive a to its end (NULL: none). */
static const char *read_all(const struct buf *a, struct err *e)
{
	struct mem m;
	struct tar_reader *t;
	struct tar_entry *ent = malloc(sizeof(*ent));
	int r;

	err_clear(e);
	tar_open(&t, mem_src(&m, a->data, a->len, 512), e);
	while ((r = tar_next(t, ent, e)) > 0)
		if (!slurp(t, e))
			break;
	tar_close(t);
	free(ent);
	return e->code ? e->msg : NULL;
}

static void test_errors(void)
{
	struct buf b;
	struct err e;
	const char *msg;

	buf_init(&b);
	tw_file(&b, "etc/passwd", "root:x:0:0::/root:/bin/sh\n", 0644);
	tw_end(&b);
	T_OK(read_all(&b, &e) == NULL, "a good archive reads to its end");

	b.data[3] ^= 1;
	msg = read_all(&b, &e);
	T_OK(msg && strstr(msg, "checksum") && strstr(msg, "byte 0"),
	     "a corrupt header is a checksum error at its offset: %s", msg ? msg : "(none)");
	b.data[3] ^= 1;

	b.len = 512 + 10;
	msg = read_all(&b, &e);
	T_OK(msg && strstr(msg, "truncated") && strstr(msg, "etc/passwd"),
	     "an archive cut inside data is truncated, naming the entry: %s", msg ? msg : "(none)");
	b.len = 300;
	msg = read_all(&b, &e);
	T_OK(msg && strstr(msg, "truncated"), "cut inside a header: truncated: %s",
	     msg ? msg : "(none)");

	buf_reset(&b);
	tw_header(&b, &(struct hdr){ .name = "sparse", .type = 'S' });
	tw_end(&b);
	msg = read_all(&b, &e);
	T_OK(msg && strstr(msg, "'sparse'") && strstr(msg, "not supported"),
	     "an unknown entry type is refused by name: %s", msg ? msg : "(none)");

	buf_reset(&b);
	struct buf p;

	buf_init(&p);
	buf_puts(&p, "99 path=x\n");
	tw_pax(&b, 'x', &p);
	tw_file(&b, "f", "", 0644);
	tw_end(&b);
	msg = read_all(&b, &e);
	T_OK(msg && strstr(msg, "pax"), "a pax record longer than its header: %s",
	     msg ? msg : "(none)");
	buf_free(&p);

	buf_reset(&b);
	tw_gnu_long(&b, 'L', "only-a-name");
	tw_end(&b);
	msg = read_all(&b, &e);
	T_OK(msg && strstr(msg, "without its entry"), "a long name with no entry after it: %s",
	     msg ? msg : "(none)");
	buf_free(&b);
}

/* ---- layers ------------------------------------------------------------------------ */

static char top[64];            /* a scratch directory; the layer is top/l */
static char layer[80];

static int rm_one(const char *p, const struct stat *st, int flag, struct FTW *f)
{
	(void)st; (void)flag; (void)f;
	return remove(p);
}

static void fresh(void)
{
	nftw(top, rm_one, 16, FTW_DEPTH | FTW_PHYS);
	mkdir(top, 0755);
	mkdir(layer, 0755);
}

static const char *unpack(const struct buf *a, bool devices, struct unpack_result *r,
			  struct err *e)
{
	struct mem m;
	struct unpack_opts o = { .allow_devices = devices };

	err_clear(e);
	fresh();
	if (image_layer_unpack(mem_src(&m, a->data, a->len, 3000), layer, &o, r, e) < 0)
		return e->msg;
	return NULL;
}

static bool exists_at(const char *rel)
{
	char p[256];
	struct stat st;

	snprintf(p, sizeof(p), "%s/%s", layer, rel);
	return lstat(p, &st) == 0;
}

static struct stat st_at(const char *rel)
{
	char p[256];
	struct stat st = { 0 };

	snprintf(p, sizeof(p), "%s/%s", layer, rel);
	lstat(p, &st);
	return st;
}

static const char *file_at(const char *rel)
{
	static char out[256];
	char p[256];
	int fd;
	ssize_t n;

	snprintf(p, sizeof(p), "%s/%s", layer, rel);
	fd = open(p, O_RDONLY | O_NOFOLLOW);
	if (fd < 0)
		return "(missing)";
	n = read(fd, out, sizeof(out) - 1);
	close(fd);
	out[n < 0 ? 0 : n] = '\0';
	return out;
}

static void test_layer(void)
{
	struct buf b, p, gz;
	struct unpack_result r;
	struct err e;
	struct stat st;
	char d[IMAGE_DIGEST_SIZE], lnk[64] = { 0 }, xv[16] = { 0 }, path[160];
	const char *msg;

	buf_init(&b);
	buf_init(&p);
	buf_init(&gz);
	tw_header(&b, &(struct hdr){ .name = "./", .type = '5', .mode = 0755, .mtime = 1500000000 });
	tw_header(&b, &(struct hdr){ .name = "usr/", .type = '5', .mode = 0750, .mtime = 1600000000 });
	tw_header(&b, &(struct hdr){ .name = "usr/bin/", .type = '5', .mode = 0755 });
	tw_header(&b, &(struct hdr){ .name = "usr/bin/su", .size = 4, .mode = 04755, .uid = 0,
				     .gid = 0, .mtime = 1234567890 });
	tw_block(&b, "ELF!", 4);
	tw_header(&b, &(struct hdr){ .name = "home/app/notes", .size = 2, .mode = 0600,
				     .uid = 1000, .gid = 1001 });         /* no parent entries */
	tw_block(&b, "hi", 2);
	tw_entry(&b, "usr/bin/passwd", '1', "usr/bin/su");
	tw_entry(&b, "etc-link", '2', "/etc");
	tw_entry(&b, "usr/fifo", '6', NULL);
	pax_rec(&p, "SCHILY.xattr.user.origin", "berth", 5);
	pax_rec(&p, "SCHILY.xattr.trusted.overlay.redirect", "/x", 2);
	tw_pax(&b, 'x', &p);
	tw_file(&b, "usr/tagged", "t", 0644);
	tw_file(&b, "replaced", "first", 0644);
	tw_file(&b, "replaced", "second", 0644);
	tw_header(&b, &(struct hdr){ .name = "d/", .type = '5', .mode = 0700 });
	tw_file(&b, "d/keep", "k", 0644);
	tw_header(&b, &(struct hdr){ .name = "d/", .type = '5', .mode = 0711 });
	tw_end(&b);

	msg = unpack(&b, false, &r, &e);
	T_OK(!msg, "a layer unpacks: %s", msg ? msg : "ok");
	T_STREQ(file_at("usr/bin/su"), "ELF!", "a file's data");
	st = st_at("usr/bin/su");
	T_EQ(st.st_mode & 07777, 04755, "set-uid kept (mode set after chown)");
	T_EQ(st.st_mtime, 1234567890, "a file's mtime");
	st = st_at("home/app/notes");
	T_OK(st.st_uid == 1000 && st.st_gid == 1001, "ownership (1000:1001)");
	T_OK(S_ISDIR(st_at("home/app").st_mode), "missing parents are created");
	T_EQ(st_at("usr").st_mode & 07777, 0750, "a directory's mode");
	T_EQ(st_at("usr").st_mtime, 1600000000, "a directory's mtime, set after its children");
	T_EQ(st_at("").st_mtime, 1500000000, "the layer directory's own mtime ('./')");
	T_OK(st_at("usr/bin/passwd").st_ino == st_at("usr/bin/su").st_ino &&
	     st_at("usr/bin/su").st_nlink == 2, "a hard link shares the file's inode");
	snprintf(path, sizeof(path), "%s/etc-link", layer);
	T_OK(readlink(path, lnk, sizeof(lnk) - 1) == 4 && strcmp(lnk, "/etc") == 0,
	     "an absolute symlink is kept as it is");
	T_OK(S_ISFIFO(st_at("usr/fifo").st_mode), "a fifo");
	snprintf(path, sizeof(path), "%s/usr/tagged", layer);
	T_OK(getxattr(path, "user.origin", xv, sizeof(xv)) == 5 && strcmp(xv, "berth") == 0,
	     "a pax xattr is set");
	T_OK(getxattr(path, "trusted.overlay.redirect", xv, sizeof(xv)) < 0,
	     "an overlayfs xattr from the archive is not");
	T_EQ(r.xattrs_skipped, 1, "and counted as skipped");
	T_STREQ(file_at("replaced"), "second", "a later entry replaces an earlier one");
	T_STREQ(file_at("d/keep"), "k", "a directory given again keeps its children");
	T_EQ(st_at("d").st_mode & 07777, 0711, "and takes the later mode");
	T_EQ(r.entries, 14, "entries counted (extension headers are not entries)");
	T_EQ(r.bytes_out, 4 + 2 + 1 + 5 + 6 + 1, "file bytes written");
	T_OK(!r.gzip, "not gzip");
	image_digest_of(b.data, b.len, d);
	T_STREQ(r.digest, d, "an uncompressed layer's digest is the sha256 of its bytes");
	T_STREQ(r.diff_id, d, "... and so is its diff_id");
	T_EQ(r.bytes_in, b.len, "every byte read");

	/* the same, gzip-compressed */
	gzip(b.data, b.len, &gz);
	msg = unpack(&gz, false, &r, &e);
	T_OK(!msg, "a gzip layer unpacks: %s", msg ? msg : "ok");
	T_OK(r.gzip, "gzip detected from its magic");
	T_STREQ(r.diff_id, d, "its diff_id is the sha256 of the uncompressed tar");
	image_digest_of(gz.data, gz.len, d);
	T_STREQ(r.digest, d, "its digest the sha256 of the compressed bytes");
	T_STREQ(file_at("usr/bin/su"), "ELF!", "the same tree");

	/* two gzip members, one after the other */
	buf_reset(&gz);
	gzip(b.data, 1536, &gz);
	gzip(b.data + 1536, b.len - 1536, &gz);
	msg = unpack(&gz, false, &r, &e);
	T_OK(!msg && strcmp(file_at("replaced"), "second") == 0,
	     "concatenated gzip members are one stream: %s", msg ? msg : "ok");
	image_digest_of(b.data, b.len, d);
	T_STREQ(r.diff_id, d, "over both members");

	gz.len -= 40;
	msg = unpack(&gz, false, &r, &e);
	T_OK(msg && strstr(msg, "gzip") && strstr(msg, "ends early"),
	     "a truncated gzip layer is an error: %s", msg ? msg : "(none)");
	gz.len += 40;
	gz.data[gz.len / 2] ^= 0x55;
	gz.data[gz.len / 2 + 1] ^= 0x55;
	msg = unpack(&gz, false, &r, &e);
	T_OK(msg != NULL, "a corrupt gzip layer is an error: %s", msg ? msg : "(none)");

	b.len = 512 * 4 + 2;
	msg = unpack(&b, false, &r, &e);
	T_OK(msg && strstr(msg, "truncated") && strstr(msg, "usr/bin/su"),
	     "a truncated layer names the entry: %s", msg ? msg : "(none)");
	buf_free(&b);
	buf_free(&p);
	buf_free(&gz);
}

static void test_whiteouts(void)
{
	struct buf b;
	struct unpack_result r;
	struct err e;
	struct stat st;
	char v[4] = { 0 }, path[160];
	const char *msg;

	buf_init(&b);
	tw_entry(&b, "etc/", '5', NULL);
	tw_file(&b, "etc/old", "x", 0644);
	tw_entry(&b, "etc/.wh.old", '0', NULL);
	tw_entry(&b, "etc/.wh.motd", '0', NULL);
	tw_entry(&b, "var/", '5', NULL);
	tw_file(&b, "var/cache/f", "x", 0644);
	tw_entry(&b, ".wh.var", '0', NULL);
	tw_entry(&b, "opt/", '5', NULL);
	tw_entry(&b, "opt/.wh..wh..opq", '0', NULL);
	tw_file(&b, "opt/new", "n", 0644);
	tw_end(&b);
	msg = unpack(&b, false, &r, &e);
	T_OK(!msg, "a layer with whiteouts unpacks: %s", msg ? msg : "ok");
	st = st_at("etc/motd");
	T_OK(S_ISCHR(st.st_mode) && st.st_rdev == makedev(0, 0),
	     "'.wh.motd' is a 0:0 character device 'motd'");
	st = st_at("etc/old");
	T_OK(S_ISCHR(st.st_mode) && st.st_rdev == 0,
	     "a whiteout after a file of the same layer replaces it");
	T_OK(!exists_at("etc/.wh.old"), "no '.wh.' name is left");
	st = st_at("var");
	T_OK(S_ISCHR(st.st_mode), "a whiteout replaces a whole directory of the same layer");
	snprintf(path, sizeof(path), "%s/opt", layer);
	T_OK(getxattr(path, "trusted.overlay.opaque", v, sizeof(v)) == 1 && v[0] == 'y',
	     "'.wh..wh..opq' makes its directory opaque (trusted.overlay.opaque=y)");
	T_STREQ(file_at("opt/new"), "n", "and the directory keeps this layer's entries");
	buf_free(&b);
}

static void test_refused(void)
{
	struct buf b;
	struct unpack_result r;
	struct err e;
	char outside[128];
	const char *msg;

	buf_init(&b);
	tw_file(&b, "a/../../escaped", "x", 0644);
	tw_end(&b);
	msg = unpack(&b, false, &r, &e);
	snprintf(outside, sizeof(outside), "%s/escaped", top);
	T_OK(msg && strstr(msg, "layer entry 'a/../../escaped'") && strstr(msg, ".."),
	     "a name with '..' is refused, by name: %s", msg ? msg : "(none)");
	T_OK(access(outside, F_OK) < 0, "and nothing is written outside");

	buf_reset(&b);
	tw_entry(&b, "evil", '2', top);
	tw_file(&b, "evil/planted", "x", 0644);
	tw_end(&b);
	msg = unpack(&b, false, &r, &e);
	snprintf(outside, sizeof(outside), "%s/planted", top);
	T_OK(msg && strstr(msg, "layer entry 'evil/planted'") && strstr(msg, "symlink 'evil'"),
	     "a path through a symlink is refused: %s", msg ? msg : "(none)");
	T_OK(access(outside, F_OK) < 0, "nothing is written where the symlink points");

	buf_reset(&b);
	tw_entry(&b, "root", '2', "/");
	tw_file(&b, "root/etc/berth-test-escape", "x", 0644);
	tw_end(&b);
	msg = unpack(&b, false, &r, &e);
	T_OK(msg && strstr(msg, "symlink 'root'") && access("/etc/berth-test-escape", F_OK) < 0,
	     "'root -> /' then 'root/etc/...' writes nothing in the host's /etc: %s",
	     msg ? msg : "(none)");
	unlink("/etc/berth-test-escape");       /* should the check above fail */

	buf_reset(&b);
	tw_entry(&b, "evil", '2', top);
	tw_entry(&b, "stolen", '1', "evil/secret");
	tw_end(&b);
	snprintf(outside, sizeof(outside), "%s/secret", top);
	msg = unpack(&b, false, &r, &e);
	T_OK(msg && strstr(msg, "'stolen'") && strstr(msg, "hard link"),
	     "a hard link through a symlink is refused: %s", msg ? msg : "(none)");

	buf_reset(&b);
	tw_entry(&b, "etc-link", '2', "/etc");
	tw_entry(&b, "pw", '1', "etc-link");
	tw_end(&b);
	msg = unpack(&b, false, &r, &e);
	T_OK(msg && strstr(msg, "not a file of this layer"),
	     "a hard link to a symlink is refused: %s", msg ? msg : "(none)");

	buf_reset(&b);
	tw_entry(&b, "shadow", '1', "etc/shadow");
	tw_end(&b);
	msg = unpack(&b, false, &r, &e);
	T_OK(msg && strstr(msg, "layer entry 'shadow'") && strstr(msg, "not a file of this layer"),
	     "a hard link to a file the layer does not have is refused: %s", msg ? msg : "(none)");

	buf_reset(&b);
	tw_header(&b, &(struct hdr){ .name = "dev/mem", .type = '3', .major = 1, .minor = 1 });
	tw_end(&b);
	msg = unpack(&b, false, &r, &e);
	T_OK(msg && strstr(msg, "layer entry 'dev/mem'") && strstr(msg, "device"),
	     "a device node is refused: %s", msg ? msg : "(none)");
	T_OK(!exists_at("dev/mem"), "and not created");
	msg = unpack(&b, true, &r, &e);
	T_OK(!msg && S_ISCHR(st_at("dev/mem").st_mode) && st_at("dev/mem").st_rdev == makedev(1, 1),
	     "allowed with allow_devices: %s", msg ? msg : "ok");

	buf_reset(&b);
	tw_file(&b, "f", "x", 0644);
	tw_file(&b, "f/x", "y", 0644);
	tw_end(&b);
	msg = unpack(&b, false, &r, &e);
	T_OK(msg && strstr(msg, "layer entry 'f/x'") && strstr(msg, "not a directory"),
	     "a path through a file: %s", msg ? msg : "(none)");
	buf_free(&b);
}

/* Archives GNU tar writes, in each of its formats, unpack to the tree they
 * were made from. */
static void make_tree(const char *root)
{
	char p[1024], deep[600] = "";
	int fd;

	for (int i = 0; i < 6; i++)         /* a path of 6 * 51 bytes */
		snprintf(deep + strlen(deep), sizeof(deep) - strlen(deep), "%s%050d",
			 i ? "/" : "", i);
	snprintf(p, sizeof(p), "mkdir -p %s/%s %s/empty", root, deep, root);
	T_EQ(system(p), 0, "a tree to archive");
	snprintf(p, sizeof(p), "%s/%s/%0200d", root, deep, 7);   /* a 200-byte leaf */
	fd = open(p, O_WRONLY | O_CREAT, 0640);
	T_OK(fd >= 0 && write(fd, "deep\n", 5) == 5, "a file with a %zu-byte name", strlen(p) - strlen(root) - 1);
	close(fd);
	snprintf(p, sizeof(p), "%s/data", root);
	fd = open(p, O_WRONLY | O_CREAT, 0755);
	for (int i = 0; i < 3000; i++)
		dprintf(fd, "line %d of a file over several blocks\n", i);
	fsetxattr(fd, "user.mark", "42", 2, 0);
	close(fd);
	snprintf(p, sizeof(p), "ln %s/data %s/hard && ln -s data %s/soft && ln -s /nonexistent/abs %s/abs",
		 root, root, root, root);
	T_EQ(system(p), 0, "links");
}

static void test_gnu_tar(void)
{
	static const char *const formats[] = { "gnu", "pax", "pax.gz" };
	char src[128], cmd[512], arch[160];
	struct unpack_result r;
	struct err e;

	if (system("tar --version >/dev/null 2>&1") != 0) {
		T_OK(1, "archives of GNU tar # SKIP no tar here");
		return;
	}
	snprintf(src, sizeof(src), "%s/src", top);
	snprintf(arch, sizeof(arch), "%s/a.tar", top);
	for (size_t i = 0; i < ARRAY_SIZE(formats); i++) {
		const char *f = formats[i];
		struct image_fd_src s;
		const char *msg = NULL;
		int fd;

		fresh();
		mkdir(src, 0755);
		make_tree(src);
		if (strcmp(f, "pax.gz") == 0)
			snprintf(cmd, sizeof(cmd), "cd %s && tar --format=pax --xattrs "
				 "--xattrs-include='user.*' -cf - . | gzip -n > %s", src, arch);
		else
			snprintf(cmd, sizeof(cmd), "cd %s && tar --format=%s %s -cf %s .", src, f,
				 strcmp(f, "pax") == 0 ? "--xattrs --xattrs-include='user.*'" : "", arch);
		T_EQ(system(cmd), 0, "GNU tar writes a %s archive", f);
		fd = open(arch, O_RDONLY);
		image_fd_src_init(&s, fd, UINT64_MAX);
		err_clear(&e);
		if (image_layer_unpack(s.src, layer, NULL, &r, &e) < 0)
			msg = e.msg;
		close(fd);
		T_OK(!msg, "%s: unpacked: %s", f, msg ? msg : "ok");
		snprintf(cmd, sizeof(cmd), "diff -r --no-dereference %s %s >&2", src, layer);
		T_EQ(system(cmd), 0, "%s: the same tree (diff -r)", f);
		T_OK(st_at("hard").st_ino == st_at("data").st_ino, "%s: the hard link kept", f);
		T_EQ(st_at("data").st_mode & 07777, 0755, "%s: modes kept", f);
		snprintf(cmd, sizeof(cmd), "%s/empty", src);
		struct stat want;

		T_OK(stat(cmd, &want) == 0 && st_at("empty").st_mtime == want.st_mtime,
		     "%s: a directory's mtime kept", f);
		if (strncmp(f, "pax", 3) == 0) {
			char v[8] = { 0 }, p[200];

			snprintf(p, sizeof(p), "%s/data", layer);
			T_OK(getxattr(p, "user.mark", v, sizeof(v)) == 2 && strcmp(v, "42") == 0,
			     "%s: the xattr kept", f);
			T_OK(r.gzip == (strcmp(f, "pax.gz") == 0), "%s: gzip detected or not", f);
		}
	}
}

int main(void)
{
	test_digest_text();
	test_fd_src();
	test_ustar();
	test_long_names();
	test_errors();
	if (geteuid() != 0) {
		T_OK(1, "unpacking layers # SKIP not root (chown, mknod, trusted.* xattrs need it)");
		return t_done();
	}
	snprintf(top, sizeof(top), "/tmp/berth-unpack.%d", (int)getpid());
	snprintf(layer, sizeof(layer), "%s/l", top);
	test_layer();
	test_whiteouts();
	test_refused();
	test_gnu_tar();
	nftw(top, rm_one, 16, FTW_DEPTH | FTW_PHYS);
	return t_done();
}
