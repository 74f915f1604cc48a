/* index.c - lib.h's name index: objects found by name in O(1).
 *
 * Open addressing with linear probing over a power-of-two table kept at most
 * half full; removal shifts the following run back instead of leaving
 * tombstones, so a table that sees many adds and removes (containers coming
 * and going for months) never degrades. */
#include "lib/lib.h"

#include <strings.h>

#define INDEX_MIN_CAP 8

static uint64_t name_hash(const char *s)
{
	uint64_t h = HASH64_INIT;

	for (; *s; s++) {
		unsigned char c = (unsigned char)*s;

		if (c >= 'A' && c <= 'Z')
			c += 'a' - 'A';
		h = (h ^ c) * 1099511628211ull;
	}
	return h;
}

static size_t slot_of(const struct name_index *ix, const char *name)
{
	return (size_t)name_hash(name) & (ix->cap - 1);
}

/* The slot holding name, or the empty slot where it would go. */
static size_t probe(const struct name_index *ix, const char *name)
{
	size_t i = slot_of(ix, name);

	while (ix->slot[i] && strcasecmp(ix->name_of(ix->slot[i]), name))
		i = (i + 1) & (ix->cap - 1);
	return i;
}

void *name_index_get(const struct name_index *ix, const char *name)
{
	return ix->cap ? ix->slot[probe(ix, name)] : NULL;
}

static int resize(struct name_index *ix, size_t cap)
{
	void **old = ix->slot;
	size_t old_cap = ix->cap;

	if (cap > SIZE_MAX / sizeof(void *))
		return -ENOMEM;
	ix->slot = calloc(cap, sizeof(void *));
	if (!ix->slot) {
		ix->slot = old;
		return -ENOMEM;
	}
	ix->cap = cap;
	for (size_t i = 0; i < old_cap; i++)
		if (old[i])
			ix->slot[probe(ix, ix->name_of(old[i]))] = old[i];
	free(old);
	return 0;
}

void *name_index_put(struct name_index *ix, void *obj)
{
	const char *name = ix->name_of(obj);
	void *prev;
	size_t i;

	if (2 * (ix->n + 1) > ix->cap &&
	    resize(ix, ix->cap ? 2 * ix->cap : INDEX_MIN_CAP) < 0) {
		errno = ENOMEM;
		return NULL;
	}
	i = probe(ix, name);
	prev = ix->slot[i];
	ix->slot[i] = obj;
	if (!prev)
		ix->n++;
	return prev ? prev : obj;
}

void *name_index_del(struct name_index *ix, const char *name)
{
	size_t mask = ix->cap - 1, i, j;
	void *obj;

	if (!ix->cap)
		return NULL;
	i = probe(ix, name);
	obj = ix->slot[i];
	if (!obj)
		return NULL;
	ix->slot[i] = NULL;
	ix->n--;
	/* Move back every later entry of the run that the hole now cuts off
	 * from its home slot (Knuth's algorithm R). */
	for (j = (i + 1) & mask; ix->slot[j]; j = (j + 1) & mask) {
		size_t home = slot_of(ix, ix->name_of(ix->slot[j]));

		if (((j - home) & mask) >= ((j - i) & mask)) {
			ix->slot[i] = ix->slot[j];
			ix->slot[j] = NULL;
			i = j;
		}
	}
	return obj;
}

void name_index_free(struct name_index *ix)
{
	free(ix->slot);
	ix->slot = NULL;
	ix->cap = ix->n = 0;
}
