/* bf_reverse.c - benchmark driver for bf(prog, input, out) of src/interp.c
 * (Brainfuck, brackets matched by scanning at run time), specialized for
 * the program ">,[>,]<[.<]": the input read into successive cells, then
 * printed backwards. Its loops are unbalanced: each turn moves the head, so
 * after a loop the head depends on the input
 * (wiper spec: --static arg0=@str:>,[>,]<[.<]).
 *
 * Usage: bf_reverse REPS INPUT   calls bf(">,[>,]<[.<]", INPUT, bf_out)
 * REPS times, folds the returned byte counts into acc = acc * 31 + n
 * (unsigned), then prints, one per line: acc, the output bytes of the last
 * call, the sum of those bytes (as unsigned chars); exit status =
 * acc & 0x7f, or 2 on bad usage. INPUT of at most 254 bytes (a longer one
 * wraps the head around the 256-byte tape).
 *
 * Built without HAND: the original bf and bf_out of src/interp.c (its main
 * renamed program_main). Built with -DHAND: bf written by hand for that
 * program (same name and signature; prog is unused), and a bf_out of our
 * own.
 */
#include "bench.h"

#ifdef HAND
#define BF_TAPE 256
#define BF_OUT_MAX 4096
static char bf_out[BF_OUT_MAX];

/* Hand-specialized bf: the program compiled to C, with the tape and its
 * head as in the interpreter. */
WIPER_TARGET int bf(const char *prog, const char *input, char *out)
{
	unsigned char tape[BF_TAPE];
	unsigned char head = 0;
	int nout = 0;
	int i;

	(void)prog;
	for (i = 0; i < BF_TAPE; i++)
		tape[i] = 0;
	head++;                                             /* > */
	tape[head] = *input ? (unsigned char)*input++ : 0; /* , */
	while (tape[head] != 0) {                           /* [ */
		head++;                                     /* > */
		tape[head] = *input ? (unsigned char)*input++ : 0; /* , */
	}                                                   /* ] */
	head--;                                             /* < */
	while (tape[head] != 0) {                           /* [ */
		if (nout < BF_OUT_MAX)                      /* . */
			out[nout++] = (char)tape[head];
		head--;                                     /* < */
	}                                                   /* ] */
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

	reps = bench_reps(argc, argv, 1, "usage: bf_reverse REPS INPUT\n");
	if (reps < 0)
		return 2;
	for (i = 0; i < reps; i++) {
		n = bf(">,[>,]<[.<]", argv[2], bf_out);
		acc = bench_fold(acc, n);
	}
	status = bench_report(acc);
	bench_print_bytes(bf_out, n);
	return status;
}
