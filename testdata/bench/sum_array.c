/* sum_array.c - benchmark driver for sum_array(a, n) of src/calls.c,
 * specialized for n = 8 (wiper spec: --static arg1=8).
 *
 * Usage: sum_array REPS V0 V1 V2 V3 V4 V5 V6 V7   fills int v[8] with the
 * Vs, calls sum_array(v, 8) REPS times, folds the results into
 * acc = acc * 31 + r (unsigned), prints acc; exit status = acc & 0x7f, or 2
 * on bad usage.
 *
 * Built without HAND: the original sum_array of src/calls.c (its main
 * renamed program_main). Built with -DHAND: sum_array written by hand for
 * n = 8 (same name and signature; n is unused).
 */
#include "bench.h"

#ifdef HAND
/* Hand-specialized sum_array: the loop unrolled 8 times. */
WIPER_TARGET int sum_array(const int *a, int n)
{
	unsigned int s;

	(void)n;
	s = (unsigned int)a[0];
	s += (unsigned int)a[1];
	s += (unsigned int)a[2];
	s += (unsigned int)a[3];
	s += (unsigned int)a[4];
	s += (unsigned int)a[5];
	s += (unsigned int)a[6];
	s += (unsigned int)a[7];
	return (int)s;
}
#else
#define main program_main
#include "../src/calls.c"
#undef main
#endif

int main(int argc, char **argv)
{
	unsigned int acc = 0;
	int v[8];
	int reps, i;

	reps = bench_reps(argc, argv, 8, "usage: sum_array REPS V0 V1 V2 V3 V4 V5 V6 V7\n");
	if (reps < 0)
		return 2;
	for (i = 0; i < 8; i++)
		v[i] = parse_int(argv[2 + i]);
	for (i = 0; i < reps; i++)
		acc = bench_fold(acc, sum_array(v, 8));
	return bench_report(acc);
}
