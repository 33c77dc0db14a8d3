/* prod.c - benchmark driver for prod(x, y, n) of src/prod.c, specialized
 * for y = 2, n = 8 (wiper spec: --static arg1=2 --static arg2=8).
 *
 * Usage: prod REPS X   calls prod(X, 2, 8) REPS times, folds the results
 * into acc = acc * 31 + r (unsigned), prints acc; exit status = acc & 0x7f,
 * or 2 on bad usage.
 *
 * Built without HAND: the original prod of src/prod.c (its main renamed
 * program_main). Built with -DHAND: prod written by hand for y = 2, n = 8
 * (same name and signature; the static parameters are unused).
 */
#include "bench.h"

#ifdef HAND
/* Hand-specialized prod: the loop unrolled 8 times, adding x + 2 each. */
WIPER_TARGET int prod(int x, int y, int n)
{
	unsigned int s = (unsigned int)x + 2u;
	unsigned int p = s + s + s + s + s + s + s + s;

	(void)y;
	(void)n;
	return (int)p;
}
#else
#define main program_main
#include "../src/prod.c"
#undef main
#endif

int main(int argc, char **argv)
{
	unsigned int acc = 0;
	int reps, x, i;

	reps = bench_reps(argc, argv, 1, "usage: prod REPS X\n");
	if (reps < 0)
		return 2;
	x = parse_int(argv[2]);
	for (i = 0; i < reps; i++)
		acc = bench_fold(acc, prod(x, 2, 8));
	return bench_report(acc);
}
