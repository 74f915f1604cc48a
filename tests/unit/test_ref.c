/* test_ref.c - image references: what docker would make of a name (the
 * registry, repository, tag and digest it pulls), the canonical text, and
 * the errors a user sees for names docker refuses. */
#include "runtime/image/image.h"
#include "t.h"

#define D64 "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"

static const struct {
	const char *in;
	const char *registry, *repo, *tag, *digest;
	const char *canonical;
} good[] = {
	{ "busybox", "docker.io", "library/busybox", "latest", "",
	  "docker.io/library/busybox:latest" },
	{ "busybox:1.36", "docker.io", "library/busybox", "1.36", "",
	  "docker.io/library/busybox:1.36" },
	{ "docker.io/busybox", "docker.io", "library/busybox", "latest", "",
	  "docker.io/library/busybox:latest" },
	{ "index.docker.io/busybox", "docker.io", "library/busybox", "latest", "",
	  "docker.io/library/busybox:latest" },
	{ "docker.io/library/busybox:musl", "docker.io", "library/busybox", "musl", "",
	  "docker.io/library/busybox:musl" },
	{ "grafana/agent", "docker.io", "grafana/agent", "latest", "",
	  "docker.io/grafana/agent:latest" },
	{ "quay.io/prometheus/node-exporter:v1.8.0", "quay.io", "prometheus/node-exporter",
	  "v1.8.0", "", "quay.io/prometheus/node-exporter:v1.8.0" },
	{ "127.0.0.1:5000/app", "127.0.0.1:5000", "app", "latest", "",
	  "127.0.0.1:5000/app:latest" },
	{ "localhost/app:v2", "localhost", "app", "v2", "", "localhost/app:v2" },
	{ "localhost:5000/a/b/c:t", "localhost:5000", "a/b/c", "t", "", "localhost:5000/a/b/c:t" },
	{ "[::1]:5000/app", "[::1]:5000", "app", "latest", "", "[::1]:5000/app:latest" },
	{ "Registry.Example.com/app", "Registry.Example.com", "app", "latest", "",
	  "Registry.Example.com/app:latest" },
	{ "host:5000/a/b:tag@sha256:" D64, "host:5000", "a/b", "tag", "sha256:" D64,
	  "host:5000/a/b:tag@sha256:" D64 },
	{ "busybox@sha256:" D64, "docker.io", "library/busybox", "", "sha256:" D64,
	  "docker.io/library/busybox@sha256:" D64 },
	{ "x.y-z/a__b--c.d_e", "x.y-z", "a__b--c.d_e", "latest", "",
	  "x.y-z/a__b--c.d_e:latest" },
	{ "x/y-z__w---v:_T.a-G", "docker.io", "x/y-z__w---v", "_T.a-G", "",
	  "docker.io/x/y-z__w---v:_T.a-G" },
	{ "localhost", "docker.io", "library/localhost", "latest", "",
	  "docker.io/library/localhost:latest" },
	{ "host:5000", "docker.io", "library/host", "5000", "", "docker.io/library/host:5000" },
};

static const struct {
	const char *in, *msg;
} bad[] = {
	{ "", "empty image reference" },
	{ "Busybox", "invalid image reference 'Busybox': repository name must be lowercase" },
	{ "docker.io/Library/busybox",
	  "invalid image reference 'docker.io/Library/busybox': repository name must be lowercase" },
	{ "busybox:.x", "invalid image reference 'busybox:.x': a tag may not start with '.' or '-'" },
	{ "busybox:-x", "invalid image reference 'busybox:-x': a tag may not start with '.' or '-'" },
	{ "busybox:", "invalid image reference 'busybox:': empty tag" },
	{ "busybox:a+b",
	  "invalid image reference 'busybox:a+b': invalid tag (letters, digits, '_', '.' and '-' only)" },
	{ "busybox:" "0123456789012345678901234567890123456789012345678901234567890123"
	  "01234567890123456789012345678901234567890123456789012345678901234",
	  NULL /* 129 characters */ },
	{ "busybox@sha256:abc", "invalid image reference 'busybox@sha256:abc': invalid digest "
	  "(sha256: and 64 lower-case hex digits)" },
	{ "busybox@sha512:" D64, "invalid image reference 'busybox@sha512:" D64 "': unsupported "
	  "digest algorithm (sha256 only)" },
	{ "busybox@sha256:" "0123456789ABCDEF0123456789abcdef0123456789abcdef0123456789abcdef", NULL },
	{ "busybox@", NULL },
	{ ":tag", "invalid image reference ':tag': no repository name" },
	{ "a//b", NULL },
	{ "a/b/", NULL },
	{ "-a/b", NULL },
	{ "a_/b", NULL },
	{ "a/b___c", NULL },
	{ "a/.b", NULL },
	{ "a/b..c", NULL },
	{ "host:port/app", "invalid image reference 'host:port/app': invalid registry port" },
	{ "host:123456/app", NULL },
	{ "-host.com/app", "invalid image reference '-host.com/app': invalid registry host name" },
	{ "host..com/app", NULL },
	{ "a_b.c/d", NULL },
	{ "[::1/app", NULL },
	{ "a b", NULL },
	{ "busybox:1@sha256:" D64 "x", NULL },
};

int main(void)
{
	struct image_ref r;
	struct err e;
	char buf[IMAGE_REF_MAX], big[600];

	for (size_t i = 0; i < ARRAY_SIZE(good); i++) {
		int ret = image_ref_parse(good[i].in, &r, &e);

		T_EQ(ret, 0, "'%s' parses", good[i].in);
		if (ret < 0) {
			printf("#   %s\n", e.msg);
			continue;
		}
		T_STREQ(r.registry, good[i].registry, "'%s': registry", good[i].in);
		T_STREQ(r.repo, good[i].repo, "'%s': repository", good[i].in);
		T_STREQ(r.tag, good[i].tag, "'%s': tag", good[i].in);
		T_STREQ(r.digest, good[i].digest, "'%s': digest", good[i].in);
		image_ref_format(&r, buf, sizeof(buf));
		T_STREQ(buf, good[i].canonical, "'%s': canonical text", good[i].in);
		/* the canonical text means the same image */
		struct image_ref r2;
		T_OK(image_ref_parse(buf, &r2, &e) == 0 && !memcmp(&r, &r2, sizeof(r)),
		     "'%s' parses back to the same reference", buf);
	}
	for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
		memset(&r, 'x', sizeof(r));
		int ret = image_ref_parse(bad[i].in, &r, &e);

		T_EQ(ret, -EINVAL, "'%s' is refused", bad[i].in);
		if (bad[i].msg)
			T_STREQ(e.msg, bad[i].msg, "'%s': the error says why", bad[i].in);
		else
			T_OK(strstr(e.msg, bad[i].in) != NULL, "'%s': the error names it (%s)",
			     bad[i].in, e.msg);
		T_OK(!r.registry[0] && !r.repo[0] && !r.tag[0], "'%s': nothing half-parsed is left",
		     bad[i].in);
	}

	/* lengths: the name as a whole is at most 255 characters */
	memset(big, 'a', sizeof(big));
	memcpy(big, "r.io/", 5);
	big[255] = '\0';
	T_EQ(image_ref_parse(big, &r, &e), 0, "a 255-character name is fine");
	big[255] = 'a';
	big[256] = '\0';
	T_EQ(image_ref_parse(big, &r, &e), -EINVAL, "a 256-character name is refused");
	T_OK(strstr(e.msg, "longer than 255") != NULL, "and the error says why: %s", e.msg);
	big[256] = 'a';
	big[sizeof(big) - 1] = '\0';
	T_EQ(image_ref_parse(big, &r, &e), -EINVAL, "a reference longer than IMAGE_REF_MAX is refused");
	T_OK(strstr(e.msg, "longer than 511 bytes") != NULL, "and the error says so: %s", e.msg);
	T_EQ(image_ref_parse(NULL, &r, &e), -EINVAL, "NULL is refused");
	return t_done();
}
