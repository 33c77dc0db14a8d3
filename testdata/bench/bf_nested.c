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
#include "../rt/rt.h"

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
		print_str("usage: bf_nested REPS INPUT\n");
		return 2;
	}
	reps = parse_int(argv[1]);
	input = argv[2];
	for (i = 0; i < reps; i++) {
		n = bf(",[>-[>+<-]<-]>>.", input, bf_out);
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
