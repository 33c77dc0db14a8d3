/* power.c - benchmark driver for power(x, y, n) of src/power.c, specialized
 * for y = 3, n = 5 (wiper spec: --static arg1=3 --static arg2=5).
 *
 * Usage: power REPS X   calls power(X, 3, 5) REPS times, folds the results
 * into acc = acc * 31 + r (unsigned), prints acc; exit status = acc & 0x7f,
 * or 2 on bad usage.
 *
 * Built without HAND: the original power of src/power.c (its main renamed
 * program_main). Built with -DHAND: power written by hand for y = 3, n = 5
 * (same name and signature; the static parameters are unused).
 */
#include "bench.h"

#ifdef HAND
/* Hand-specialized power: a = (x + 3)^5, the loop unrolled 5 times. */
WIPER_TARGET int power(int x, int y, int n)
{
	unsigned int b = (unsigned int)x + 3u;
	unsigned int a = b * b * b * b * b;

	(void)y;
	(void)n;
	return (int)a;
}
#else
#define main program_main
#include "../src/power.c"
#undef main
#endif

int main(int argc, char **argv)
{
	unsigned int acc = 0;
	int reps, x, i;

	reps = bench_reps(argc, argv, 1, "usage: power REPS X\n");
	if (reps < 0)
		return 2;
	x = parse_int(argv[2]);
	for (i = 0; i < reps; i++)
		acc = bench_fold(acc, power(x, 3, 5));
	return bench_report(acc);
}
