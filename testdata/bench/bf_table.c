/* bf_table.c - benchmark driver for bf_table(prog, input, out) of
 * src/bftable.c (Brainfuck with a precomputed bracket table), specialized
 * for the program ",[[->++<]>.[-]<,]": each input byte doubled (mod 256),
 * by a loop adding 2 per turn, then the cell cleared by a loop
 * (wiper spec: --static arg0=@str:,[[->++<]>.[-]<,]).
 *
 * Usage: bf_table REPS INPUT   calls bf_table(PROG, INPUT, bft_out) REPS
 * times, folds the returned byte counts into acc = acc * 31 + n (unsigned),
 * then prints, one per line: acc, the output bytes of the last call, the sum
 * of those bytes (as unsigned chars); exit status = acc & 0x7f, or 2 on bad
 * usage.
 *
 * Built without HAND: the original bf_table and bft_out of src/bftable.c
 * (its main renamed program_main). Built with -DHAND: bf_table written by
 * hand for that program (same name and signature; prog is unused), and a
 * bft_out of our own.
 */
#include "bench.h"

#ifdef HAND
#define BFT_OUT_MAX 4096
static char bft_out[BFT_OUT_MAX];

/* Hand-specialized bf_table: the program compiled to C, the two tape cells
 * it uses in variables (the head never leaves cells 0 and 1). */
WIPER_TARGET int bf_table(const char *prog, const char *input, char *out)
{
	unsigned char c0, c1 = 0;
	int nout = 0;

	(void)prog;
	c0 = *input ? (unsigned char)*input++ : 0; /* , */
	while (c0 != 0) {                          /* [ */
		while (c0 != 0) {                  /* [->++<] */
			c0--;
			c1 += 2;
		}
		if (nout < BFT_OUT_MAX)            /* >. */
			out[nout++] = (char)c1;
		while (c1 != 0)                    /* [-] */
			c1--;
		c0 = *input ? (unsigned char)*input++ : 0; /* <, */
	}                                          /* ] */
	return nout;
}
#else
#define main program_main
#include "../src/bftable.c"
#undef main
#endif

int main(int argc, char **argv)
{
	unsigned int acc = 0;
	int reps, i, n = 0, status;

	reps = bench_reps(argc, argv, 1, "usage: bf_table REPS INPUT\n");
	if (reps < 0)
		return 2;
	for (i = 0; i < reps; i++) {
		n = bf_table(",[[->++<]>.[-]<,]", argv[2], bft_out);
		acc = bench_fold(acc, n);
	}
	status = bench_report(acc);
	bench_print_bytes(bft_out, n);
	return status;
}
