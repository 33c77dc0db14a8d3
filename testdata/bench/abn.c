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
#include "../rt/rt.h"

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

/* The last accumulator. This writable global gives every bench binary a
 * writable segment: valgrind (3.19) reads no symbols from an executable
 * without one, and callgrind could not name the functions. */
unsigned int bench_acc;

int main(int argc, char **argv)
{
	unsigned int acc = 0;
	int reps, a, v, i;

	if (argc < 4) {
		print_str("usage: abn REPS A V\n");
		return 2;
	}
	reps = parse_int(argv[1]);
	a = parse_int(argv[2]);
	v = parse_int(argv[3]);
	for (i = 0; i < reps; i++)
		acc = acc * 31u + (unsigned int)abn(a, v, 3);
	bench_acc = acc;
	print_int((int)acc);
	print_nl();
	return (int)(acc & 0x7f);
}
