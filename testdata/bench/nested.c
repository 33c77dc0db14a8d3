/* nested.c - benchmark driver for nested(n, m) of src/loops.c, specialized
 * for n = 4 (wiper spec: --static arg0=4).
 *
 * Usage: nested REPS M   calls nested(4, M) REPS times, folds the results
 * into acc = acc * 31 + r (unsigned), prints acc; exit status = acc & 0x7f,
 * or 2 on bad usage.
 *
 * Built without HAND: the original nested of src/loops.c (its main renamed
 * program_main). Built with -DHAND: nested written by hand for n = 4 (same
 * name and signature; n is unused).
 */
#include "bench.h"

#ifdef HAND
/* Hand-specialized nested: the outer loop unrolled for i = 0, 1, 2, 3; each
 * inner loop over j < m stays a loop (m is dynamic). */
WIPER_TARGET int nested(int n, int m)
{
	unsigned int s = 0;
	int j;

	(void)n;
	for (j = 0; j < m; j++) /* i = 0: (0 * j) ^ (0 + j) = j */
		s += (unsigned int)j;
	for (j = 0; j < m; j++) /* i = 1 */
		s += (unsigned int)j ^ (1u + (unsigned int)j);
	for (j = 0; j < m; j++) /* i = 2 */
		s += (2u * (unsigned int)j) ^ (2u + (unsigned int)j);
	for (j = 0; j < m; j++) /* i = 3 */
		s += (3u * (unsigned int)j) ^ (3u + (unsigned int)j);
	return (int)s;
}
#else
#define main program_main
#include "../src/loops.c"
#undef main
#endif

int main(int argc, char **argv)
{
	unsigned int acc = 0;
	int reps, m, i;

	reps = bench_reps(argc, argv, 1, "usage: nested REPS M\n");
	if (reps < 0)
		return 2;
	m = parse_int(argv[2]);
	for (i = 0; i < reps; i++)
		acc = bench_fold(acc, nested(4, m));
	return bench_report(acc);
}
