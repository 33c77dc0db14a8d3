/* pow_rec.c - benchmark driver for pow_rec(x, n) of src/recursion.c,
 * specialized for n = 6 (wiper spec: --static arg1=6).
 *
 * Usage: pow_rec REPS X   calls pow_rec(X, 6) REPS times, folds the results
 * into acc = acc * 31 + r (unsigned), prints acc; exit status = acc & 0x7f,
 * or 2 on bad usage.
 *
 * Built without HAND: the original pow_rec of src/recursion.c (its main
 * renamed program_main). Built with -DHAND: pow_rec written by hand for
 * n = 6 (same name and signature; n is unused).
 */
#include "bench.h"

#ifdef HAND
/* Hand-specialized pow_rec: the recursion unfolded 6 times,
 * x * (x * (x * (x * (x * (x * 1))))). */
WIPER_TARGET int pow_rec(int x, int n)
{
	unsigned int u = (unsigned int)x;

	(void)n;
	return (int)(u * (u * (u * (u * (u * u)))));
}
#else
#define main program_main
#include "../src/recursion.c"
#undef main
#endif

int main(int argc, char **argv)
{
	unsigned int acc = 0;
	int reps, x, i;

	reps = bench_reps(argc, argv, 1, "usage: pow_rec REPS X\n");
	if (reps < 0)
		return 2;
	x = parse_int(argv[2]);
	for (i = 0; i < reps; i++)
		acc = bench_fold(acc, pow_rec(x, 6));
	return bench_report(acc);
}
