/* vm_fact.c - benchmark driver for run_vm(code, x) of src/interp.c,
 * specialized for code = vm_factorial, the VM program computing x!
 * (wiper spec: --static arg0=@i32:1,1,2,6,10,13,7,8,5,7,12,11,3,9,0).
 *
 * Usage: vm_fact REPS X   calls run_vm(vm_factorial, X) REPS times, folds
 * the results into acc = acc * 31 + r (unsigned), prints acc;
 * exit status = acc & 0x7f, or 2 on bad usage. X >= 0 (a negative X makes
 * the VM count down from (unsigned)X: about 2^32 turns).
 *
 * Built without HAND: the original run_vm and vm_factorial of src/interp.c
 * (its main renamed program_main). Built with -DHAND: run_vm written by hand
 * for that program (same name and signature; code is unused), and a copy of
 * vm_factorial for the call.
 */
#include "bench.h"

#ifdef HAND
/* The VM program of src/interp.c (PUSH 1, LOADX; 3: DUP, JZ 13, SWAP,
 * OVER, MUL, SWAP, DEC, JMP 3; 13: DROP, HALT). */
static const int vm_factorial[] = {
	1, 1, 2, 6, 10, 13, 7, 8, 5, 7, 12, 11, 3, 9, 0,
};

/* Hand-specialized run_vm: the stack (acc n) kept in two variables. */
WIPER_TARGET int run_vm(const int *code, int x)
{
	unsigned int acc = 1;
	unsigned int n = (unsigned int)x;

	(void)code;
	while (n != 0) {
		acc *= n;
		n--;
	}
	return (int)acc;
}
#else
#define main program_main
#include "../src/interp.c"
#undef main
#endif

int main(int argc, char **argv)
{
	unsigned int acc = 0;
	int reps, x, i;

	reps = bench_reps(argc, argv, 1, "usage: vm_fact REPS X\n");
	if (reps < 0)
		return 2;
	x = parse_int(argv[2]);
	for (i = 0; i < reps; i++)
		acc = bench_fold(acc, run_vm(vm_factorial, x));
	return bench_report(acc);
}
