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
#include "../rt/rt.h"

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

/* The last accumulator. This writable global gives every bench binary a
 * writable segment: valgrind (3.19) reads no symbols from an executable
 * without one, and callgrind could not name the functions. */
unsigned int bench_acc;

int main(int argc, char **argv)
{
	unsigned int acc = 0, sum = 0;
	int reps, i, n = 0;
	const char *input;

	if (argc < 3) {
		print_str("usage: bf_echo REPS INPUT\n");
		return 2;
	}
	reps = parse_int(argv[1]);
	input = argv[2];
	for (i = 0; i < reps; i++) {
		n = bf(",[.,]", input, bf_out);
		acc = acc * 31u + (unsigned int)n;
	}
	bench_acc = acc;
	print_int((int)acc);
	print_nl();
	rt_write(1, bf_out, n);
	print_nl();
	for (i = 0; i < n; i++)
		sum += (unsigned char)bf_out[i];
	print_int((int)sum);
	print_nl();
	return (int)(acc & 0x7f);
}
