/* test_image_run.c - runtime/image/run.c: the user of an image resolved
 * through /etc/passwd and /etc/group of its layers (made here by hand, with
 * a whiteout and an opaque directory as unpack.c leaves them), the overlay's
 * lower directories, stop signals. */
#include "runtime/image/image.h"
#include "t.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>
#include <unistd.h>

static char top[4096];
static bool can_mknod, can_trusted;

static void put(const char *layer, const char *rel, const char *text)
{
	char path[8192], dir[8192];
	struct err e = { 0 };
	FILE *f;

	snprintf(path, sizeof(path), "%s/images/layers/%s/%s", top, layer, rel);
	snprintf(dir, sizeof(dir), "%s", path);
	*strrchr(dir, '/') = '\0';
	mkdir_p("test", dir, 0755, &e);
	f = fopen(path, "w");
	if (!f || fputs(text, f) < 0 || fclose(f) != 0) {
		perror(path);
		exit(2);
	}
}

static void layer_dir(const char *layer, const char *rel)
{
	char path[8192];
	struct err e = { 0 };

	snprintf(path, sizeof(path), "%s/images/layers/%s/%s", top, layer, rel);
	mkdir_p("test", path, 0755, &e);
}

/* A whiteout (0:0 character device) of rel in layer; false when this
 * process may not make one. */
static bool whiteout(const char *layer, const char *rel)
{
	char path[8192];

	snprintf(path, sizeof(path), "%s/images/layers/%s/%s", top, layer, rel);
	return mknod(path, S_IFCHR | 0000, makedev(0, 0)) == 0;
}

static bool opaque(const char *layer, const char *rel)
{
	char path[8192];

	snprintf(path, sizeof(path), "%s/images/layers/%s/%s", top, layer, rel);
	return lsetxattr(path, "trusted.overlay.opaque", "y", 1, 0) == 0;
}

static char hexes[4][65];

/* An image of n layers, bottom first: layers L0..L(n-1) named by hexes. */
static void image(struct image_info *i, struct image_layer_desc *l, size_t n)
{
	memset(i, 0, sizeof(*i));
	snprintf(i->ref, sizeof(i->ref), "127.0.0.1:5000/app:1");
	for (size_t k = 0; k < n; k++) {
		memset(&l[k], 0, sizeof(l[k]));
		snprintf(l[k].diff_id, sizeof(l[k].diff_id), "sha256:%s", hexes[k]);
	}
	i->layers = l;
	i->n_layers = n;
}

static const char passwd[] =
	"root:x:0:0:root:/root:/bin/sh\n"
	"daemon:x:1:1:daemon:/usr/sbin:/bin/false\n"
	"# a comment\n"
	"app:x:1000:1001:App:/home/app:/bin/sh\n"
	"nohome:x:1002:1002::\n";
static const char group[] =
	"root:x:0:\n"
	"wheel:x:10:root,app\n"
	"appgrp:x:1001:\n"
	"audio:x:29:app\n"
	"video:x:44:other,app,more\n";

static const char *groups_of(const struct image_user *u)
{
	static char b[256];
	size_t n = 0;

	b[0] = '\0';
	for (size_t k = 0; k < u->n_groups; k++)
		n += (size_t)snprintf(b + n, sizeof(b) - n, "%s%u", k ? "," : "", u->groups[k]);
	return b;
}

static void test_user(void)
{
	struct image_layer_desc l[4];
	struct image_info i;
	struct image_user u;
	struct err e = { 0 };

	/* L0: the base with both files; L1: an upper layer without them */
	put(hexes[0], "etc/passwd", passwd);
	put(hexes[0], "etc/group", group);
	put(hexes[1], "etc/motd", "hi\n");
	image(&i, l, 2);

	T_EQ(image_user_resolve(&i, top, "app", &u, &e), 0, "a name from the base layer's passwd");
	T_OK(u.uid == 1000 && u.gid == 1001, "app is 1000:1001 (got %u:%u)", u.uid, u.gid);
	T_STREQ(groups_of(&u), "10,29,44", "its supplementary groups: those that list it");
	T_STREQ(u.home, "/home/app", "its home");
	T_EQ(image_user_resolve(&i, top, NULL, &u, &e), 0, "no user: root");
	T_OK(u.uid == 0 && u.gid == 0 && !strcmp(u.home, "/root"), "root is 0:0, home /root");
	T_STREQ(groups_of(&u), "10", "root's supplementary groups too (as docker)");
	T_EQ(image_user_resolve(&i, top, "1000", &u, &e), 0, "a uid in passwd");
	T_OK(u.uid == 1000 && u.gid == 1001 && u.n_groups == 3, "takes its gid and groups");
	T_EQ(image_user_resolve(&i, top, "4242", &u, &e), 0, "a uid not in passwd");
	T_OK(u.uid == 4242 && u.gid == 0 && !u.n_groups && !strcmp(u.home, "/"),
	     "runs as 4242:0 without groups, home /");
	T_EQ(image_user_resolve(&i, top, "app:audio", &u, &e), 0, "name:group");
	T_OK(u.uid == 1000 && u.gid == 29 && !u.n_groups,
	     "the group given, no supplementary groups (as runc)");
	T_EQ(image_user_resolve(&i, top, "1000:7", &u, &e), 0, "uid:gid");
	T_OK(u.uid == 1000 && u.gid == 7 && !u.n_groups, "as given");
	T_EQ(image_user_resolve(&i, top, "nohome", &u, &e), 0, "an entry without a home");
	T_STREQ(u.home, "/", "home /");
	T_EQ(image_user_resolve(&i, top, "nobody", &u, &e), -ENOENT, "an unknown name");
	T_STREQ(e.msg, "unknown user 'nobody' in image 127.0.0.1:5000/app:1",
		"the error names the user and the image");
	T_EQ(image_user_resolve(&i, top, "app:staff", &u, &e), -ENOENT, "an unknown group");
	T_STREQ(e.msg, "unknown group 'staff' in image 127.0.0.1:5000/app:1",
		"the error names the group and the image");
	T_EQ(image_user_resolve(&i, top, "app:", &u, &e), -EINVAL, "an empty group");

	/* L1 has its own passwd: the top-most one counts */
	put(hexes[1], "etc/passwd", "root:x:0:0:root:/root:/bin/sh\napp:x:2000:2000::/srv:/bin/sh\n");
	T_EQ(image_user_resolve(&i, top, "app", &u, &e), 0, "a passwd in the upper layer");
	T_OK(u.uid == 2000 && u.gid == 2000 && !strcmp(u.home, "/srv"),
	     "shadows the base layer's (2000:2000 /srv, got %u:%u %s)", u.uid, u.gid, u.home);
	T_STREQ(groups_of(&u), "10,29,44", "the groups still come from the base's group file");

	/* L2: a whiteout of /etc/passwd hides both */
	layer_dir(hexes[2], "etc");
	image(&i, l, 3);
	can_mknod = whiteout(hexes[2], "etc/passwd");
	if (can_mknod) {
		T_EQ(image_user_resolve(&i, top, "app", &u, &e), -ENOENT,
		     "a whiteout of /etc/passwd hides the files below it");
		T_STREQ(e.msg, "unknown user 'app' in image 127.0.0.1:5000/app:1 (it has no /etc/passwd)",
			"and the error says the image has none");
		T_EQ(image_user_resolve(&i, top, "33", &u, &e), 0, "a number needs no file");
		T_OK(u.uid == 33 && u.gid == 0, "33:0");
	} else {
		T_OK(1, "# SKIP whiteouts need CAP_MKNOD");
	}

	/* L3: an opaque /etc with a passwd of its own hides L0's group too */
	put(hexes[3], "etc/passwd", "app:x:3000:3000::/x:/bin/sh\n");
	image(&i, l, 4);
	can_trusted = opaque(hexes[3], "etc");
	if (can_trusted) {
		T_EQ(image_user_resolve(&i, top, "app", &u, &e), 0, "an opaque /etc with a passwd");
		T_OK(u.uid == 3000 && !u.n_groups, "its passwd, and no group file below it");
		T_EQ(image_user_resolve(&i, top, "app:wheel", &u, &e), -ENOENT,
		     "a group of the base layer is hidden by the opaque /etc");
	} else {
		T_OK(1, "# SKIP trusted xattrs need CAP_SYS_ADMIN");
	}

	/* a file too large is an error, not a truncated read */
	{
		size_t n = IMAGE_USER_FILE_MAX + 2;
		char *big = malloc(n);

		memset(big, '#', n - 1);
		big[n - 1] = '\0';
		image(&i, l, 1);
		put(hexes[0], "etc/passwd", big);
		free(big);
		T_EQ(image_user_resolve(&i, top, "app", &u, &e), -EFBIG, "a passwd over the bound");
		T_OK(strstr(e.msg, "/etc/passwd is larger than") != NULL, "says so: %s", e.msg);
	}
}

static void test_lowerdirs(void)
{
	struct image_layer_desc l[IMAGE_LAYERS_MAX + 1];
	struct image_info i;
	struct buf b;
	struct err e = { 0 };
	char want[300];

	buf_init(&b);
	image(&i, l, 3);
	T_EQ(image_lowerdirs(&i, &b, &e), 0, "three layers");
	snprintf(want, sizeof(want), "%s:%s:%s", hexes[2], hexes[1], hexes[0]);
	buf_append(&b, "", 1);
	T_STREQ(b.data, want, "top-most first, by diff_id without sha256:");
	buf_reset(&b);
	image(&i, l, 0);
	T_EQ(image_lowerdirs(&i, &b, &e), -EINVAL, "no layers");
	T_STREQ(e.msg, "image 127.0.0.1:5000/app:1 has no layers", "says so");
	image(&i, l, 2);
	snprintf(l[1].diff_id, sizeof(l[1].diff_id), "sha256:../../etc");
	T_EQ(image_lowerdirs(&i, &b, &e), -EINVAL, "a diff_id that is no digest");
	T_OK(strstr(e.msg, "layer 2 has no valid diff_id") != NULL, "names the layer: %s", e.msg);
	image(&i, l, 1);
	i.n_layers = IMAGE_LAYERS_MAX + 1;
	T_EQ(image_lowerdirs(&i, &b, &e), -EINVAL, "more layers than one mount takes");
	buf_free(&b);
}

static void test_signal(void)
{
	T_EQ(image_signal_parse("SIGTERM"), SIGTERM, "SIGTERM");
	T_EQ(image_signal_parse("quit"), SIGQUIT, "quit (any case, without SIG)");
	T_EQ(image_signal_parse("SIGWINCH"), SIGWINCH, "SIGWINCH");
	T_EQ(image_signal_parse("9"), SIGKILL, "a number");
	T_EQ(image_signal_parse("SIGRTMIN+3"), SIGRTMIN + 3, "SIGRTMIN+3");
	T_EQ(image_signal_parse("RTMAX-1"), SIGRTMAX - 1, "RTMAX-1");
	T_EQ(image_signal_parse("SIGNOPE"), -1, "an unknown name");
	T_EQ(image_signal_parse("0"), -1, "0 is no signal");
	T_EQ(image_signal_parse("99"), -1, "nor is 99");
	T_EQ(image_signal_parse(""), -1, "nor empty");
}

int main(void)
{
	const char *t = getenv("TMPDIR");

	snprintf(top, sizeof(top), "%s/test_image_run.XXXXXX", t && *t ? t : "/tmp");
	if (!mkdtemp(top)) {
		perror(top);
		return 2;
	}
	for (int k = 0; k < 4; k++)
		for (int j = 0; j < 64; j++)
			hexes[k][j] = "0123456789abcdef"[(k * 7 + j) % 16];
	test_lowerdirs();
	test_user();
	test_signal();
	{
		char cmd[4200];

		snprintf(cmd, sizeof(cmd), "rm -rf '%s'", top);
		if (system(cmd) != 0)
			fprintf(stderr, "could not remove %s\n", top);
	}
	return t_done();
}
