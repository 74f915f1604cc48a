/* test_index.c - lib/ name index: lookups case-insensitive, replace, remove
 * (backward shift), and a long random add/remove run checked against a
 * plain list. */
#include "lib/lib.h"
#include "t.h"

#include <stdio.h>
#include <strings.h>

struct item {
	char name[16];
	int value;
};

static const char *item_name(const void *o)
{
	return ((const struct item *)o)->name;
}

static void test_basics(void)
{
	struct name_index ix = { .name_of = item_name };
	struct item a = { "web", 1 }, b = { "db", 2 }, a2 = { "WEB", 3 };

	T_OK(!name_index_get(&ix, "web"), "an empty index finds nothing");
	T_OK(!name_index_del(&ix, "web"), "and removes nothing");
	T_OK(name_index_put(&ix, &a) == &a, "a new name is added");
	T_OK(name_index_put(&ix, &b) == &b, "another");
	T_OK(name_index_get(&ix, "Web") == &a, "names compare case-insensitively");
	T_OK(name_index_put(&ix, &a2) == &a, "putting the same name returns the object it replaces");
	T_OK(name_index_get(&ix, "web") == &a2 && ix.n == 2, "which is gone from the index");
	T_OK(name_index_del(&ix, "WEB") == &a2 && !name_index_get(&ix, "web"), "remove");
	T_OK(name_index_get(&ix, "db") == &b && ix.n == 1, "the others stay");
	name_index_free(&ix);
	T_OK(!ix.slot && !ix.n && !name_index_get(&ix, "db"), "free leaves an empty index");
}

/* Adds and removes at random against a list: every name present is found,
 * every name removed is not, whatever runs the probing made. */
static void test_random(void)
{
	enum { N = 2000, STEPS = 200000 };
	static struct item items[N];
	static bool in[N];
	struct name_index ix = { .name_of = item_name };
	unsigned seed = 12345;
	size_t present = 0, wrong = 0;

	for (int i = 0; i < N; i++)
		snprintf(items[i].name, sizeof(items[i].name), "c%d", i);
	for (int s = 0; s < STEPS; s++) {
		int i;

		seed = seed * 1103515245 + 12345;
		i = (int)((seed >> 8) % N);
		if (in[i]) {
			wrong += name_index_del(&ix, items[i].name) != &items[i];
			in[i] = false;
			present--;
		} else {
			wrong += name_index_put(&ix, &items[i]) != &items[i];
			in[i] = true;
			present++;
		}
		if (s % 1000 == 0)
			for (int k = 0; k < N; k++)
				wrong += name_index_get(&ix, items[k].name) != (in[k] ? &items[k] : NULL);
	}
	T_EQ(wrong, 0, "200,000 random adds and removes: every lookup finds exactly what is in");
	T_EQ(ix.n, present, "the count follows");
	T_OK(ix.cap >= 2 * ix.n, "the table stays at most half full");
	name_index_free(&ix);
}

int main(void)
{
	test_basics();
	test_random();
	return t_done();
}
