/* fuzz_control.c - the control request parser on arbitrary bytes, and the
 * encoder/parser round trip on whatever words come out. */
#include "runtime/ctl/ctl.h"

#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size);

int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size)
{
	char line[CTL_REQ_MAX + 1], again[CTL_REQ_MAX + 1], *argv[CTL_MAX_ARGS + 1];
	char *argv2[CTL_MAX_ARGS + 1], copy[CTL_REQ_MAX + 1];
	struct ctl_request rq, rq2;
	struct err e;
	int n;

	if (size > CTL_REQ_MAX)
		return 0;
	/* the server hands the parser one line without its newline and without NULs */
	memcpy(line, data, size);
	line[size] = '\0';
	if (memchr(line, '\n', size) || strlen(line) != size)
		return 0;
	if (ctl_parse_request(line, &rq, argv, &e) < 0)
		return 0;
	n = ctl_encode_request(again, sizeof(again), rq.json, rq.argc, rq.argv);
	if (n < 0)
		return 0;
	again[n - 1] = '\0';
	memcpy(copy, again, (size_t)n);
	if (ctl_parse_request(again, &rq2, argv2, &e) < 0 || rq2.argc != rq.argc ||
	    rq2.json != rq.json)
		abort();
	for (int i = 0; i < rq.argc; i++)
		if (strcmp(rq.argv[i], rq2.argv[i]) != 0)
			abort();
	return 0;
}
