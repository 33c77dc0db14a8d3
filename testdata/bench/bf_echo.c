/* bf_echo.c - benchmark driver for bf(prog, input, out) of src/interp.c,
 * specialized for the Brainfuck program ",[.,]" (copy the input to the
 * output) (wiper spec: --static arg0=@str:,[.,]).
 *
 * Usage: bf_echo REPS INPUT   calls bf(",[.,]", INPUT, bf_out) REPS times,
 * folds the returned byte counts into acc = acc * 31 + n (unsigned), then
 * prints, one per line: acc, the output bytes of the last call, the sum of
 * those bytes (as unsigned chars); exit status = acc & 0x7f, or 2 on bad
 * usage.
 *
 * Built without HAND: the original bf and bf_out of src/interp.c (its main
 * renamed program_main). Built with -DHAND: bf written by hand for that
 * program (same name and signature; prog is unused), and a bf_out of our own.
 */
#include "bench.h"

#ifdef HAND
#define BF_OUT_MAX 4096
static char bf_out[BF_OUT_MAX];

/* Hand-specialized bf: ",[.,]" compiled to C; only tape cell 0 is used, and
 * the first ',' overwrites it. ',' reads 0 at the end of the input. */
WIPER_TARGET int bf(const char *prog, const char *input, char *out)
{
	unsigned char c;
	int nout = 0;

	(void)prog;
	c = *input ? (unsigned char)*input++ : 0; /* , */
	while (c != 0) {                          /* [ */
		if (nout < BF_OUT_MAX)            /* . */
			out[nout++] = (char)c;
		c = *input ? (unsigned char)*input++ : 0; /* , */
	}                                         /* ] */
	return nout;
}
#else
#define main program_main
#include "../src/interp.c"
#undef main
#endif

int main(int argc, char **argv)
{
	unsigned int acc = 0;
	int reps, i, n = 0, status;

	reps = bench_reps(argc, argv, 1, "usage: bf_echo REPS INPUT\n");
	if (reps < 0)
		return 2;
	for (i = 0; i < reps; i++) {
		n = bf(",[.,]", argv[2], bf_out);
		acc = bench_fold(acc, n);
	}
	status = bench_report(acc);
	bench_print_bytes(bf_out, n);
	return status;
}
