/* bf_nested.c - benchmark driver for bf(prog, input, out) of src/interp.c,
 * specialized for the Brainfuck program ",[>-[>+<-]<-]>>." (nested loops:
 * for each unit of the input byte c, 255 turns of the inner loop, so cell 2
 * ends as c * 255 mod 256, which is output)
 * (wiper spec: --static arg0=@str:,[>-[>+<-]<-]>>.).
 *
 * Usage: bf_nested REPS INPUT   calls bf(",[>-[>+<-]<-]>>.", INPUT, bf_out)
 * REPS times, folds the returned byte counts into acc = acc * 31 + n
 * (unsigned), then prints, one per line: acc, the output bytes of the last
 * call (raw), the sum of those bytes (as unsigned chars);
 * exit status = acc & 0x7f, or 2 on bad usage. INPUT "#" (35) makes
 * 35 * 255 inner turns per call.
 *
 * Built without HAND: the original bf and bf_out of src/interp.c (its main
 * renamed program_main). Built with -DHAND: bf written by hand for that
 * program (same name and signature; prog is unused), and a bf_out of our own.
 */
#include "bench.h"

#ifdef HAND
#define BF_OUT_MAX 4096
static char bf_out[BF_OUT_MAX];

/* Hand-specialized bf: ",[>-[>+<-]<-]>>." compiled to C over unsigned char
 * cells (wrapping mod 256); the head only visits cells 0, 1, 2, which start
 * at 0. ',' reads 0 at the end of the input. One byte is output. */
WIPER_TARGET int bf(const char *prog, const char *input, char *out)
{
	unsigned char c0, c1 = 0, c2 = 0;

	(void)prog;
	c0 = (unsigned char)*input;  /* , */
	while (c0 != 0) {            /* [ */
		c1--;                /* >- */
		while (c1 != 0) {    /* [ */
			c2++;        /* >+ */
			c1--;        /* <- */
		}                    /* ] */
		c0--;                /* <- */
	}                            /* ] */
	out[0] = (char)c2;           /* >>. */
	return 1;
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

	reps = bench_reps(argc, argv, 1, "usage: bf_nested REPS INPUT\n");
	if (reps < 0)
		return 2;
	for (i = 0; i < reps; i++) {
		n = bf(",[>-[>+<-]<-]>>.", argv[2], bf_out);
		acc = bench_fold(acc, n);
	}
	status = bench_report(acc);
	bench_print_bytes(bf_out, n);
	return status;
}
