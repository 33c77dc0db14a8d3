/* isort.c - benchmark driver for isort(a, n) of src/arrays.c (insertion
 * sort), specialized for n = 8 (wiper spec: --static arg1=8); the array is
 * dynamic.
 *
 * Usage: isort REPS A0 ... A7   REPS times copies A0..A7 into an array and
 * calls isort on it, folds the sorted elements into acc = acc * 31 + r
 * (unsigned), then prints acc and the last sorted array on one line;
 * exit status = acc & 0x7f, or 2 on bad usage.
 *
 * Built without HAND: the original isort of src/arrays.c (its main renamed
 * program_main). Built with -DHAND: isort written by hand for n = 8 (same
 * name and signature; n is unused): the same insertion sort with the
 * constant bound, which gcc may unroll.
 */
#include "bench.h"

#ifdef HAND
/* Hand-specialized isort: n = 8. */
WIPER_TARGET void isort(int *a, int n)
{
	int i, j;

	(void)n;
	for (i = 1; i < 8; i++) {
		int v = a[i];
		for (j = i - 1; j >= 0 && a[j] > v; j--)
			a[j + 1] = a[j];
		a[j + 1] = v;
	}
}
#else
#define main program_main
#include "../src/arrays.c"
#undef main
#endif

int main(int argc, char **argv)
{
	unsigned int acc = 0;
	int reps, i, j, in[8], a[8], status;

	reps = bench_reps(argc, argv, 8, "usage: isort REPS A0 ... A7\n");
	if (reps < 0)
		return 2;
	for (j = 0; j < 8; j++)
		a[j] = in[j] = parse_int(argv[2 + j]);
	for (i = 0; i < reps; i++) {
		for (j = 0; j < 8; j++)
			a[j] = in[j];
		isort(a, 8);
		for (j = 0; j < 8; j++)
			acc = bench_fold(acc, a[j]);
	}
	status = bench_report(acc);
	for (j = 0; j < 8; j++) {
		if (j > 0)
			print_str(" ");
		print_int(a[j]);
	}
	print_nl();
	return status;
}
