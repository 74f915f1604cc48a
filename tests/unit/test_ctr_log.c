/* test_ctr_log.c - runtime/ctr_log.c: the size cap with one rotation, --tail,
 * and a follower's cursor across a rotation (no byte lost or repeated). */
#include "runtime/ctr/ctr.h"
#include "t.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static char dir[4096];

static long file_size(const char *name)
{
	char path[4200];
	struct stat st;

	snprintf(path, sizeof(path), "%s/logs/%s", dir, name);
	return stat(path, &st) == 0 ? (long)st.st_size : -1;
}

static const char *read_all(long tail)
{
	static struct buf b;
	static struct err e;

	buf_free(&b);
	buf_init(&b);
	if (ctr_log_read(dir, "c", tail, &b, &e) < 0)
		return e.msg;
	buf_append(&b, "", 1);
	return b.data;
}

int main(void)
{
	struct ctr_log l;
	struct err e = { 0 };
	struct buf got;
	char cursor[64], next[64], line[64];
	const char *tmp = getenv("TMPDIR");

	snprintf(dir, sizeof(dir), "%s/ctrlog.XXXXXX", tmp ? tmp : "/tmp");
	if (!mkdtemp(dir))
		return 1;

	T_STREQ(read_all(-1), "", "a log that was never written reads as empty");
	ctr_log_cursor(dir, "c", cursor, sizeof(cursor));
	T_STREQ(cursor, "0:0", "and its cursor is 0:0");

	T_EQ(ctr_log_open(&l, dir, "c", 100, &e), 0, "open a log capped at 100 bytes: %s", e.msg);
	ctr_log_write(&l, "one\ntwo\nthree\n", 14);
	T_STREQ(read_all(-1), "one\ntwo\nthree\n", "what was written reads back");
	T_STREQ(read_all(2), "two\nthree\n", "--tail 2: the last two lines");
	T_STREQ(read_all(0), "", "--tail 0: nothing");
	T_STREQ(read_all(10), "one\ntwo\nthree\n", "--tail beyond the start: everything");
	ctr_log_write(&l, "partial", 7);
	T_STREQ(read_all(1), "partial", "an unfinished last line counts as a line");

	/* a follower at the current end */
	ctr_log_cursor(dir, "c", cursor, sizeof(cursor));
	buf_init(&got);
	for (int i = 0; i < 30; i++) {     /* 30 * 10 bytes: rotates twice at 100 */
		snprintf(line, sizeof(line), "line %03d\n", i);
		ctr_log_write(&l, line, strlen(line));
		if (i % 5 == 4) {          /* the follower polls every 50 bytes */
			T_EQ(ctr_log_from(dir, "c", cursor, &got, next, sizeof(next), &e), 0,
			     "poll after line %d", i);
			snprintf(cursor, sizeof(cursor), "%s", next);
		}
	}
	T_EQ(ctr_log_from(dir, "c", cursor, &got, next, sizeof(next), &e), 0, "a last poll");
	buf_append(&got, "", 1);
	{
		char want[512] = "";

		for (int i = 0; i < 30; i++)
			snprintf(want + strlen(want), sizeof(want) - strlen(want), "line %03d\n", i);
		T_STREQ(got.data, want, "the follower saw every byte once, in order, across rotations");
	}
	T_OK(file_size("c.log") <= 100 && file_size("c.log.1") <= 100,
	     "each file stays within the cap (%ld, %ld)", file_size("c.log.1"), file_size("c.log"));
	T_EQ(file_size("c.log.1") + file_size("c.log") >= 100, 1, "and at least the cap is kept");
	T_OK(strstr(read_all(1), "line 029\n") != NULL, "the newest line is in the current file");
	T_OK(strstr(read_all(-1), "one\n") == NULL, "the oldest were dropped by the second rotation");

	/* a cursor the log no longer has: from the start of the current file */
	buf_reset(&got);
	T_EQ(ctr_log_from(dir, "c", "999999999:5", &got, next, sizeof(next), &e), 0,
	     "an unknown inode is not an error");
	buf_append(&got, "", 1);
	T_STREQ(got.data, read_all(-1) + (file_size("c.log.1") > 0 ? file_size("c.log.1") : 0),
		"it reads the current file from its start");
	T_OK(ctr_log_from(dir, "c", "nonsense", &got, next, sizeof(next), &e) < 0,
	     "a malformed cursor is refused");
	T_STREQ(e.msg, "bad log cursor 'nonsense' (expected INODE:OFFSET)", "with this message");

	/* a single write larger than the cap is split, never lost */
	{
		char big[250];

		memset(big, 'x', sizeof(big));
		ctr_log_write(&l, big, sizeof(big));
		T_OK(file_size("c.log") <= 100, "a write bigger than the cap keeps the cap (%ld)",
		     file_size("c.log"));
	}
	ctr_log_close(&l);
	buf_free(&got);
	read_all(-1);
	{
		char cmd[4200];

		snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
		if (system(cmd) != 0)
			return 1;
	}
	return t_done();
}
