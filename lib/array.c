/* array.c - the growth step behind lib.h's array_reserve and array_push. */
#include "lib/lib.h"

/* The first allocation holds at least this many elements: small arrays are
 * the common case and four is where realloc stops being called per push. */
#define ARRAY_MIN_CAP 4

void *array_grow(void *v, size_t *cap, size_t want, size_t size, size_t max_count)
{
	/* no object may exceed PTRDIFF_MAX bytes, or pointer differences break */
	size_t limit = PTRDIFF_MAX / size, ncap;
	void *nv;

	if (limit > max_count)
		limit = max_count;
	if (want > limit) {
		errno = ENOMEM;
		return NULL;
	}
	ncap = *cap <= limit / 2 ? 2 * *cap : limit;
	if (ncap < ARRAY_MIN_CAP)
		ncap = ARRAY_MIN_CAP;
	if (ncap < want)
		ncap = want;
	if (ncap > limit)
		ncap = limit;
	nv = realloc(v, ncap * size);      /* ncap * size <= PTRDIFF_MAX */
	if (!nv) {
		errno = ENOMEM;
		return NULL;
	}
	*cap = ncap;
	return nv;
}
