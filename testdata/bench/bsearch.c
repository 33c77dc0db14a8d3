/* bsearch.c - benchmark driver for bsearch_tab(tab, n, key) of
 * src/arrays.c (binary search), specialized for tab = sorted16 (a static
 * table of 16 ascending values) and n = 16; the key is dynamic
 * (wiper spec: --static
 * arg0=@i32:-50,-7,0,3,8,13,21,34,55,89,144,233,377,610,987,1597
 * --static arg1=16).
 *
 * Usage: bsearch REPS KEY   calls bsearch_tab(sorted16, 16, KEY + i) for
 * i = 0 .. REPS-1 (so hits and misses alternate), folds the results into
 * acc = acc * 31 + r (unsigned), prints acc;
 * exit status = acc & 0x7f, or 2 on bad usage.
 *
 * Built without HAND: the original bsearch_tab and sorted16 of src/arrays.c
 * (its main renamed program_main). Built with -DHAND: bsearch_tab written
 * by hand for that table (same name and signature; tab and n are unused),
 * and a copy of sorted16 for the call.
 */
#include "bench.h"

#ifdef HAND
static const int sorted16[16] = {
	-50, -7, 0, 3, 8, 13, 21, 34, 55, 89, 144, 233, 377, 610, 987, 1597,
};

/* Hand-specialized bsearch_tab: 16 = 2^4 entries, so four halving steps
 * over the constant table find the last entry <= key (the values are
 * distinct: its index is the one the loop returns). */
WIPER_TARGET int bsearch_tab(const int *tab, int n, int key)
{
	unsigned int i = 0;

	(void)tab;
	(void)n;
	if (sorted16[i + 8] <= key)
		i += 8;
	if (sorted16[i + 4] <= key)
		i += 4;
	if (sorted16[i + 2] <= key)
		i += 2;
	if (sorted16[i + 1] <= key)
		i += 1;
	return sorted16[i] == key ? (int)i : -1;
}
#else
#define main program_main
#include "../src/arrays.c"
#undef main
#endif

int main(int argc, char **argv)
{
	unsigned int acc = 0;
	int reps, key, i;

	reps = bench_reps(argc, argv, 1, "usage: bsearch REPS KEY\n");
	if (reps < 0)
		return 2;
	key = parse_int(argv[2]);
	for (i = 0; i < reps; i++)
		acc = bench_fold(acc, bsearch_tab(sorted16, 16, (int)((unsigned int)key + (unsigned int)i)));
	return bench_report(acc);
}
