/* cgvm_fib.c - benchmark driver for cg_run(code, x) of src/cgvm.c (a VM
 * dispatched by computed goto), specialized for code = cg_fib, the VM
 * program computing fib(x)
 * (wiper spec: --static arg0=@bytes:0100010102060b110d0909070803090c050a0a00).
 *
 * Usage: cgvm_fib REPS X   calls cg_run(cg_fib, X) REPS times, folds the
 * results into acc = acc * 31 + r (unsigned), prints acc;
 * exit status = acc & 0x7f, or 2 on bad usage. X >= 0 (a negative X makes
 * the VM count down from (unsigned)X: about 2^32 turns).
 *
 * Built without HAND: the original cg_run and cg_fib of src/cgvm.c (its
 * main renamed program_main). Built with -DHAND: cg_run written by hand for
 * that program (same name and signature; code is unused), and a copy of
 * cg_fib for the call.
 */
#include "bench.h"

#ifdef HAND
/* The VM program of src/cgvm.c (PUSH 0, PUSH 1, ARG; 5: DUP, JZ 17, DEC,
 * ROT, ROT, SWAP, OVER, ADD, ROT, JMP 5; 17: DROP, DROP, HALT). */
static const unsigned char cg_fib[] = {
	1, 0, 1, 1, 2, 6, 11, 17, 13, 9, 9, 7, 8, 3, 9, 12, 5, 10, 10, 0,
};

/* Hand-specialized cg_run: the stack (a b n) kept in three variables. */
WIPER_TARGET int cg_run(const unsigned char *code, int x)
{
	unsigned int a = 0, b = 1, t;
	unsigned int n = (unsigned int)x;

	(void)code;
	while (n != 0) {
		n--;
		t = a + b;
		a = b;
		b = t;
	}
	return (int)a;
}
#else
#define main program_main
#include "../src/cgvm.c"
#undef main
#endif

int main(int argc, char **argv)
{
	unsigned int acc = 0;
	int reps, x, i;

	reps = bench_reps(argc, argv, 1, "usage: cgvm_fib REPS X\n");
	if (reps < 0)
		return 2;
	x = parse_int(argv[2]);
	for (i = 0; i < reps; i++)
		acc = bench_fold(acc, cg_run(cg_fib, x));
	return bench_report(acc);
}
