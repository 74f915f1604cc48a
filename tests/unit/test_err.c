/* test_err.c - lib/err.c: every Linux errno by its name, and an errno the C
 * library has no words for (musl: EXFULL and 38 others) printed by name
 * alone instead of "No error information". */
#include "lib/lib.h"
#include "t.h"

#include <errno.h>

static void test_names(void)
{
	char nb[16], what[64];
	int unnamed = 0;

	/* 41 and 58 are holes in asm-generic/errno.h (EWOULDBLOCK and
	 * EDEADLOCK are aliases); every other code up to EHWPOISON has a name */
	for (int code = 1; code <= EHWPOISON; code++) {
		const char *n = errno_name(code, nb);

		if (code == 41 || code == 58)
			continue;
		if (n[0] != 'E' || !strncmp(n, "errno ", 6)) {
			printf("#   errno %d has no name: %s\n", code, n);
			unnamed++;
		}
	}
	T_EQ(unnamed, 0, "every errno from 1 to EHWPOISON (%d) has its symbolic name", EHWPOISON);
	T_STREQ(errno_name(EXFULL, nb), "EXFULL", "EXFULL (a full bridge) by name");
	T_STREQ(errno_name(ENOTUNIQ, nb), "ENOTUNIQ", "ENOTUNIQ by name");
	T_STREQ(errno_name(EWOULDBLOCK, nb), "EAGAIN", "an alias goes by the name of its value");
	T_STREQ(errno_name(4095, nb), "errno 4095", "a code outside the table by number");
	T_STREQ(errno_name(0, nb), "errno 0", "0 is not an error");
	snprintf(what, sizeof(what), "%s", errno_name(EHWPOISON + 1, nb));
	T_STREQ(what, "errno 134", "past the last errno: by number");
}

static void test_text(void)
{
	char tb[ERRNO_TEXT_MAX];
	struct err e;
	size_t longest = 0;

	err_clear(&e);
	err_sys(&e, EXFULL, "attach web to bridge berth0");
#ifdef __GLIBC__
	T_STREQ(e.msg, "attach web to bridge berth0: Exchange full (EXFULL)",
		"EXFULL: the C library's text and the name");
#else
	T_STREQ(e.msg, "attach web to bridge berth0: EXFULL",
		"EXFULL: musl has no text, the name stands alone");
#endif
	T_OK(!strstr(e.msg, "No error information") && !strstr(e.msg, "errno 54"),
	     "never 'No error information (errno 54)'");
	err_sys(&e, 4095, "ioctl");
	T_STREQ(e.msg, "ioctl: errno 4095",
		"a code the C library has no text for: the number alone, not 'Unknown error'");
	err_sys(&e, EEXIST, "create veth");
	T_STREQ(e.msg, "create veth: File exists (EEXIST)", "a code with text: text and name");
	T_STREQ(errno_text(ENOENT, tb, sizeof(tb)), "No such file or directory (ENOENT)",
		"errno_text words a code as err_sys does");
	for (int code = 1; code <= EHWPOISON; code++) {
		size_t n = strlen(errno_text(code, tb, sizeof(tb)));

		longest = n > longest ? n : longest;
	}
	T_OK(longest < ERRNO_TEXT_MAX - 1, "ERRNO_TEXT_MAX (%d) holds the longest text (%zu)",
	     ERRNO_TEXT_MAX, longest);
}

int main(void)
{
	test_names();
	test_text();
	return t_done();
}
