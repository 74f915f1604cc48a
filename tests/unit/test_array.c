/* test_array.c - lib/ growable arrays: push, reserve, zeroing, free, overflow. */
#include "lib/lib.h"
#include "t.h"

#include <errno.h>
#include <stdint.h>

struct point {
	int x, y;
	char tag[8];
};

/* A named array, as a parameter: the macros take any struct of v, n, cap. */
struct points {
	struct point *v;
	size_t n, cap;
};

static int add_point(struct points *a, int x)
{
	struct point *p = array_push(a);

	if (!p)
		return -ENOMEM;
	p->x = x;
	p->y = -x;
	return 0;
}

static void test_push_many(void)
{
	struct points a = { 0 };
	bool kept = true;
	size_t moves = 0;
	struct point *last = NULL;

	for (int i = 0; i < 100000; i++) {
		if (add_point(&a, i) < 0)
			break;
		if (a.v != last)
			moves++;
		last = a.v;
	}
	T_EQ(a.n, 100000, "100,000 pushes all land");
	T_OK(a.cap >= a.n && a.cap < 2 * a.n, "capacity covers them without doubling waste (%zu)",
	     a.cap);
	T_OK(moves <= 20, "capacity doubles: %zu reallocations for 100,000 pushes", moves);
	for (size_t i = 0; i < a.n; i++)
		kept &= a.v[i].x == (int)i && a.v[i].y == -(int)i;
	T_OK(kept, "every element survives the moves, in order");
	array_free(&a);
	T_OK(!a.v && !a.n && !a.cap, "array_free leaves the array empty");
	T_EQ(add_point(&a, 7), 0, "a freed array takes pushes again");
	T_OK(a.n == 1 && a.v[0].x == 7, "and holds them");
	array_free(&a);

	/* all zero is a valid empty array, even one that never grew */
	ARRAY(int) empty = { 0 };
	array_free(&empty);
	T_OK(!empty.v && !empty.n && !empty.cap, "freeing an array that never grew is harmless");
}

static void test_zeroed(void)
{
	ARRAY(struct point) a = { 0 };
	struct point *p;

	p = array_push(&a);
	p->x = 1;
	memcpy(p->tag, "dirty", 6);
	a.n--;                      /* drop it: the slot keeps its bytes */
	p = array_push(&a);
	T_OK(p == &a.v[0], "the dropped slot is reused");
	T_OK(p->x == 0 && p->y == 0 && !p->tag[0], "a pushed slot is zeroed, even a reused one");
	T_OK(array_reserve(&a, 1000) == 0, "reserve 1000");
	for (int i = 0; i < 999; i++)
		array_push(&a)->x = 5;
	p = array_push(&a);
	T_OK(p && p->x == 0 && a.n == 1001, "a push past the reserve is zeroed too");
	array_free(&a);
}

static void test_reserve(void)
{
	ARRAY(uint64_t) a = { 0 };
	uint64_t *v;
	bool stable = true;

	T_EQ(array_reserve(&a, 0), 0, "reserving nothing succeeds");
	T_OK(!a.v && !a.cap, "and allocates nothing");
	T_EQ(array_reserve(&a, 1000), 0, "reserve 1000");
	T_EQ(a.n, 0, "reserving adds no elements");
	T_EQ(a.cap, 1000, "the first reserve takes exactly what was asked");
	v = a.v;
	for (int i = 0; i < 1000; i++)
		stable &= array_push(&a) == &v[i];
	T_OK(stable, "pushes within the reserve never move the array");
	T_EQ(array_reserve(&a, 10), 0, "reserving less than held succeeds");
	T_OK(a.cap == 1000 && a.v == v && a.n == 1000, "and never shrinks");
	array_push(&a);
	T_EQ(a.cap, 2000, "the push past it doubles");
	T_EQ(array_reserve(&a, 5000), 0, "a reserve beyond double");
	T_EQ(a.cap, 5000, "grows straight to the amount");
	array_free(&a);

	ARRAY(char) small = { 0 };
	array_push(&small);
	T_EQ(small.cap, 4, "the first push of a small array makes room for four");
	array_free(&small);
}

static void test_overflow(void)
{
	ARRAY(uint32_t) a = { 0 };
	ARRAY(char[1 << 20]) big = { 0 };
	struct {
		uint16_t *v;
		uint8_t n, cap;
	} tiny = { 0 };
	int ret;
	bool all = true;

	array_push(&a)[0] = 42;
	errno = 0;
	ret = array_reserve(&a, SIZE_MAX);
	T_EQ(ret, -ENOMEM, "reserving SIZE_MAX elements is refused as out of memory");
	T_EQ(errno, ENOMEM, "with errno ENOMEM");
	T_EQ(array_reserve(&a, SIZE_MAX / sizeof(uint32_t) + 1), -ENOMEM,
	     "a count whose byte size wraps around is refused, not allocated short");
	T_EQ(array_reserve(&a, PTRDIFF_MAX / sizeof(uint32_t) + 1), -ENOMEM,
	     "so is one beyond PTRDIFF_MAX bytes");
	T_OK(a.n == 1 && a.cap == 4 && a.v[0] == 42, "a refused reserve leaves the array as it was");
	array_free(&a);

	T_EQ(array_reserve(&big, (size_t)PTRDIFF_MAX / (1 << 20) + 1), -ENOMEM,
	     "large elements: the limit is in bytes, not elements");
	T_OK(!big.v && !big.cap, "nothing was allocated");
	T_OK(array_push(&big) != NULL, "an array of arrays takes a push");
	T_OK(big.v[0][0] == 0 && big.v[0][(1 << 20) - 1] == 0, "of a zeroed element");
	array_free(&big);

	for (int i = 0; i < UINT8_MAX; i++) {
		uint16_t *p = array_push(&tiny);
		if (!p) {
			all = false;
			break;
		}
		*p = (uint16_t)i;
	}
	T_OK(all && tiny.n == UINT8_MAX, "an array counted in uint8_t holds 255 elements");
	errno = 0;
	T_OK(array_push(&tiny) == NULL, "and refuses the 256th instead of wrapping its count");
	T_EQ(errno, ENOMEM, "as out of memory");
	T_OK(tiny.n == UINT8_MAX && tiny.v[254] == 254, "keeping what it had");
	T_EQ(array_reserve(&tiny, 256), -ENOMEM, "a reserve past its count type is refused too");
	array_free(&tiny);
}

static void test_evaluated_once(void)
{
	ARRAY(int) arr[3] = { { 0 } };
	int i = 0, k = 0;

	*array_push(&arr[i++]) = 1;
	T_EQ(i, 1, "array_push evaluates its argument once");
	T_OK(arr[0].n == 1 && arr[1].n == 0, "and pushes onto that array");
	T_EQ(array_reserve(&arr[i++], (size_t)(k += 10)), 0, "reserve");
	T_OK(i == 2 && k == 10, "array_reserve evaluates each argument once");
	T_EQ(arr[1].cap, 10, "and reserves in that array");
	array_free(&arr[--i]);
	T_OK(i == 1 && !arr[1].v && arr[0].v, "array_free evaluates its argument once");
	array_free(&arr[0]);
}

int main(void)
{
	test_push_many();
	test_zeroed();
	test_reserve();
	test_overflow();
	test_evaluated_once();
	return t_done();
}
