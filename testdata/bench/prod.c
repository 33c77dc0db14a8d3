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
#include "../rt/rt.h"

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

/* The last accumulator. This writable global gives every bench binary a
 * writable segment: valgrind (3.19) reads no symbols from an executable
 * without one, and callgrind could not name the functions. */
unsigned int bench_acc;

int main(int argc, char **argv)
{
	unsigned int acc = 0;
	int reps, x, i;

	if (argc < 3) {
		print_str("usage: prod REPS X\n");
		return 2;
	}
	reps = parse_int(argv[1]);
	x = parse_int(argv[2]);
	for (i = 0; i < reps; i++)
		acc = acc * 31u + (unsigned int)prod(x, 2, 8);
	bench_acc = acc;
	print_int((int)acc);
	print_nl();
	return (int)(acc & 0x7f);
}
