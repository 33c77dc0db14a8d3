/* dispatch.c - benchmark driver for dispatch(op, a, b) of src/switch.c,
 * specialized for op = 9 (wiper spec: --static arg0=9): the case that calls
 * both helpers, r = negate(a) + twice(b), and adds 9 to the global hits[0].
 *
 * Usage: dispatch REPS A B   calls dispatch(9, A, B) REPS times, folds the
 * results into acc = acc * 31 + r (unsigned), prints, one per line:
 *   acc, last_op, hits[0] + hits[1] + hits[2] + hits[3]
 * exit status = acc & 0x7f, or 2 on bad usage.
 *
 * Built without HAND: the original dispatch of src/switch.c (its main
 * renamed program_main). Built with -DHAND: dispatch written by hand for
 * op = 9 (same name and signature; op is unused), with the same globals;
 * the bodies of the helpers twice (x + x) and negate (-x) are written in
 * place of the calls.
 */
#include "bench.h"

#ifdef HAND
int last_op;  /* as in src/switch.c; case 9 leaves it alone */
int hits[4];  /* as in src/switch.c; case 9 adds 9 to hits[0] */

/* Hand-specialized dispatch: case 9 only, r = -a + (b + b). */
WIPER_TARGET int dispatch(int op, int a, int b)
{
	(void)op;
	hits[0] += 9;
	return (int)((0u - (unsigned int)a) + ((unsigned int)b + (unsigned int)b));
}
#else
#define main program_main
#include "../src/switch.c"
#undef main
#endif

int main(int argc, char **argv)
{
	unsigned int acc = 0;
	int reps, a, b, i, status;

	reps = bench_reps(argc, argv, 2, "usage: dispatch REPS A B\n");
	if (reps < 0)
		return 2;
	a = parse_int(argv[2]);
	b = parse_int(argv[3]);
	for (i = 0; i < reps; i++)
		acc = bench_fold(acc, dispatch(9, a, b));
	status = bench_report(acc);
	print_int(last_op);
	print_nl();
	print_int(hits[0] + hits[1] + hits[2] + hits[3]);
	print_nl();
	return status;
}
