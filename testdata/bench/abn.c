/* abn.c - benchmark driver for abn(a, v, n) of src/abn.c, specialized for
 * n = 3 (wiper spec: --static arg2=3).
 *
 * Usage: abn REPS A V   calls abn(A, V, 3) REPS times, folds the results
 * into acc = acc * 31 + r (unsigned), prints acc; exit status = acc & 0x7f,
 * or 2 on bad usage.
 *
 * Built without HAND: the original abn of src/abn.c (its main renamed
 * program_main). Built with -DHAND: abn written by hand for n = 3 (same name
 * and signature; n is unused).
 */
#include "bench.h"

#ifdef HAND
/* Hand-specialized abn: b[3] = v, so a + b[3] is a + v; the other stores
 * into b are dead. */
WIPER_TARGET int abn(int a, int v, int n)
{
	(void)n;
	return (int)((unsigned int)a + (unsigned int)v);
}
#else
#define main program_main
#include "../src/abn.c"
#undef main
#endif

int main(int argc, char **argv)
{
	unsigned int acc = 0;
	int reps, a, v, i;

	reps = bench_reps(argc, argv, 2, "usage: abn REPS A V\n");
	if (reps < 0)
		return 2;
	a = parse_int(argv[2]);
	v = parse_int(argv[3]);
	for (i = 0; i < reps; i++)
		acc = bench_fold(acc, abn(a, v, 3));
	return bench_report(acc);
}
