/* reg_fetch.c - drive runtime/image/registry.c from a shell test:
 *
 * Options: --ca FILE, --auth FILE (registry_opts), --cancel-after MS (set
 * cancel then), --timeout MS (instead of REGISTRY_TIMEOUT_MS).
 *
 *   reg_fetch [OPTIONS] REF manifest [REFERENCE]
 *       prints "MEDIA_TYPE DIGEST BYTES" (REFERENCE: REF's digest, else its tag)
 *   reg_fetch [OPTIONS] REF blob DIGEST FILE
 *       reads the blob's stream (registry_blob_open) into FILE, truncated
 *       first, checks its sha256 as a consumer does (a mismatch empties
 *       FILE: "the blob's digest is sha256:X"), prints "done=N"
 *
 * On failure: "reg_fetch: MESSAGE" on stderr and exit status 1. */
#include "runtime/image/image_int.h"

#include <bearssl.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static struct image_progress progress;
static int cancel_after_ms = -1, timeout_ms = -1;

static void *canceller(void *arg)
{
	struct timespec ts = { cancel_after_ms / 1000, (cancel_after_ms % 1000) * 1000000L };

	(void)arg;
	nanosleep(&ts, NULL);
	atomic_store(&progress.cancel, true);
	return NULL;
}

static int usage(void)
{
	fprintf(stderr, "usage: reg_fetch [--ca FILE] [--auth FILE] [--cancel-after MS] "
		"[--timeout MS] REF manifest [REFERENCE] | blob DIGEST FILE\n");
	return 2;
}

int main(int argc, char **argv)
{
	struct registry_opts o = { .cancel = &progress.cancel };
	struct registry *r = NULL;
	struct image_ref ref;
	struct err e = { 0 };
	pthread_t th;
	int i = 1, ret = 1;

	for (; i + 1 < argc && !strncmp(argv[i], "--", 2); i += 2) {
		if (!strcmp(argv[i], "--ca"))
			o.ca_file = argv[i + 1];
		else if (!strcmp(argv[i], "--auth"))
			o.auth_file = argv[i + 1];
		else if (!strcmp(argv[i], "--cancel-after"))
			cancel_after_ms = atoi(argv[i + 1]);
		else if (!strcmp(argv[i], "--timeout"))
			timeout_ms = atoi(argv[i + 1]);
		else
			return usage();
	}
	if (argc - i < 2)
		return usage();
	if (image_ref_parse(argv[i], &ref, &e) < 0 || registry_open(&r, &ref, &o, &e) < 0) {
		fprintf(stderr, "reg_fetch: %s\n", e.msg);
		return 1;
	}
	if (timeout_ms > 0)
		registry_set_timeout(r, timeout_ms);
	if (cancel_after_ms >= 0)
		pthread_create(&th, NULL, canceller, NULL);
	if (!strcmp(argv[i + 1], "manifest")) {
		const char *reference = argc - i > 2 ? argv[i + 2] : *ref.digest ? ref.digest : ref.tag;
		char media[128], digest[IMAGE_DIGEST_SIZE];
		struct buf body;

		buf_init(&body);
		if (registry_get_manifest(r, reference, &body, media, digest, &e) == 0) {
			printf("%s %s %zu\n", media, digest, body.len);
			ret = 0;
		}
		buf_free(&body);
	} else if (!strcmp(argv[i + 1], "blob") && argc - i == 4) {
		int fd = open(argv[i + 3], O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
		struct registry_blob *b = NULL;
		char got[IMAGE_DIGEST_SIZE];
		br_sha256_context h;
		uint8_t sha[32];

		if (fd < 0) {
			perror(argv[i + 3]);
			return 1;
		}
		br_sha256_init(&h);
		if (registry_blob_open(r, argv[i + 2], 0, &progress.part, &b, &e) == 0) {
			struct image_src src = registry_blob_src(b);
			static char chunk[65536];
			ssize_t n;

			while ((n = src.read(src.ctx, chunk, sizeof(chunk), &e)) > 0) {
				br_sha256_update(&h, chunk, (size_t)n);
				if (write(fd, chunk, (size_t)n) != n) {
					n = err_sys(&e, errno, "write %s", argv[i + 3]);
					break;
				}
			}
			br_sha256_out(&h, sha);
			image_digest_format(sha, got);
			if (n == 0 && strcmp(got, argv[i + 2])) {
				err_set(&e, EBADMSG, "the blob's digest is %s", got);
				n = -1;
			}
			if (n < 0 && ftruncate(fd, 0) < 0)
				perror(argv[i + 3]);
			if (n == 0) {
				printf("done=%llu\n", (unsigned long long)atomic_load(&progress.part));
				ret = 0;
			}
			registry_blob_close(b);
		}
		close(fd);
	} else {
		registry_close(r);
		return usage();
	}
	if (ret)
		fprintf(stderr, "reg_fetch: %s\n", e.msg);
	registry_close(r);
	if (cancel_after_ms >= 0)
		pthread_join(th, NULL);
	return ret;
}
