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
#include "../rt/rt.h"

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

/* The last accumulator. This writable global gives every bench binary a
 * writable segment: valgrind (3.19) reads no symbols from an executable
 * without one, and callgrind could not name the functions. */
unsigned int bench_acc;

int main(int argc, char **argv)
{
	unsigned int acc = 0;
	int reps, x, i;

	if (argc < 3) {
		print_str("usage: pow_rec REPS X\n");
		return 2;
	}
	reps = parse_int(argv[1]);
	x = parse_int(argv[2]);
	for (i = 0; i < reps; i++)
		acc = acc * 31u + (unsigned int)pow_rec(x, 6);
	bench_acc = acc;
	print_int((int)acc);
	print_nl();
	return (int)(acc & 0x7f);
}
