/* test_control.c - control protocol: request encoding round trip, malformed
 * requests, table output as aligned text and JSON. */
#include "runtime/ctl/ctl.h"
#include "t.h"

#include <errno.h>

static void test_roundtrip(void)
{
	char *in[] = { "dns", "query", "web.berth.internal", "a b%c\nd", "" };
	char buf[CTL_REQ_MAX + 1], *argv[CTL_MAX_ARGS + 1];
	struct ctl_request rq;
	struct err e;
	int n;

	n = ctl_encode_request(buf, sizeof(buf), true, 5, in);
	T_OK(n > 0 && buf[n - 1] == '\n', "a request is one line ending in newline");
	T_STREQ(buf, "-o json dns query web.berth.internal a%20b%25c%0Ad %\n",
		"unsafe bytes travel percent-escaped; an empty word is a lone percent sign");
	buf[n - 1] = '\0';
	T_EQ(ctl_parse_request(buf, &rq, argv, &e), 0, "the encoded request parses");
	T_OK(rq.json, "-o json is seen");
	T_EQ(rq.argc, 5, "five words come back");
	T_STREQ(rq.argv[0], "dns", "the command is the first word");
	T_STREQ(rq.argv[3], "a b%c\nd", "spaces, percent and newline survive");
	T_STREQ(rq.argv[4], "", "an empty word survives");
}

static void test_malformed(void)
{
	char *argv[CTL_MAX_ARGS + 1], line[CTL_REQ_MAX];
	struct ctl_request rq;
	struct err e;

	strcpy(line, "ps %zz");
	T_EQ(ctl_parse_request(line, &rq, argv, &e), -EINVAL, "a bad escape is rejected");
	T_STREQ(e.msg, "malformed %-escape in the request", "with a reason");
	strcpy(line, "ps %00");
	T_EQ(ctl_parse_request(line, &rq, argv, &e), -EINVAL, "an escaped NUL is rejected");
	strcpy(line, "ps %4");
	T_EQ(ctl_parse_request(line, &rq, argv, &e), -EINVAL, "a truncated escape is rejected");
	strcpy(line, "   ");
	T_EQ(ctl_parse_request(line, &rq, argv, &e), -EINVAL, "an empty request is rejected");
	T_STREQ(e.msg, "empty request", "with a reason");
	strcpy(line, "-o json");
	T_EQ(ctl_parse_request(line, &rq, argv, &e), -EINVAL, "options without a command are rejected");
	line[0] = '\0';
	for (int i = 0; i < CTL_MAX_ARGS + 1; i++)
		strcat(line, "w ");
	T_EQ(ctl_parse_request(line, &rq, argv, &e), -EINVAL, "more than 64 words are rejected");

	char big[CTL_REQ_MAX * 2], *words[] = { big };
	memset(big, 'a', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	T_EQ(ctl_encode_request(line, sizeof(line), false, 1, words), -ENOSPC,
	     "a request longer than 4096 bytes is refused by the encoder");
}

static void test_table(void)
{
	static const char *const cols[] = { "NAME", "STATE", "RESTARTS#", "HOST PORT" };
	struct table t;
	struct buf out;

	buf_init(&out);
	table_init(&t, 4, cols);
	table_add(&t, "web", "running", "0", "8080");
	table_add(&t, "client-long", "exited", "12", NULL);
	table_render(&t, false, &out);
	T_STREQ(out.data,
		"NAME         STATE    RESTARTS  HOST PORT\n"
		"web          running  0         8080\n"
		"client-long  exited   12        -\n",
		"text tables are aligned, '#' hidden, NULL printed as -");
	buf_reset(&out);
	table_render(&t, true, &out);
	T_STREQ(out.data,
		"[{\"name\":\"web\",\"state\":\"running\",\"restarts\":0,\"host_port\":\"8080\"},"
		"{\"name\":\"client-long\",\"state\":\"exited\",\"restarts\":12,\"host_port\":\"-\"}]\n",
		"JSON: lower-case keys, numbers bare, spaces as _");
	table_free(&t);
	buf_reset(&out);
	buf_json_string(&out, "a\"b\\c\n\x01");
	T_STREQ(out.data, "\"a\\\"b\\\\c\\n\\u0001\"", "JSON strings are escaped");
	buf_free(&out);
}

int main(void)
{
	test_roundtrip();
	test_malformed();
	test_table();
	return t_done();
}
