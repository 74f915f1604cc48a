/* test_json.c - lib/ JSON reader: what it accepts and how it reads it back,
 * what it refuses and the message (with the byte) a user would see, and
 * the limits. */
#include "lib/lib.h"
#include "t.h"

#include <limits.h>
#include <stdio.h>
#include <string.h>

static struct json_doc doc;
static struct err err;

static int parse(const char *text)
{
	err_clear(&err);
	return json_parse(&doc, text, strlen(text), &err);
}

/* The message parsing text gives, or "ok". */
static const char *parse_msg(const char *text)
{
	return parse(text) == 0 ? "ok" : err.msg;
}

static void test_netconf(void)
{
	const char *text =
		"{\n"
		"  \"cniVersion\": \"1.1.0\", \"name\": \"podman\", \"type\": \"berth\",\n"
		"  \"network\": \"default\", \"ipMasq\": true, \"mtu\": 1500, \"x\": null,\n"
		"  \"runtimeConfig\": {\n"
		"    \"portMappings\": [ { \"hostPort\": 8080, \"containerPort\": 80, \"protocol\": \"tcp\" },\n"
		"                      { \"hostPort\": 5353, \"containerPort\": 53, \"protocol\": \"udp\" } ],\n"
		"    \"aliases\": { \"podman\": [ \"web\", \"www\" ] }\n"
		"  },\n"
		"  \"args\": { \"cni\": { \"labels\": [ { \"key\": \"app\", \"value\": \"web\" } ] } }\n"
		"}\n";
	const struct json_tok *root, *rc, *pm, *el, *k;
	char s[64];
	long long v = 0;
	bool b = false;
	int n;

	T_EQ(parse(text), 0, "a podman netconf parses");
	root = json_root(&doc);
	T_OK(root && root->type == JSON_OBJECT && root->n == 9, "its root is an object of 9 members");
	T_EQ(json_string(&doc, json_get(&doc, root, "name"), s, sizeof(s), &err), 6,
	     "a member is found by key and its string read back");
	T_STREQ(s, "podman", "with its value");
	T_OK(json_get(&doc, root, "nosuch") == NULL, "a missing key is NULL");
	T_OK(json_get(&doc, json_get(&doc, root, "name"), "x") == NULL,
	     "looking up a key in a non-object is NULL");
	T_OK(json_bool(json_get(&doc, root, "ipMasq"), &b, &err) == 0 && b, "a boolean");
	T_OK(json_int(&doc, json_get(&doc, root, "mtu"), 68, 65535, &v, &err) == 0 && v == 1500,
	     "an integer within its range");
	T_OK(json_get(&doc, root, "x")->type == JSON_NULL, "null");
	rc = json_get(&doc, root, "runtimeConfig");
	pm = json_get(&doc, rc, "portMappings");
	T_OK(pm && pm->type == JSON_ARRAY && pm->n == 2, "a nested array of two");
	n = 0;
	for (el = json_first(&doc, pm); el; el = json_next(&doc, pm, el)) {
		long long hp = 0;

		json_int(&doc, json_get(&doc, el, "hostPort"), 1, 65535, &hp, &err);
		n += hp == (n == 0 ? 8080 : 5353);
	}
	T_EQ(n, 2, "iterating the array visits each element once, in order");
	n = 0;
	for (k = json_first(&doc, root); k; k = json_next(&doc, root, k))
		n++;
	T_EQ(n, 9, "iterating an object visits each key once, skipping nested values");
	k = json_first(&doc, json_get(&doc, rc, "aliases"));
	T_OK(json_str_eq(&doc, k, "podman") && json_get(&doc, json_get(&doc, rc, "aliases"),
							 "podman") == k + 1,
	     "a key's value is the token after it");
	T_OK(!json_first(&doc, json_get(&doc, root, "name")), "a string has no elements");
	json_free(&doc);
}

static void test_strings(void)
{
	char s[64];

	T_EQ(parse("\"a\\\"b\\\\c\\/d\\b\\f\\n\\r\\te\""), 0, "every short escape");
	T_EQ(json_string(&doc, json_root(&doc), s, sizeof(s), &err), 13, "is unescaped");
	T_STREQ(s, "a\"b\\c/d\b\f\n\r\te", "to the bytes it stands for");
	T_EQ(parse("\"\\u0041\\u00e9\\u20ac\\ud83d\\ude00\""), 0, "\\u escapes, with a surrogate pair");
	json_string(&doc, json_root(&doc), s, sizeof(s), &err);
	T_STREQ(s, "A\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80", "become UTF-8 (1, 2, 3 and 4 bytes)");
	T_OK(json_str_eq(&doc, json_root(&doc), "A\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80"),
	     "and compare equal to that UTF-8");
	T_OK(!json_str_eq(&doc, json_root(&doc), "A"), "but not to a prefix of it");
	T_EQ(parse("\"h\xc3\xa9llo \xf0\x9f\x98\x80\""), 0, "raw UTF-8 is accepted");
	T_EQ(parse("{\"\\u006eame\": 1}"), 0, "an escaped key");
	T_OK(json_get(&doc, json_root(&doc), "name") != NULL, "is found by its unescaped text");
	T_EQ(parse("\"abcdef\""), 0, "a string of 6 bytes");
	T_EQ(json_string(&doc, json_root(&doc), s, 6, &err), -ERANGE, "does not fit in 6 bytes");
	T_STREQ(err.msg, "the string is longer than 5 bytes", "and says so");
	T_EQ(json_string(&doc, json_root(&doc), s, 7, &err), 6, "fits in 7");
	T_EQ(parse("\"a\\u0000b\""), 0, "\\u0000 is valid JSON");
	T_EQ(json_string(&doc, json_root(&doc), s, sizeof(s), &err), -EINVAL,
	     "but is refused as a C string");
	T_OK(!json_str_eq(&doc, json_root(&doc), "a"), "and does not equal the part before it");
	T_EQ(parse("42"), 0, "a number");
	T_EQ(json_string(&doc, json_root(&doc), s, sizeof(s), &err), -EINVAL, "is not a string");
	T_STREQ(err.msg, "expected a string, found a number", "and the message says what it is");
	json_free(&doc);
}

static void test_numbers(void)
{
	long long v = 0;
	struct {
		const char *text;
		long long min, max;
		int ret;
		long long want;
	} cases[] = {
		{ "0", 0, 10, 0, 0 },
		{ "-0", -1, 1, 0, 0 },
		{ "65535", 1, 65535, 0, 65535 },
		{ "65536", 1, 65535, -ERANGE, 0 },
		{ "0", 1, 65535, -ERANGE, 0 },
		{ "9223372036854775807", 0, LLONG_MAX, 0, LLONG_MAX },
		{ "-9223372036854775808", LLONG_MIN, 0, 0, LLONG_MIN },
		{ "9223372036854775808", 0, LLONG_MAX, -ERANGE, 0 },
		{ "99999999999999999999999", 0, LLONG_MAX, -ERANGE, 0 },
		{ "1.0", 0, 10, -EINVAL, 0 },
		{ "1e3", 0, 10000, -EINVAL, 0 },
	};

	for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
		int ret;

		T_EQ(parse(cases[i].text), 0, "%s parses", cases[i].text);
		v = 0;
		ret = json_int(&doc, json_root(&doc), cases[i].min, cases[i].max, &v, &err);
		T_OK(ret == cases[i].ret && (ret || v == cases[i].want),
		     "%s as an integer in %lld..%lld: %s", cases[i].text, cases[i].min, cases[i].max,
		     ret ? err.msg : "ok");
	}
	parse("70000");
	json_int(&doc, json_root(&doc), 1, 65535, &v, &err);
	T_STREQ(err.msg, "70000 is out of range (1 to 65535)", "the range error names the value");
	T_STREQ(parse_msg("[-1.5e-3, 2E+10, 0.25, -0]"), "ok", "fractions and exponents parse");
	json_free(&doc);
}

static void test_errors(void)
{
	static const struct {
		const char *text, *msg;
	} cases[] = {
		{ "", "byte 0: expected a value, found the end of the text" },
		{ "   ", "byte 3: expected a value, found the end of the text" },
		{ "{\"a\": 1 \"b\": 2}", "byte 8: expected ',' or '}', found '\"'" },
		{ "[1, 2,]", "byte 6: expected a value, found ']'" },
		{ "{\"a\": 1,}", "byte 8: expected a key after ',', found '}'" },
		{ "{\"a\" 1}", "byte 5: expected ':' after the key, found '1'" },
		{ "{a: 1}", "byte 1: expected a key or '}', found 'a'" },
		{ "[1 2]", "byte 3: expected ',' or ']', found '2'" },
		{ "{} {}", "byte 3: expected the end after the value, found '{'" },
		{ "\"abc", "byte 0: string never closed, found '\"'" },
		{ "\"a\tb\"", "byte 2: control character in a string (escape it as \\u0009), found byte 0x09" },
		{ "\"\\x\"", "byte 1: invalid escape (one of \\\" \\\\ \\/ \\b \\f \\n \\r \\t \\uXXXX), found '\\'" },
		{ "\"\\u12g4\"", "byte 1: expected 4 hex digits after \\u, found '\\'" },
		{ "\"\\ud83d\"", "byte 1: \\ud83d: high surrogate not followed by a low one, found '\\'" },
		{ "\"\\ud83d\\u0041\"", "byte 1: \\ud83d: high surrogate not followed by a low one, found '\\'" },
		{ "\"\\ude00\"", "byte 1: \\ude00: low surrogate without a high one before it, found '\\'" },
		{ "\"\xc0\xaf\"", "byte 1: invalid UTF-8 in a string, found byte 0xc0" },
		{ "\"\xed\xa0\x80\"", "byte 1: invalid UTF-8 in a string, found byte 0xed" },
		{ "\"\xf4\x90\x80\x80\"", "byte 1: invalid UTF-8 in a string, found byte 0xf4" },
		{ "\"\xe2\x82\"", "byte 1: invalid UTF-8 in a string, found byte 0xe2" },
		{ "\xef\xbb\xbf{}", "byte 0: expected a value, found byte 0xef" },
		{ "01", "byte 0: a number may not start with 0, found '0'" },
		{ "-", "byte 1: expected a digit, found the end of the text" },
		{ "1.", "byte 2: expected a digit after '.', found the end of the text" },
		{ ".5", "byte 0: expected a value, found '.'" },
		{ "1e", "byte 2: expected a digit in the exponent, found the end of the text" },
		{ "+1", "byte 0: expected a value, found '+'" },
		{ "tru", "byte 0: expected a value, found 't'" },
		{ "nul", "byte 0: expected a value, found 'n'" },
		{ "True", "byte 0: expected a value, found 'T'" },
		{ "// c\n{}", "byte 0: expected a value, found '/'" },
		{ "{\"a\": 1, \"b\": 2, \"a\": 3}", "byte 17: duplicate key \"a\"" },
		{ "{\"name\": 1, \"n\\u0061me\": 2}", "byte 12: duplicate key \"name\"" },
		{ "[{\"x\": {\"k\": 1, \"k\": 2}}]", "byte 16: duplicate key \"k\"" },
	};

	for (size_t i = 0; i < ARRAY_SIZE(cases); i++)
		T_STREQ(parse_msg(cases[i].text), cases[i].msg, "refused: %s", cases[i].msg);
	T_OK(json_root(&doc) == NULL, "a failed parse leaves the doc empty");
	T_EQ(json_parse(&doc, "[1]\0", 4, &err), -EINVAL, "a NUL after the value is refused");
	T_STREQ(err.msg, "byte 3: expected the end after the value, found byte 0x00", "by offset");
	T_EQ(json_parse(&doc, "\"a\0\"", 4, &err), -EINVAL, "a raw NUL in a string is refused");
	T_STREQ(parse_msg("{\"a\": 1, \"b\": {\"a\": 2}, \"c\": [{\"a\": 3}, {\"a\": 4}]}"), "ok",
		"the same key in different objects is fine");
	json_free(&doc);
}

static void test_limits(void)
{
	char deep[2 * JSON_MAX_DEPTH + 3];
	char *big;
	size_t n;
	unsigned entries;

	memset(deep, '[', JSON_MAX_DEPTH);
	memset(deep + JSON_MAX_DEPTH, ']', JSON_MAX_DEPTH);
	deep[2 * JSON_MAX_DEPTH] = '\0';
	T_STREQ(parse_msg(deep), "ok", "%d nested arrays parse", JSON_MAX_DEPTH);
	memset(deep, '[', JSON_MAX_DEPTH + 1);
	memset(deep + JSON_MAX_DEPTH + 1, ']', JSON_MAX_DEPTH + 1);
	deep[2 * JSON_MAX_DEPTH + 2] = '\0';
	T_STREQ(parse_msg(deep), "byte 64: nested deeper than 64 arrays and objects, found '['",
		"one more is refused");

	/* a megabyte of one object's keys: the duplicate check stays fast */
	big = malloc(JSON_MAX_SIZE + 2);
	n = 0;
	big[n++] = '{';
	for (int i = 0; n < (1u << 20) - 32; i++)
		n += (size_t)sprintf(big + n, "%s\"k%d\":%d", i ? "," : "", i, i);
	big[n++] = '}';
	T_EQ(json_parse(&doc, big, n, &err), 0, "a 1 MiB object with ~80000 keys parses");
	T_OK(json_get(&doc, json_root(&doc), "k4242") != NULL, "and its keys are found");

	/* what an image configuration with a long history looks like, at the
	 * limit: 4 MiB of {"created_by": "..."} entries */
	n = (size_t)sprintf(big, "{\"history\":[");
	for (entries = 0; n < JSON_MAX_SIZE - 600; entries++) {
		n += (size_t)sprintf(big + n, "%s{\"created\":\"2024-01-01T00:00:00Z\",\"created_by\":\"",
				     entries ? "," : "");
		memset(big + n, 'x', 400);
		n += 400;
		n += (size_t)sprintf(big + n, "\"}");
	}
	n += (size_t)sprintf(big + n, "]}");
	T_OK(n > JSON_MAX_SIZE - 1000 && n <= JSON_MAX_SIZE, "(a %zu-byte configuration)", n);
	T_EQ(json_parse(&doc, big, n, &err), 0, "a 4 MiB image configuration (a long history) parses: %s",
	     err.msg);
	T_EQ(json_root(&doc) ? json_get(&doc, json_root(&doc), "history")->n : 0, entries,
	     "with every entry of its history");

	/* as many values as 1 MiB could ever hold, and no more */
	n = 0;
	big[n++] = '[';
	for (unsigned i = 0; i < JSON_MAX_TOKENS - 1; i++) {
		big[n++] = i ? ',' : '0';
		if (i)
			big[n++] = '0';
	}
	big[n++] = ']';
	T_EQ(json_parse(&doc, big, n, &err), 0, "an array of %u zeros (%u values) parses",
	     JSON_MAX_TOKENS - 1, JSON_MAX_TOKENS);
	big[n - 1] = ',';
	big[n++] = '0';
	big[n++] = ']';
	T_EQ(json_parse(&doc, big, n, &err), -E2BIG, "one more value is refused");
	T_STREQ(err.msg, "byte 1048575: more than 524288 values", "and says so, where");

	memset(big, ' ', JSON_MAX_SIZE + 1);
	big[0] = '1';
	T_EQ(json_parse(&doc, big, JSON_MAX_SIZE + 1, &err), -E2BIG, "more than 4 MiB is refused");
	T_STREQ(err.msg, "4194305 bytes of JSON, more than the 4194304 allowed", "and says so");
	free(big);
	json_free(&doc);
	T_OK(doc.tok.v == NULL && json_root(&doc) == NULL, "json_free leaves an empty doc");
}

int main(void)
{
	test_netconf();
	test_strings();
	test_numbers();
	test_errors();
	test_limits();
	json_free(&doc);
	return t_done();
}
