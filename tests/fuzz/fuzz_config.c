/* fuzz_config.c - libFuzzer: the whole config loader (inih, validation, policy
 * language, checks across files) on arbitrary text. The input is split at
 * "\n%%\n" into berth.ini, containers.d/a.ini, containers.d/b.ini and
 * policies.d/p.ini. */
#include "runtime/config/config.h"

#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const char *const names[] = { "berth.ini", "containers.d/a.ini",
		"containers.d/b.ini", "policies.d/p.ini" };
	struct config_opts o = { .resolv_conf = "/dev/null" };
	struct config_file files[4];
	struct config_errors errs = { 0 };
	struct config *c = NULL;
	const char *p = (const char *)data, *end = p + size;
	size_t n = 0;
	char sum[128];

	while (n < 4) {
		const char *sep = memmem(p, (size_t)(end - p), "\n%%\n", 4);
		const char *stop = sep ? sep + 1 : end;

		files[n] = (struct config_file){ names[n], p, (size_t)(stop - p) };
		n++;
		if (!sep)
			break;
		p = sep + 4;
	}
	if (config_load_files(files, n, "fuzz", &o, &c, &errs) == 0) {
		config_summary(c, sum, sizeof(sum));
		for (size_t i = 0; i < c->n_policies; i++)
			for (size_t k = 0; k < c->n_containers; k++)
				selector_match(&c->policies[i].select, c->containers[k]->labels,
					       c->containers[k]->n_labels);
		if (errs.n)
			abort();        /* success must mean no errors */
	} else if (!errs.n) {
		abort();                /* failure must say why */
	}
	config_free(c);
	config_errors_free(&errs);
	return 0;
}
