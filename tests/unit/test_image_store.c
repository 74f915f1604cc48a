/* test_image_store.c - manifests, indexes and configurations as berth reads
 * them; the images table (schema 4) and its migration; the store of images
 * on disk: blobs and layers put in place whole, names, lookup, remove and
 * prune collecting exactly what no image uses; imports of archives built
 * here, good and broken. */
#include "runtime/image/image_int.h"
#include "store/store.h"
#include "tests/unit/t.h"

#include <bearssl.h>
#include <dirent.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/wait.h>
#include <signal.h>
#include <unistd.h>

/* a string literal and its length */
#define S(lit) lit, sizeof(lit) - 1

static char top[PATH_MAX - 256];
static struct err e;

/* A digest that names nothing in particular: "sha256:" and c 64 times. */
static const char *fake_digest(char c)
{
	static char d[8][IMAGE_DIGEST_SIZE];
	static int k;
	char *s = d[k++ % 8];

	memcpy(s, "sha256:", 7);
	memset(s + 7, c, 64);
	s[71] = '\0';
	return s;
}

static int rm_one(const char *path, const struct stat *sb, int flag, struct FTW *f)
{
	(void)sb; (void)flag; (void)f;
	chmod(path, 0700);
	return remove(path);
}

static int64_t raw_sql(const char *path, const char *sql)
{
	sqlite3 *db;
	sqlite3_stmt *st;
	int64_t v = -1;

	if (sqlite3_open(path, &db) != SQLITE_OK)
		return -1;
	if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) == SQLITE_OK) {
		while (sqlite3_step(st) == SQLITE_ROW)
			v = sqlite3_column_int64(st, 0);
		sqlite3_finalize(st);
	}
	sqlite3_close(db);
	return v;
}

/* ---- manifests, indexes, configurations ------------------------------------- */

static void test_media(void)
{
	T_EQ(image_media_parse("application/vnd.oci.image.index.v1+json"), MEDIA_OCI_INDEX,
	     "OCI index media type");
	T_EQ(image_media_parse("application/vnd.docker.distribution.manifest.v2+json; charset=utf-8"),
	     MEDIA_DOCKER_MANIFEST, "a Content-Type with parameters");
	T_EQ(image_media_parse("application/vnd.docker.distribution.manifest.v1+prettyjws"),
	     MEDIA_UNKNOWN, "schema 1 manifests are not understood");
	T_EQ(image_media_parse(NULL), MEDIA_UNKNOWN, "no media type");
#if defined(__x86_64__)
	T_STREQ(image_platform(), "linux/amd64", "this machine's platform");
#elif defined(__aarch64__)
	T_STREQ(image_platform(), "linux/arm64/v8", "this machine's platform");
#endif
	T_EQ(image_manifest_media(S("{\"manifests\":[]}"), NULL), MEDIA_OCI_INDEX,
	     "an index without mediaType is known by its shape");
	T_EQ(image_manifest_media(S("{\"schemaVersion\":2}"),
				  "application/vnd.docker.distribution.manifest.list.v2+json"),
	     MEDIA_DOCKER_LIST, "the Content-Type when the document says nothing");
	T_EQ(image_manifest_media(S("{\"mediaType\":\"application/vnd.oci.image.manifest.v1+json\"}"),
				  "application/vnd.oci.image.index.v1+json"),
	     MEDIA_OCI_MANIFEST, "the document's own mediaType wins");
	T_EQ(image_manifest_media(S("not json"), NULL), MEDIA_UNKNOWN, "garbage is unknown");
}

static const char list_json[] =
	"{\"schemaVersion\":2,"
	"\"mediaType\":\"application/vnd.docker.distribution.manifest.list.v2+json\","
	"\"manifests\":["
	"{\"mediaType\":\"application/vnd.docker.distribution.manifest.v2+json\",\"size\":528,"
	" \"digest\":\"sha256:1111111111111111111111111111111111111111111111111111111111111111\","
	" \"platform\":{\"architecture\":\"amd64\",\"os\":\"linux\"}},"
	"{\"mediaType\":\"application/vnd.docker.distribution.manifest.v2+json\",\"size\":528,"
	" \"digest\":\"sha256:2222222222222222222222222222222222222222222222222222222222222222\","
	" \"platform\":{\"architecture\":\"arm\",\"os\":\"linux\",\"variant\":\"v7\"}},"
	"{\"mediaType\":\"application/vnd.docker.distribution.manifest.v2+json\",\"size\":528,"
	" \"digest\":\"sha256:3333333333333333333333333333333333333333333333333333333333333333\","
	" \"platform\":{\"architecture\":\"arm64\",\"os\":\"linux\",\"variant\":\"v8\"}},"
	"{\"mediaType\":\"application/vnd.oci.image.manifest.v1+json\",\"size\":566,"
	" \"digest\":\"sha256:4444444444444444444444444444444444444444444444444444444444444444\","
	" \"platform\":{\"architecture\":\"unknown\",\"os\":\"unknown\"}}"
	"]}";

static void test_index(void)
{
	struct image_index x;
	int i;

	T_OK(image_index_parse(list_json, strlen(list_json), &x, &e) == 0, "manifest list: %s",
	     e.msg);
	T_EQ(x.n, 4, "four entries");
	T_STREQ(x.v[1].platform, "linux/arm/v7", "a platform as os/arch/variant");
	i = image_index_select(&x, "linux/amd64", "busybox", &e);
	T_EQ(i, 0, "linux/amd64 picks the amd64 manifest");
	i = image_index_select(&x, "linux/arm64/v8", "busybox", &e);
	T_EQ(i, 2, "linux/arm64/v8 picks arm64 v8");
	T_STREQ(x.v[2].digest, "sha256:3333333333333333333333333333333333333333333333333333333333333333",
		"and its digest");
	i = image_index_select(&x, "linux/s390x", "docker.io/library/busybox:latest", &e);
	T_EQ(i, -ENOENT, "no manifest for s390x");
	T_STREQ(e.msg, "no linux/s390x image in docker.io/library/busybox:latest: it has "
		"linux/amd64, linux/arm/v7, linux/arm64/v8", "the error lists the platforms there are");
	image_index_free(&x);

	T_OK(image_platform_match("linux/arm64/v8", "linux/arm64"),
	     "arm64 without a variant runs on arm64/v8 (as containerd)");
	T_OK(image_platform_match("linux/arm64/v8", "linux/aarch64/v8"), "aarch64 is arm64");
	T_OK(!image_platform_match("linux/arm64/v8", "linux/arm/v8"), "arm is not arm64");
	T_OK(image_platform_match("linux/amd64", "linux/amd64/v1"), "amd64 v1 is the baseline");
	T_OK(!image_platform_match("linux/amd64", "windows/amd64"), "another os");

	{
		const char only[] = "{\"schemaVersion\":2,\"manifests\":["
			"{\"mediaType\":\"application/vnd.oci.image.manifest.v1+json\","
			"\"digest\":\"sha256:5555555555555555555555555555555555555555555555555555555555555555\","
			"\"size\":1,\"platform\":{\"architecture\":\"arm64\",\"os\":\"linux\"}},"
			"{\"mediaType\":\"application/vnd.oci.image.manifest.v1+json\","
			"\"digest\":\"sha256:6666666666666666666666666666666666666666666666666666666666666666\","
			"\"size\":1,\"platform\":{\"architecture\":\"s390x\",\"os\":\"linux\"},"
			"\"annotations\":{\"org.opencontainers.image.ref.name\":\"v1\"}}]}";

		T_OK(image_index_parse(only, strlen(only), &x, &e) == 0, "OCI index: %s", e.msg);
		T_STREQ(x.v[1].ref_name, "v1", "the ref.name annotation");
		T_EQ(image_index_select(&x, "linux/arm64/v8", "x", &e), 0,
		     "arm64 with no variant is chosen for linux/arm64/v8");
		T_EQ(image_index_select(&x, "linux/amd64", "app:1", &e), -ENOENT, "no amd64");
		T_STREQ(e.msg, "no linux/amd64 image in app:1: it has linux/arm64, linux/s390x",
			"error for the wrong platform");
		image_index_free(&x);
	}
	T_OK(image_index_parse(S("{\"manifests\":[1]}"), &x, &e) < 0, "an entry that is a number");
	T_STREQ(e.msg, "index: manifests[0]: expected an object, found a number", "says where");
	T_OK(image_index_parse(S("{\"manifests\":[{\"digest\":\"sha512:ab\"}]}"), &x, &e) < 0,
	     "another digest algorithm");
	T_STREQ(e.msg, "index: manifests[0]: digest algorithm of 'sha512:ab' is not supported "
		"(only sha256)", "is refused by name");
	T_OK(image_index_parse(S("{\"manifests\":["), &x, &e) < 0 && !strncmp(e.msg, "index: byte ", 12),
	     "truncated JSON: %s", e.msg);
}

static const char manifest_json[] =
	"{\"schemaVersion\":2,"
	"\"mediaType\":\"application/vnd.docker.distribution.manifest.v2+json\","
	"\"config\":{\"mediaType\":\"application/vnd.docker.container.image.v1+json\",\"size\":1469,"
	" \"digest\":\"sha256:aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\"},"
	"\"layers\":["
	"{\"mediaType\":\"application/vnd.docker.image.rootfs.diff.tar.gzip\",\"size\":2591575,"
	" \"digest\":\"sha256:bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb\"},"
	"{\"mediaType\":\"application/vnd.oci.image.layer.v1.tar\",\"size\":10240,"
	" \"digest\":\"sha256:cccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccc\"}"
	"]}";

static void test_manifest(void)
{
	struct image_manifest *m = calloc(1, sizeof(*m));
	struct buf b;

	T_OK(image_manifest_parse(manifest_json, strlen(manifest_json), m, &e) == 0,
	     "Docker v2 manifest: %s", e.msg);
	T_EQ(m->media, MEDIA_DOCKER_MANIFEST, "its media type");
	T_STREQ(m->config_digest, fake_digest('a'), "the configuration's digest");
	T_EQ(m->config_size, 1469, "and size");
	T_EQ(m->n_layers, 2, "two layers");
	T_STREQ(m->layers[0].digest, fake_digest('b'), "bottom layer first");
	T_EQ(m->layers[0].size, 2591575, "its size");
	T_STREQ(m->layers[1].diff_id, "", "no diff_id from a manifest");

	buf_init(&b);
	buf_puts(&b, "{\"schemaVersion\":2,\"mediaType\":\"application/vnd.oci.image.manifest.v1+json\","
		 "\"config\":{\"mediaType\":\"application/vnd.oci.image.config.v1+json\",\"size\":1,"
		 "\"digest\":\"sha256:aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\"},"
		 "\"layers\":[{\"mediaType\":\"application/vnd.oci.image.layer.v1.tar+zstd\",\"size\":1,"
		 "\"digest\":\"sha256:dddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddd\"}]}");
	T_OK(image_manifest_parse(b.data, b.len, m, &e) < 0, "a zstd layer");
	T_STREQ(e.msg, "manifest: layer sha256:dddddddddddddddddddddddddddddddddddddddddddddddddddddddd"
		"dddddddd: layer media type application/vnd.oci.image.layer.v1.tar+zstd is not "
		"supported (only tar and tar+gzip)", "is refused, naming the layer and its type");

	buf_reset(&b);
	buf_puts(&b, "{\"schemaVersion\":2,\"config\":{\"mediaType\":\"application/vnd.cncf.helm.config.v1+json\","
		 "\"size\":1,\"digest\":\"sha256:aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\"},"
		 "\"layers\":[]}");
	T_OK(image_manifest_parse(b.data, b.len, m, &e) < 0, "a Helm chart");
	T_STREQ(e.msg, "manifest: not a container image: its configuration is "
		"application/vnd.cncf.helm.config.v1+json", "is no container image");

	buf_reset(&b);
	buf_puts(&b, "{\"schemaVersion\":2,\"config\":{\"mediaType\":\"application/vnd.oci.image.config.v1+json\","
		 "\"size\":1,\"digest\":\"sha256:aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\"},"
		 "\"layers\":[");
	for (int i = 0; i < IMAGE_LAYERS_MAX + 1; i++)
		buf_printf(&b, "%s{\"mediaType\":\"application/vnd.oci.image.layer.v1.tar\",\"size\":1,"
			   "\"digest\":\"%s\"}", i ? "," : "", fake_digest('e'));
	buf_puts(&b, "]}");
	T_OK(image_manifest_parse(b.data, b.len, m, &e) < 0, "49 layers");
	T_STREQ(e.msg, "manifest: 49 layers, more than berth stacks (48)", "are too many");

	T_OK(image_manifest_parse(S("{\"schemaVersion\":1}"), m, &e) < 0, "schema 1");
	T_STREQ(e.msg, "manifest: schemaVersion: 1 is out of range (2 to 2)", "refused: %s", e.msg);
	T_OK(image_manifest_parse(S("[]"), m, &e) < 0, "an array");
	T_STREQ(e.msg, "manifest: expected an object, found an array", "is no manifest");
	T_OK(image_manifest_parse(S("{\"schemaVersion\":2,"), m, &e) < 0 &&
	     !strncmp(e.msg, "manifest: byte 19: ", 19), "truncated JSON names the byte: %s", e.msg);
	buf_free(&b);
	free(m);
}

static const char config_json[] =
	"{\"architecture\":\"amd64\",\"os\":\"linux\",\"created\":\"2023-05-19T20:19:03.569414542Z\","
	"\"config\":{\"Entrypoint\":[\"/bin/app\",\"--serve\"],\"Cmd\":[\"-v\"],"
	"\"Env\":[\"PATH=/usr/bin:/bin\",\"GREETING=h\\u00e9llo\"],\"WorkingDir\":\"/srv\","
	"\"User\":\"app:app\",\"StopSignal\":\"SIGQUIT\","
	"\"ExposedPorts\":{\"80/tcp\":{},\"53/udp\":{}},\"Labels\":null},"
	"\"rootfs\":{\"type\":\"layers\",\"diff_ids\":["
	"\"sha256:1111111111111111111111111111111111111111111111111111111111111111\","
	"\"sha256:2222222222222222222222222222222222222222222222222222222222222222\"]},"
	"\"history\":[{\"created_by\":\"x\"}]}";

static void test_config(void)
{
	char ids[IMAGE_LAYERS_MAX][IMAGE_DIGEST_SIZE];
	struct image_config c;
	size_t n;

	T_OK(image_config_parse(config_json, strlen(config_json), &c, ids, &n, &e) == 0,
	     "configuration: %s", e.msg);
	T_OK(c.entrypoint && !strcmp(c.entrypoint[0], "/bin/app") &&
	     !strcmp(c.entrypoint[1], "--serve") && !c.entrypoint[2], "Entrypoint");
	T_OK(c.cmd && !strcmp(c.cmd[0], "-v") && !c.cmd[1], "Cmd");
	T_OK(c.env && c.env[1] && !strcmp(c.env[1], "GREETING=h\xc3\xa9llo"), "Env, unescaped");
	T_STREQ(c.workdir, "/srv", "WorkingDir");
	T_STREQ(c.user, "app:app", "User");
	T_STREQ(c.stop_signal, "SIGQUIT", "StopSignal");
	T_OK(c.exposed && !strcmp(c.exposed[0], "80/tcp") && !strcmp(c.exposed[1], "53/udp") &&
	     !c.exposed[2], "ExposedPorts' keys");
	T_STREQ(c.arch, "amd64", "architecture");
	T_STREQ(c.os, "linux", "os");
	T_EQ(c.created, 1684527543, "created, RFC 3339 to unix seconds");
	T_EQ(n, 2, "two diff_ids");
	T_STREQ(ids[1], "sha256:2222222222222222222222222222222222222222222222222222222222222222",
		"bottom first");
	image_config_free(&c);

	{
		const char *t = "{\"created\":\"2024-02-29T02:30:00+05:00\",\"config\":{\"Cmd\":null},"
			"\"rootfs\":{\"diff_ids\":[]}}";

		T_OK(image_config_parse(t, strlen(t), &c, ids, &n, &e) == 0, "minimal: %s", e.msg);
		T_EQ(c.created, 1709155800, "a time with an offset");
		T_OK(!c.cmd && !c.entrypoint && !c.workdir, "nothing set is NULL");
		image_config_free(&c);
	}
	T_OK(image_config_parse(S("{\"created\":\"yesterday\"}"), &c, NULL, NULL, &e) < 0, "bad time");
	T_STREQ(e.msg, "configuration: created: 'yesterday' is not an RFC 3339 time", "says so");
	T_OK(image_config_parse(S("{\"config\":{\"Env\":[1]}}"), &c, NULL, NULL, &e) < 0, "Env of numbers");
	T_STREQ(e.msg, "configuration: config: Env[0]: expected a string, found a number", "says where");
	T_OK(image_config_parse(S("{\"architecture\":\"a-very-long-architecture\"}"), &c, NULL, NULL,
				&e) < 0, "an architecture over 15 bytes");
	T_OK(image_config_parse(S("{}"), &c, ids, &n, &e) < 0, "diff_ids are required");
	T_STREQ(e.msg, "configuration: rootfs.diff_ids: expected an array, found nothing", "%s", e.msg);
	T_OK(image_config_parse(S("{\"rootfs\":{\"diff_ids\":[\"md5:x\"]}}"), &c, ids, &n, &e) < 0,
	     "a diff_id that is no digest");
}

/* ---- the images table ---------------------------------------------------------- */

static int row_text(void *ctx, const struct store_image *i)
{
	buf_printf(ctx, "%s=%.9s;", i->ref, i->digest + 7);
	return 0;
}

static int cni_text(void *ctx, const char *name, const char *spec)
{
	buf_printf(ctx, "%s=%s;", name, spec);
	return 0;
}

static void test_table(void)
{
	struct store *s;
	struct store_image i = { 0 }, got;
	char dir[PATH_MAX], db[PATH_MAX + 16];
	struct buf b;

	buf_init(&b);
	snprintf(dir, sizeof(dir), "%s/db", top);
	snprintf(db, sizeof(db), "%s/state.db", dir);
	T_OK(store_open(&s, dir, &e) == 0, "fresh database: %s", e.msg);
	T_OK(store_cni_put(s, "att", "spec", &e) == 0, "a version-3 row");
	store_close(s);
	/* back to version 3, as the berth before images left it */
	raw_sql(db, "DROP TABLE images");
	/* and the events table of version 4 (version 5 gave it two columns) */
	raw_sql(db, "DROP TABLE events");
	raw_sql(db, "CREATE TABLE events (id INTEGER PRIMARY KEY, time INTEGER NOT NULL,"
		" kind TEXT NOT NULL, object TEXT NOT NULL, message TEXT NOT NULL)");
	raw_sql(db, "PRAGMA user_version=3");
	T_EQ(raw_sql(db, "SELECT count(*) FROM sqlite_master WHERE name = 'images'"), 0,
	     "a version-3 database has no images table");
	T_OK(store_open(&s, dir, &e) == 0, "a version-3 database opens: %s", e.msg);
	T_EQ(raw_sql(db, "PRAGMA user_version"), STORE_SCHEMA_VERSION, "and is migrated forward");
	store_cni_list(s, cni_text, &b, &e);
	T_STREQ(b.data, "att=spec;", "the version-3 rows survive");
	buf_reset(&b);

	snprintf(i.ref, sizeof(i.ref), "docker.io/library/busybox:latest");
	snprintf(i.digest, sizeof(i.digest), "%s", fake_digest('1'));
	snprintf(i.config_digest, sizeof(i.config_digest), "%s", fake_digest('2'));
	i.layers = "sha256:aa sha256:bb 10\nsha256:cc sha256:dd 20";
	i.size = 1000;
	i.created = 5;
	i.stored = 6;
	T_OK(store_image_put(s, &i, &e) == 0, "put: %s", e.msg);
	T_OK(store_image_get(s, i.ref, &got, &e) == 0, "get: %s", e.msg);
	T_STREQ(got.layers, i.layers, "layers come back");
	T_EQ(got.size + got.created + got.stored, 1011, "size, created, stored");
	T_STREQ(got.config_digest, fake_digest('2'), "config digest");
	free(got.layers);
	T_EQ(store_image_get(s, "nope", &got, &e), -ENOENT, "an unknown name");

	/* the name moves to a new manifest: the old image stays, unnamed */
	snprintf(i.digest, sizeof(i.digest), "%s", fake_digest('3'));
	T_OK(store_image_put(s, &i, &e) == 0, "put a new manifest under the name");
	store_image_list(s, row_text, &b, &e);
	T_STREQ(b.data, "docker.io/library/busybox:latest=333333333;"
		"sha256:1111111111111111111111111111111111111111111111111111111111111111=111111111;",
		"the replaced image is kept under its digest");
	/* a second name for the same manifest, then the first moves on: no
	 * unnamed copy, since a name still holds it */
	snprintf(i.ref, sizeof(i.ref), "docker.io/library/busybox:1");
	T_OK(store_image_put(s, &i, &e) == 0, "a second name");
	snprintf(i.ref, sizeof(i.ref), "docker.io/library/busybox:latest");
	snprintf(i.digest, sizeof(i.digest), "%s", fake_digest('4'));
	T_OK(store_image_put(s, &i, &e) == 0, "the first name moves on");
	buf_reset(&b);
	store_image_list(s, row_text, &b, &e);
	T_STREQ(b.data, "docker.io/library/busybox:1=333333333;"
		"docker.io/library/busybox:latest=444444444;"
		"sha256:1111111111111111111111111111111111111111111111111111111111111111=111111111;",
		"a manifest another name holds is not duplicated");
	/* naming the unnamed manifest again */
	snprintf(i.ref, sizeof(i.ref), "docker.io/library/busybox:old");
	snprintf(i.digest, sizeof(i.digest), "%s", fake_digest('1'));
	T_OK(store_image_put(s, &i, &e) == 0, "name an unnamed image");
	buf_reset(&b);
	store_image_list(s, row_text, &b, &e);
	T_STREQ(b.data, "docker.io/library/busybox:1=333333333;"
		"docker.io/library/busybox:latest=444444444;docker.io/library/busybox:old=111111111;",
		"the unnamed row goes");
	T_OK(store_image_delete(s, "docker.io/library/busybox:1", &e) == 0, "delete");
	T_EQ(store_image_delete(s, "docker.io/library/busybox:1", &e), -ENOENT, "delete again");
	T_STREQ(e.msg, "no image docker.io/library/busybox:1", "%s", e.msg);
	store_close(s);
	T_OK(store_open(&s, dir, &e) == 0, "reopen");
	buf_reset(&b);
	store_image_list(s, row_text, &b, &e);
	T_STREQ(b.data, "docker.io/library/busybox:latest=444444444;docker.io/library/busybox:old=111111111;",
		"images survive reopening");
	store_close(s);
	buf_free(&b);
}

/* ---- the store on disk -------------------------------------------------------- */

static char state[PATH_MAX];
static struct store *st;

static bool exists(const char *fmt, const char *arg)
{
	char p[PATH_MAX * 2];
	struct stat sb;

	snprintf(p, sizeof(p), fmt, state, arg);
	return lstat(p, &sb) == 0;
}

/* Entries of images/SUB by name, their first 6 bytes; "" when empty. */
static const char *entries(const char *sub)
{
	static char out[4096];
	char p[PATH_MAX + 64];
	struct dirent **list;
	size_t n = 0;
	int k;

	snprintf(p, sizeof(p), "%s/images/%s", state, sub);
	out[0] = '\0';
	if ((k = scandir(p, &list, NULL, alphasort)) < 0)
		return "(none)";
	for (int i = 0; i < k; i++) {
		if (list[i]->d_name[0] != '.')
			n += (size_t)snprintf(out + n, sizeof(out) - n, "%s%.6s", n ? " " : "",
					      list[i]->d_name);
		free(list[i]);
	}
	free(list);
	return out;
}

/* A layer put in place as a pull would: files, a whiteout (0:0 character
 * device), a read-only directory. Returns its diff_id (made up from c). */
static const char *make_layer(char c)
{
	const char *diff_id = fake_digest(c);
	char dir[PATH_MAX], p[PATH_MAX + 64];
	FILE *f;

	if (image_tmp_dir(state, "layer", dir, &e) < 0)
		return NULL;
	snprintf(p, sizeof(p), "%s/usr", dir);
	mkdir(p, 0755);
	snprintf(p, sizeof(p), "%s/usr/file-%c", dir, c);
	if ((f = fopen(p, "w"))) {
		for (int i = 0; i < 1000; i++)
			fputs("0123456789", f);
		fclose(f);
	}
	snprintf(p, sizeof(p), "%s/gone", dir);
	mknod(p, S_IFCHR | 0, makedev(0, 0));
	snprintf(p, sizeof(p), "%s/usr", dir);
	chmod(p, 0555);
	if (image_layer_commit(state, dir, diff_id, &e) < 0)
		return NULL;
	return diff_id;
}

/* An image of two layers whose config blob is real; recorded under ref. */
static void make_image(const char *ref, char l1, char l2, char tag, struct image_info *out)
{
	char config[512], manifest[256];
	struct image_info *i = out;
	const char *d1, *d2;

	memset(i, 0, sizeof(*i));
	d1 = fake_digest(l1);
	d2 = fake_digest(l2);
	if (!image_layer_present(state, d1))
		make_layer(l1);
	if (!image_layer_present(state, d2))
		make_layer(l2);
	snprintf(config, sizeof(config), "{\"architecture\":\"amd64\",\"os\":\"linux\","
		 "\"config\":{\"Cmd\":[\"sh\",\"-%c\"]},\"rootfs\":{\"type\":\"layers\","
		 "\"diff_ids\":[\"%s\",\"%s\"]}}", tag, d1, d2);
	snprintf(manifest, sizeof(manifest), "{\"manifest-of\":\"%s %c\"}", ref, tag);
	image_digest_of(config, strlen(config), i->config_digest);
	image_digest_of(manifest, strlen(manifest), i->digest);
	image_blob_write(state, i->config_digest, config, strlen(config), &e);
	image_blob_write(state, i->digest, manifest, strlen(manifest), &e);
	snprintf(i->ref, sizeof(i->ref), "%s", ref);
	i->layers = calloc(2, sizeof(*i->layers));
	i->n_layers = 2;
	snprintf(i->layers[0].digest, IMAGE_DIGEST_SIZE, "%s", d1);
	snprintf(i->layers[0].diff_id, IMAGE_DIGEST_SIZE, "%s", d1);
	snprintf(i->layers[1].digest, IMAGE_DIGEST_SIZE, "%s", d2);
	snprintf(i->layers[1].diff_id, IMAGE_DIGEST_SIZE, "%s", d2);
	i->layers[0].size = 100;
	i->size = 20000;
}

static bool in_use_b(void *ctx, const struct image_info *i)
{
	return !strcmp(i->digest, ctx);
}

static int list_refs(void *ctx, const struct image_info *i)
{
	buf_printf(ctx, "%s[%s];", i->ref, i->config.cmd && i->config.cmd[1] ? i->config.cmd[1] : "?");
	return 0;
}

static void test_disk(void)
{
	struct image_info a, b, c, got;
	char p[PATH_MAX + 64], old_b[IMAGE_DIGEST_SIZE];
	struct buf out;
	int64_t freed;
	int fd;

	snprintf(state, sizeof(state), "%s/state", top);
	T_OK(image_dir_init(state, &e) == 0, "images/: %s", e.msg);
	T_STREQ(entries(""), "blobs layers tmp", "blobs, layers, tmp");
	/* leftovers of a crash in tmp/, one with a read-only directory */
	snprintf(p, sizeof(p), "%s/images/tmp/layer-x/ro", state);
	mkdir_p("test", p, 0755, &e);
	snprintf(p, sizeof(p), "%s/images/tmp/layer-x/ro/f", state);
	fd = open(p, O_CREAT | O_WRONLY, 0400);
	close(fd);
	snprintf(p, sizeof(p), "%s/images/tmp/layer-x/ro", state);
	chmod(p, 0500);
	/* a download an older berth kept for a resume: pulls stream now */
	snprintf(p, sizeof(p), "%s/images/tmp/%s.part", state, fake_digest('f') + 7);
	fd = open(p, O_CREAT | O_WRONLY, 0600);
	T_OK(fd >= 0 && write(fd, "0123456789", 10) == 10, "a download in tmp/HEX.part");
	close(fd);
	T_OK(image_dir_init(state, &e) == 0, "again: %s", e.msg);
	T_STREQ(entries("tmp"), "", "tmp/ is emptied at start-up, read-only directories and "
		"downloads too");

	T_OK(store_open(&st, state, &e) == 0, "store: %s", e.msg);

	/* blobs: checked, whole */
	T_EQ(image_blob_write(state, fake_digest('9'), "x", 1, &e), -EBADMSG,
	     "a blob whose content is not its digest");
	T_OK(strstr(e.msg, "its content is sha256:2d711642b726b04401627ca9fbac32f5c8530fb1903cc4db02258717921a4881") != NULL,
	     "names both digests: %s", e.msg);
	T_STREQ(entries("blobs/sha256"), "", "and is not stored");
	T_STREQ(entries("tmp"), "", "nor left in tmp/");

	/* a and b share their bottom layer 'a'; c is on its own */
	make_image("docker.io/library/a:1", 'a', 'b', 'a', &a);
	make_image("docker.io/library/b:1", 'a', 'c', 'b', &b);
	make_image("docker.io/library/c:1", 'd', 'e', 'c', &c);
	T_STREQ(entries("layers"), "aaaaaa bbbbbb cccccc dddddd eeeeee", "five layers");
	T_STREQ(entries("tmp"), "", "nothing left in tmp/");
	snprintf(p, sizeof(p), "%s/images/layers/%s/gone", state, fake_digest('a') + 7);
	{
		struct stat sb;

		T_OK(lstat(p, &sb) == 0 && S_ISCHR(sb.st_mode) && sb.st_rdev == makedev(0, 0),
		     "a whiteout survives the move into layers/");
	}
	T_EQ(image_layer_commit(state, "/nonexistent", fake_digest('a'), &e), 0,
	     "a layer that is there already is kept (0)");
	T_OK(image_record(st, &a, &e) == 0, "record a: %s", e.msg);
	T_OK(image_record(st, &b, &e) == 0, "record b");
	T_OK(image_record(st, &c, &e) == 0, "record c");

	T_OK(image_lookup(st, state, "a:1", &got, &e) == 0, "lookup by a short name: %s", e.msg);
	T_STREQ(got.ref, "docker.io/library/a:1", "the canonical name");
	T_EQ(got.n_layers, 2, "two layers");
	T_STREQ(got.layers[1].diff_id, fake_digest('b'), "in order");
	T_EQ(got.layers[0].size, 100, "sizes");
	T_EQ(got.size, 20000, "the unpacked size");
	T_OK(got.config.cmd && !strcmp(got.config.cmd[1], "-a"), "the configuration from its blob");
	T_OK(got.stored > 0, "when it arrived");
	image_info_free(&got);
	T_OK(image_lookup(st, state, b.digest, &got, &e) == 0, "lookup by manifest digest: %s", e.msg);
	T_STREQ(got.ref, "docker.io/library/b:1", "finds the image of that manifest");
	image_info_free(&got);
	T_EQ(image_lookup(st, state, "nope:2", &got, &e), -ENOENT, "an image that is not here");
	T_STREQ(e.msg, "image nope:2 is not here: pull it", "says pull it");

	out = (struct buf){ 0 };
	T_OK(image_list(st, state, list_refs, &out, &e) == 0, "list");
	T_STREQ(out.data, "docker.io/library/a:1[-a];docker.io/library/b:1[-b];docker.io/library/c:1[-c];",
		"every image, with its configuration");

	/* rm a: its own layer b and its blobs go; the shared layer a stays */
	T_OK(image_remove(st, state, "a:1", &e) == 0, "rm a: %s", e.msg);
	T_STREQ(entries("layers"), "aaaaaa cccccc dddddd eeeeee", "only a's own layer went");
	T_OK(!exists("%s/images/blobs/sha256/%s", a.config_digest + 7) &&
	     !exists("%s/images/blobs/sha256/%s", a.digest + 7), "with a's manifest and configuration");
	T_OK(exists("%s/images/blobs/sha256/%s", b.config_digest + 7), "b's blobs stay");
	T_STREQ(entries("tmp"), "", "nothing left in tmp/");
	T_EQ(image_remove(st, state, "a:1", &e), -ENOENT, "rm again");

	/* b:1 moves to a new manifest (layers a and d); the old b stays unnamed */
	snprintf(old_b, sizeof(old_b), "%s", b.digest);
	image_info_free(&b);
	make_image("docker.io/library/b:1", 'a', 'd', 'B', &b);
	T_OK(image_record(st, &b, &e) == 0, "re-record b:1");
	buf_reset(&out);
	image_list(st, state, list_refs, &out, &e);
	T_OK(strstr(out.data, old_b) != NULL, "the replaced b is listed under its digest: %s", out.data);
	/* prune: the unnamed image a container still uses stays */
	freed = image_prune(st, state, false, in_use_b, old_b, &e);
	T_EQ(freed, 0, "prune frees nothing while a container uses the old b");
	T_STREQ(entries("layers"), "aaaaaa cccccc dddddd eeeeee", "layer c stays");
	freed = image_prune(st, state, false, NULL, NULL, &e);
	T_OK(freed >= 10000, "prune frees the old b's layer c (%lld bytes)", (long long)freed);
	T_STREQ(entries("layers"), "aaaaaa dddddd eeeeee", "layer c went");
	buf_reset(&out);
	image_list(st, state, list_refs, &out, &e);
	T_STREQ(out.data, "docker.io/library/b:1[-B];docker.io/library/c:1[-c];",
		"named images stay");

	/* a pull running (the work lock held): no collection */
	fd = image_work_lock(state, &e);
	T_OK(fd >= 0, "work lock: %s", e.msg);
	T_OK(image_remove(st, state, "c:1", &e) == 0, "rm c during a pull");
	T_STREQ(entries("layers"), "aaaaaa dddddd eeeeee", "its layers wait");
	close(fd);
	freed = image_prune(st, state, false, NULL, NULL, &e);
	T_STREQ(entries("layers"), "aaaaaa dddddd", "the next prune collects layer e");
	freed = image_prune(st, state, true, NULL, NULL, &e);
	T_STREQ(entries("layers"), "", "prune --all: every layer");
	T_STREQ(entries("blobs/sha256"), "", "every blob");
	T_STREQ(entries("tmp"), "", "nothing left in tmp/");
	buf_free(&out);
	image_info_free(&a);
	image_info_free(&b);
	image_info_free(&c);
}

/* ---- imports ------------------------------------------------------------------- */

#if defined(__aarch64__)
#define ARCH "arm64"
#define OTHER "amd64"
#define ROOTFS_ARCH "aarch64"
#else
#define ARCH "amd64"
#define OTHER "arm64"
#define ROOTFS_ARCH "x86_64"
#endif

static char fx[PATH_MAX - 200];     /* fixtures */
static const char *repo;            /* the source tree */

static void skip(const char *why)
{
	printf("ok %d - imports # SKIP %s\n", ++t_n, why);
}

/* Run mkimage.py with args, its summary into sum (NULL: dropped). */
static int mkimage(const char *args, struct buf *sum)
{
	char cmd[PATH_MAX * 3], chunk[4096];
	size_t n;
	FILE *f;

	snprintf(cmd, sizeof(cmd), "python3 %s/tests/helpers/mkimage.py --rootfs %s/rootfs "
		 "--arch " ARCH " %s", repo, fx, args);
	if (!(f = popen(cmd, "r")))
		return -1;
	if (sum)
		buf_reset(sum);
	while ((n = fread(chunk, 1, sizeof(chunk), f)) > 0)
		if (sum)
			buf_append(sum, chunk, n);
	return pclose(f) == 0 ? 0 : -1;
}

/* A string of the summary: manifests[0].KEY, or manifests[0].KEY[idx]. */
static const char *summary(struct buf *sum, const char *key, int idx)
{
	static char out[256];
	struct json_doc d = { 0 };
	const struct json_tok *m, *t;

	out[0] = '\0';
	if (json_parse(&d, sum->data, sum->len, &e) == 0) {
		m = json_first(&d, json_get(&d, json_root(&d), "manifests"));
		t = json_get(&d, m, key);
		if (idx >= 0)
			for (t = json_first(&d, t); t && idx--; t = json_next(&d, json_get(&d, m, key), t))
				;
		if (json_string(&d, t, out, sizeof(out), &e) < 0)
			out[0] = '\0';
	}
	json_free(&d);
	return out;
}

static struct image_progress import_p;

static int do_import(const char *file, const char *name, struct image_result *r)
{
	char path[PATH_MAX];

	memset(&import_p, 0, sizeof(import_p));
	snprintf(path, sizeof(path), "%s/%s", fx, file);
	return image_import(state, path, name, NULL, &import_p, r, &e);
}

/* A file under the layer diff_id: its type, "" when absent. */
static const char *layer_has(const char *diff_id, const char *file)
{
	char p[PATH_MAX * 2];
	struct stat sb;

	snprintf(p, sizeof(p), "%s/images/layers/%s/%s", state, diff_id + 7, file);
	if (lstat(p, &sb) < 0)
		return "";
	return S_ISCHR(sb.st_mode) ? "char" : S_ISLNK(sb.st_mode) ? "symlink" :
	       S_ISDIR(sb.st_mode) ? "dir" : "file";
}

static void flip_byte(const char *path, off_t off)
{
	int fd = open(path, O_RDWR);
	char c;

	if (fd >= 0 && pread(fd, &c, 1, off) == 1) {
		c ^= 0x5a;
		(void)!pwrite(fd, &c, 1, off);
	}
	if (fd >= 0)
		close(fd);
}

static void test_import(void)
{
	struct image_result r;
	struct image_info got;
	struct buf sum, sum2;
	char cmd[PATH_MAX * 2], l1[IMAGE_DIGEST_SIZE], l2[IMAGE_DIGEST_SIZE], l3[IMAGE_DIGEST_SIZE];
	char layers_before[4096], blobs_before[4096], p[PATH_MAX];
	int rc;

	repo = getenv("BERTH_TOP") ? getenv("BERTH_TOP") : ".";
	snprintf(fx, sizeof(fx), "%s/fx", top);
	mkdir(fx, 0700);
	snprintf(cmd, sizeof(cmd), "sh %s/mk/busybox-rootfs.sh " ROOTFS_ARCH " %s/rootfs >/dev/null 2>&1",
		 repo, fx);
	if (system("command -v python3 >/dev/null") != 0)
		return skip("python3 is not installed");
	if (system(cmd) != 0)
		return skip("no busybox rootfs (mk/busybox-rootfs.sh failed)");
	buf_init(&sum);
	buf_init(&sum2);

	/* a fresh store */
	snprintf(state, sizeof(state), "%s/imp", top);
	store_close(st);
	T_OK(image_dir_init(state, &e) == 0 && store_open(&st, state, &e) == 0, "store: %s", e.msg);

	/* docker-archive, uncompressed layers */
	snprintf(cmd, sizeof(cmd), "--format docker-archive --name test/app:1 --out %s/d.tar", fx);
	T_OK(mkimage(cmd, &sum) == 0, "mkimage docker-archive");
	snprintf(l1, sizeof(l1), "%s", summary(&sum, "diff_ids", 0));
	snprintf(l2, sizeof(l2), "%s", summary(&sum, "diff_ids", 1));
	snprintf(l3, sizeof(l3), "%s", summary(&sum, "diff_ids", 2));
	rc = do_import("d.tar", NULL, &r);
	T_OK(rc == 0, "import a docker-archive: %s", e.msg);
	T_EQ(r.n_images, 1, "one image");
	T_STREQ(r.n_images ? r.images[0].ref : "", "docker.io/test/app:1", "named by RepoTags");
	T_EQ(r.layers_new, 3, "three new layers");
	T_OK(r.bytes_written > 1000000, "the busybox layer's bytes written (%llu)",
	     (unsigned long long)r.bytes_written);
	T_OK(r.n_images && r.images[0].n_layers == 3 &&
	     !strcmp(r.images[0].layers[2].diff_id, l3), "the layers' diff_ids");
	T_OK(r.n_images && !strcmp(r.images[0].layers[0].digest, l1),
	     "an uncompressed layer's digest is its diff_id");
	T_STREQ(r.n_images ? r.images[0].config_digest : "", summary(&sum, "config", -1),
		"the configuration's digest");
	T_OK(r.n_images && r.images[0].size > 1000000, "the unpacked size");
	T_OK(atomic_load(&import_p.total) > 2000000 &&
	     atomic_load(&import_p.total) == atomic_load(&import_p.done) &&
	     atomic_load(&import_p.step) == IMAGE_STEP_DONE,
	     "progress: every layer's bytes read (%llu)",
	     (unsigned long long)atomic_load(&import_p.total));
	for (size_t i = 0; i < r.n_images; i++)
		image_record(st, &r.images[i], &e);
	image_result_free(&r);
	T_OK(image_lookup(st, state, "test/app:1", &got, &e) == 0, "lookup the import: %s", e.msg);
	T_OK(got.config.entrypoint && !strcmp(got.config.entrypoint[1], "/srv/start.sh"),
	     "its Entrypoint, from the configuration blob");
	T_STREQ(got.config.user, "app", "its User");
	T_STREQ(got.config.stop_signal, "SIGUSR1", "its StopSignal");
	T_OK(got.config.exposed && !strcmp(got.config.exposed[0], "8080/tcp"), "its ExposedPorts");
	T_OK(exists("%s/images/blobs/sha256/%s", got.digest + 7), "the manifest berth wrote is a blob");
	{
		struct buf m;
		struct image_manifest *mm = calloc(1, sizeof(*mm));

		buf_init(&m);
		T_OK(image_blob_read(state, got.digest, &m, &e) == 0 &&
		     image_manifest_parse(m.data, m.len, mm, &e) == 0 && mm->n_layers == 3 &&
		     !strcmp(mm->config_digest, got.config_digest),
		     "and an OCI manifest of the image: %s", e.msg);
		buf_free(&m);
		free(mm);
	}
	image_info_free(&got);
	T_STREQ(layer_has(l2, "etc/deleteme"), "char", "a whiteout is a character device");
	T_STREQ(layer_has(l2, "srv/link"), "symlink", "a symlink");
	T_STREQ(layer_has(l1, "bin/busybox"), "file", "busybox in the bottom layer");
	T_STREQ(entries("tmp"), "", "nothing left in tmp/");

	/* docker save's older layout: manifest.json first, layers as DIR/layer.tar,
	 * one of them a symlink to another directory's; two RepoTags */
	snprintf(cmd, sizeof(cmd), "cd %s && python3 -c '\n"
		 "import tarfile, json, io\n"
		 "src = tarfile.open(\"d.tar\")\n"
		 "m = json.load(src.extractfile(\"manifest.json\"))[0]\n"
		 "out = tarfile.open(\"old.tar\", \"w\", format=tarfile.USTAR_FORMAT)\n"
		 "def add(name, data):\n"
		 "    ti = tarfile.TarInfo(name); ti.size = len(data); out.addfile(ti, io.BytesIO(data))\n"
		 "names = [\"l%%d/layer.tar\" %% i for i in range(3)]\n"
		 "man = [{\"Config\": m[\"Config\"], \"RepoTags\": [\"old/app:1\", \"old/app:2\"],"
		 " \"Layers\": names}]\n"
		 "add(\"manifest.json\", json.dumps(man).encode())\n"
		 "add(m[\"Config\"], src.extractfile(m[\"Config\"]).read())\n"
		 "for i, l in enumerate(m[\"Layers\"]):\n"
		 "    if i == 1:\n"
		 "        add(\"real/layer.tar\", src.extractfile(l).read())\n"
		 "        ti = tarfile.TarInfo(names[i]); ti.type = tarfile.SYMTYPE;"
		 " ti.linkname = \"../real/layer.tar\"; out.addfile(ti)\n"
		 "    else:\n"
		 "        add(names[i], src.extractfile(l).read())\n"
		 "out.close()\n'", fx);
	T_OK(system(cmd) == 0, "an archive as older docker saves write them");
	T_OK(do_import("old.tar", NULL, &r) == 0, "import it: %s", e.msg);
	T_EQ(r.n_images, 2, "one image per RepoTags entry");
	T_OK(r.n_images == 2 && !strcmp(r.images[0].ref, "docker.io/old/app:1") &&
	     !strcmp(r.images[1].ref, "docker.io/old/app:2") &&
	     !strcmp(r.images[0].digest, r.images[1].digest), "both names, one manifest");
	T_EQ(r.layers_shared, 3, "the layer behind a symlink is found (and is there already)");
	image_result_free(&r);

	/* a sibling sharing the bottom layer, gzip'ed */
	snprintf(cmd, sizeof(cmd), "--format docker-archive --gzip --kind sibling --name test/sib "
		 "--out %s/sib.tar", fx);
	T_OK(mkimage(cmd, &sum2) == 0, "mkimage sibling");
	T_OK(do_import("sib.tar", NULL, &r) == 0, "import the sibling: %s", e.msg);
	T_EQ(r.layers_shared, 1, "the bottom layer is shared");
	T_EQ(r.layers_new, 1, "its own layer is new");
	T_STREQ(r.n_images ? r.images[0].ref : "", "docker.io/test/sib:latest", "named");
	T_OK(r.n_images && strcmp(r.images[0].layers[1].digest, r.images[0].layers[1].diff_id),
	     "a gzip layer's digest is its compressed bytes'");
	for (size_t i = 0; i < r.n_images; i++)
		image_record(st, &r.images[i], &e);
	image_result_free(&r);

	/* the same image as oci-archive: every layer is there already */
	snprintf(cmd, sizeof(cmd), "--format oci-archive --name test/oci:1 --out %s/o.tar", fx);
	T_OK(mkimage(cmd, &sum2) == 0, "mkimage oci-archive");
	T_OK(do_import("o.tar", NULL, &r) == 0, "import an oci-archive: %s", e.msg);
	T_EQ(r.layers_shared, 3, "its three layers are shared with the docker-archive's");
	T_STREQ(r.n_images ? r.images[0].ref : "", "docker.io/test/oci:1",
		"named by org.opencontainers.image.ref.name");
	T_STREQ(r.n_images ? r.images[0].digest : "", summary(&sum2, "digest", -1),
		"the manifest's digest");
	for (size_t i = 0; i < r.n_images; i++)
		image_record(st, &r.images[i], &e);
	image_result_free(&r);
	T_OK(do_import("o.tar", "other/name:7", &r) == 0, "import with a name: %s", e.msg);
	T_STREQ(r.n_images ? r.images[0].ref : "", "docker.io/other/name:7", "the name given wins");
	image_result_free(&r);

	/* an OCI layout directory, multi-arch, unnamed */
	snprintf(cmd, sizeof(cmd), "--format oci-layout --rootfs " OTHER "=%s/rootfs --multiarch "
		 "--no-gzip --kind base --out %s/layout", fx, fx);
	T_OK(mkimage(cmd, &sum2) == 0, "mkimage oci-layout, multi-arch");
	T_OK(do_import("layout", NULL, &r) == 0, "import an OCI layout: %s", e.msg);
	T_EQ(r.n_images, 1, "only this platform's image of the index");
	T_OK(r.n_images && !strncmp(r.images[0].ref, "sha256:", 7) &&
	     !strcmp(r.images[0].ref, r.images[0].digest), "without a name it is unnamed (%s)",
	     r.n_images ? r.images[0].ref : "");
	T_OK(r.n_images && !strcmp(r.images[0].layers[0].diff_id, l1), "the base layer again");
	image_result_free(&r);

	snprintf(cmd, sizeof(cmd), "--format oci-archive --arch " OTHER " --multiarch --out %s/other.tar", fx);
	T_OK(mkimage(cmd, NULL) == 0, "mkimage for another platform");
	snprintf(layers_before, sizeof(layers_before), "%s", entries("layers"));
	snprintf(blobs_before, sizeof(blobs_before), "%s", entries("blobs/sha256"));
	T_EQ(do_import("other.tar", NULL, &r), -ENOENT, "an archive for another platform");
	snprintf(p, sizeof(p), "no linux/" ARCH "%s image in %s/other.tar: it has linux/" OTHER "%s",
		 !strcmp(ARCH, "arm64") ? "/v8" : "", fx, !strcmp(OTHER, "arm64") ? "/v8" : "");
	T_STREQ(e.msg, p, "says which platforms it has");

	/* broken archives leave layers/ and blobs/ as they were */
	snprintf(cmd, sizeof(cmd), "--format docker-archive --kind full --pad 300000 --name t/pad "
		 "--out %s/pad.tar", fx);
	T_OK(mkimage(cmd, NULL) == 0, "mkimage with a padded layer 3");
	snprintf(p, sizeof(p), "%s/pad.tar", fx);
	{
		struct stat sb;

		stat(p, &sb);
		T_OK(truncate(p, sb.st_size - 150000) == 0, "truncate the archive in its last layer");
	}
	rc = do_import("pad.tar", NULL, &r);
	T_OK(rc < 0, "a truncated archive fails: %s", e.msg);
	T_STREQ(entries("layers"), layers_before, "no layer added");
	T_STREQ(entries("blobs/sha256"), blobs_before, "no blob added");
	T_STREQ(entries("tmp"), "", "nothing left in tmp/");

	snprintf(cmd, sizeof(cmd), "--format oci-layout --no-gzip --kind full --pad 100000 "
		 "--name t/bad:1 --out %s/bad", fx);
	T_OK(mkimage(cmd, &sum2) == 0, "mkimage oci-layout");
	snprintf(p, sizeof(p), "%s/bad/blobs/sha256/%s", fx, summary(&sum2, "layers", 2) + 7);
	flip_byte(p, 5000);
	rc = do_import("bad", NULL, &r);
	T_EQ(rc, -EBADMSG, "a layer whose bytes are not its digest fails");
	T_OK(strstr(e.msg, summary(&sum2, "layers", 2)) && strstr(e.msg, "the blob's digest is"),
	     "naming the layer and both digests: %s", e.msg);
	T_STREQ(entries("layers"), layers_before, "no layer added");
	T_STREQ(entries("blobs/sha256"), blobs_before, "no blob added");
	T_STREQ(entries("tmp"), "", "nothing left in tmp/");
	T_EQ(do_import("nothing-here", NULL, &r), -ENOENT, "a path that is not there");

	/* collection: app and oci go, the sibling keeps the bottom layer */
	T_OK(image_remove(st, state, "test/app:1", &e) == 0, "rm test/app:1: %s", e.msg);
	T_OK(exists("%s/images/layers/%s", l3 + 7), "layer 3 stays: test/oci:1 uses it");
	T_OK(image_remove(st, state, "test/oci:1", &e) == 0, "rm test/oci:1");
	T_OK(!exists("%s/images/layers/%s", l3 + 7) && !exists("%s/images/layers/%s", l2 + 7),
	     "layers 2 and 3 went with the last image using them");
	T_OK(exists("%s/images/layers/%s", l1 + 7), "the sibling's bottom layer stays");
	T_OK(image_lookup(st, state, "test/sib", &got, &e) == 0, "the sibling still resolves");
	image_info_free(&got);
	buf_free(&sum);
	buf_free(&sum2);
}

/* ---- pulls, from tests/helpers/fake_registry.py ------------------------------------ */

static pid_t reg_pid;

/* A fake registry on port, serving fx/reg (extra: its fault options). */
static int reg_start(int port, const char *extra)
{
	char cmd[PATH_MAX * 12], ready[PATH_MAX], pidf[PATH_MAX];
	FILE *f;

	snprintf(ready, sizeof(ready), "%s/ready", fx);
	snprintf(pidf, sizeof(pidf), "%s/reg.pid", fx);
	unlink(ready);
	snprintf(cmd, sizeof(cmd), "python3 %s/tests/helpers/fake_registry.py --port %d "
		 "--cert %s/tls/srv.crt --key %s/tls/srv.key --root %s/reg --ready %s --log %s/reg.log "
		 "%s 2>>%s/reg.err & echo $! >%s", repo, port, fx, fx, fx, ready, fx, extra, fx, pidf);
	if (system(cmd) != 0 || !(f = fopen(pidf, "r")))
		return -1;
	if (fscanf(f, "%d", &reg_pid) != 1)
		reg_pid = 0;
	fclose(f);
	for (int i = 0; i < 200 && access(ready, F_OK) < 0; i++)
		usleep(50000);
	return access(ready, F_OK);
}

static void reg_stop(void)
{
	if (reg_pid > 0) {
		kill(reg_pid, SIGTERM);
		waitpid(reg_pid, NULL, 0);
	}
	reg_pid = 0;
}

static void test_pull(void)
{
	struct registry_opts o = { 0 };
	struct image_progress p = { 0 };
	struct image_result r;
	struct image_info got;
	struct buf sum;
	char cmd[PATH_MAX * 12], ref[128], ca[PATH_MAX], layers_before[4096], blobs_before[4096];
	char l3[IMAGE_DIGEST_SIZE];
	int port = 20000 + getpid() % 20000, rc;

	if (system("command -v openssl >/dev/null && command -v python3 >/dev/null") != 0) {
		printf("ok %d - pulls # SKIP openssl or python3 is not installed\n", ++t_n);
		return;
	}
	buf_init(&sum);
	/* a CA, a certificate for 127.0.0.1; the multi-arch image as a registry holds it */
	snprintf(cmd, sizeof(cmd), "set -e; cd %s; mkdir -p tls reg/manifests/app; cd tls;"
		 "printf 'subjectAltName=IP:127.0.0.1\\nbasicConstraints=critical,CA:FALSE\\n' >ext.cnf;"
		 "openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout ca.key "
		 "-out ca.crt -subj /CN=test-ca -days 2 -addext basicConstraints=critical,CA:TRUE "
		 "-addext keyUsage=critical,keyCertSign 2>/dev/null;"
		 "openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout srv.key "
		 "-out srv.csr -subj /CN=localhost 2>/dev/null;"
		 "openssl x509 -req -in srv.csr -CA ca.crt -CAkey ca.key -CAcreateserial -out srv.crt "
		 "-days 2 -extfile ext.cnf 2>/dev/null", fx);
	T_OK(system(cmd) == 0, "a CA and a server certificate");
	snprintf(cmd, sizeof(cmd), "--format oci-layout --rootfs " OTHER "=%s/rootfs --multiarch "
		 "--kind full --pad 400000 --out %s/reg", fx, fx);
	T_OK(mkimage(cmd, &sum) == 0, "mkimage: a multi-arch layout");
	{
		struct json_doc d = { 0 };
		char idx[IMAGE_DIGEST_SIZE] = "";

		if (json_parse(&d, sum.data, sum.len, &e) == 0)
			json_string(&d, json_get(&d, json_root(&d), "index"), idx, sizeof(idx), &e);
		json_free(&d);
		snprintf(cmd, sizeof(cmd), "cp %s/reg/blobs/sha256/%s %s/reg/manifests/app/1", fx,
			 idx + 7, fx);
		T_OK(idx[0] && system(cmd) == 0, "the index under the tag app:1");
	}
	snprintf(l3, sizeof(l3), "%s", summary(&sum, "layers", 2));
	snprintf(ca, sizeof(ca), "%s/tls/ca.crt", fx);
	o.ca_file = ca;
	snprintf(ref, sizeof(ref), "127.0.0.1:%d/app:1", port);

	/* the store of the imports: layers 1 and 2 are there, layer 3 (padded) is not */
	snprintf(layers_before, sizeof(layers_before), "%s", entries("layers"));
	snprintf(blobs_before, sizeof(blobs_before), "%s", entries("blobs/sha256"));

	/* the layer's blob damaged: the pull fails, and leaves nothing */
	snprintf(cmd, sizeof(cmd), "cp %s/reg/blobs/sha256/%s %s/good && "
		 "printf 'garbage' | dd of=%s/reg/blobs/sha256/%s bs=1 seek=3000 conv=notrunc 2>/dev/null",
		 fx, l3 + 7, fx, fx, l3 + 7);
	T_OK(system(cmd) == 0, "damage layer 3's blob");
	T_OK(reg_start(port, "") == 0, "the fake registry runs");
	rc = image_pull(state, ref, &o, NULL, &p, &r, &e);
	snprintf(cmd, sizeof(cmd), "%s: layer %s: the blob's digest is sha256:", ref, l3);
	T_OK(rc == -EBADMSG && !strncmp(e.msg, cmd, strlen(cmd)) &&
	     strstr(e.msg + strlen(cmd), l3),
	     "a blob whose bytes are not its digest: named as such, not as a bad layer: %s",
	     e.msg);
	/* (whole layers that arrived before the failure may stay: a retry uses them) */
	T_OK(!exists("%s/images/layers/%s", summary(&sum, "diff_ids", 2) + 7),
	     "the damaged layer is not under layers/");
	T_OK(strlen(entries("layers")) >= strlen(layers_before), "no layer went");
	T_STREQ(entries("blobs/sha256"), blobs_before, "no blob added");
	T_STREQ(entries("tmp"), "", "nothing left in tmp/");
	reg_stop();

	/* the blob repaired; the link dies after 100000 bytes of it: the stream
	 * resumes in place */
	snprintf(cmd, sizeof(cmd), "cp %s/good %s/reg/blobs/sha256/%s", fx, fx, l3 + 7);
	T_OK(system(cmd) == 0, "repair the blob");
	snprintf(cmd, sizeof(cmd), "--die-after 100000 --die-match %s", l3);
	T_OK(reg_start(port, cmd) == 0, "the fake registry runs");
	memset(&p, 0, sizeof(p));
	rc = image_pull(state, ref, &o, NULL, &p, &r, &e);
	T_OK(rc == 0, "pull through an index, the layer's transfer cut and resumed: %s", e.msg);
	T_STREQ(r.n_images ? r.images[0].ref : "", ref, "the image's name");
	T_EQ(r.layers_shared, 2, "layers 1 and 2 were there");
	T_EQ(r.layers_new, 1, "layer 3 is new");
	T_OK(r.n_images && !strcmp(r.images[0].digest, summary(&sum, "digest", -1)),
	     "this platform's manifest (%s)", r.n_images ? r.images[0].digest : "");
	T_OK(r.bytes_fetched > 400000 && r.bytes_fetched < 500000,
	     "bytes fetched: the layer once (%llu)", (unsigned long long)r.bytes_fetched);
	T_EQ(atomic_load(&p.total), atomic_load(&p.done), "progress: done is the total");
	T_EQ(atomic_load(&p.step), IMAGE_STEP_DONE, "progress: done");
	snprintf(cmd, sizeof(cmd), "grep -q '%s range=bytes=100000- .* 206' %s/reg.log", l3, fx);
	T_OK(system(cmd) == 0, "the transfer was resumed with a Range request");
	T_STREQ(entries("tmp"), "", "nothing left in tmp/");
	for (size_t i = 0; i < r.n_images; i++)
		T_OK(image_record(st, &r.images[i], &e) == 0, "record");
	image_result_free(&r);
	T_OK(image_lookup(st, state, ref, &got, &e) == 0, "lookup the pulled image: %s", e.msg);
	T_OK(got.config.cmd && !strcmp(got.config.cmd[0], "arg1"), "its configuration");
	image_info_free(&got);

	/* errors name the image once, then the step */
	snprintf(ref, sizeof(ref), "127.0.0.1:%d/app:nope", port);
	T_EQ(image_pull(state, ref, &o, NULL, &p, &r, &e), -ENOENT, "a tag the registry does not have");
	snprintf(cmd, sizeof(cmd), "127.0.0.1:%d/app:nope: manifest nope: HTTP 404 (manifest unknown)",
		 port);
	T_STREQ(e.msg, cmd, "the image, the step, the registry's answer");
	snprintf(cmd, sizeof(cmd), "mv %s/reg/blobs/sha256/%s %s/gone", fx, l3 + 7, fx);
	T_OK(system(cmd) == 0, "layer 3's blob gone from the registry");
	snprintf(cmd, sizeof(cmd), "rm -rf %s/images/layers/%s", state, summary(&sum, "diff_ids", 2) + 7);
	T_OK(system(cmd) == 0, "and from the store");
	snprintf(ref, sizeof(ref), "127.0.0.1:%d/app:1", port);
	T_EQ(image_pull(state, ref, &o, NULL, &p, &r, &e), -ENOENT, "a layer the registry lost");
	snprintf(cmd, sizeof(cmd), "127.0.0.1:%d/app:1: layer %s: download: HTTP 404 (blob unknown)",
		 port, l3);
	T_STREQ(e.msg, cmd, "the image, the layer, the step, the registry's answer");
	snprintf(cmd, sizeof(cmd), "mv %s/gone %s/reg/blobs/sha256/%s", fx, fx, l3 + 7);
	T_OK(system(cmd) == 0, "(put back)");
	reg_stop();

	/* an index without this platform */
	snprintf(cmd, sizeof(cmd), "--format oci-layout --arch " OTHER " --multiarch --kind base "
		 "--out %s/reg", fx);
	T_OK(mkimage(cmd, &sum) == 0, "mkimage: another platform only");
	{
		struct json_doc d = { 0 };
		char idx[IMAGE_DIGEST_SIZE] = "";

		if (json_parse(&d, sum.data, sum.len, &e) == 0)
			json_string(&d, json_get(&d, json_root(&d), "index"), idx, sizeof(idx), &e);
		json_free(&d);
		snprintf(cmd, sizeof(cmd), "cp %s/reg/blobs/sha256/%s %s/reg/manifests/app/other", fx,
			 idx + 7, fx);
		T_OK(idx[0] && system(cmd) == 0, "under app:other");
	}
	T_OK(reg_start(port, "") == 0, "the fake registry runs");
	snprintf(ref, sizeof(ref), "127.0.0.1:%d/app:other", port);
	T_EQ(image_pull(state, ref, &o, NULL, &p, &r, &e), -ENOENT, "a pull for another platform");
	snprintf(cmd, sizeof(cmd), "no linux/" ARCH "%s image in 127.0.0.1:%d/app:other: it has "
		 "linux/" OTHER "%s", !strcmp(ARCH, "arm64") ? "/v8" : "", port,
		 !strcmp(OTHER, "arm64") ? "/v8" : "");
	T_STREQ(e.msg, cmd, "says which platforms it has");
	reg_stop();
	buf_free(&sum);
}

int main(void)
{
	const char *tmp = getenv("TMPDIR");

	snprintf(top, sizeof(top), "%s/test_image_store.XXXXXX", tmp && *tmp ? tmp : "/tmp");
	if (!mkdtemp(top)) {
		perror("mkdtemp");
		return 1;
	}
	test_media();
	test_index();
	test_manifest();
	test_config();
	test_table();
	test_disk();
	test_import();
	if (fx[0] && repo)
		test_pull();
	if (st)
		store_close(st);
	nftw(top, rm_one, 16, FTW_DEPTH | FTW_PHYS);
	return t_done();
}
