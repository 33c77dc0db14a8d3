/* vm_square.c - benchmark driver for run_vm(code, x) of src/interp.c,
 * specialized for code = vm_square_plus_one, the VM program computing
 * x*x + 1 (wiper spec: --static arg0=@i32:2,6,5,1,1,3,0).
 *
 * Usage: vm_square REPS X   calls run_vm(vm_square_plus_one, X) REPS times,
 * folds the results into acc = acc * 31 + r (unsigned), prints acc;
 * exit status = acc & 0x7f, or 2 on bad usage.
 *
 * Built without HAND: the original run_vm and vm_square_plus_one of
 * src/interp.c (its main renamed program_main). Built with -DHAND: run_vm
 * written by hand for that program (same name and signature; code is
 * unused), and a copy of vm_square_plus_one for the call.
 */
#include "bench.h"

#ifdef HAND
/* The VM program of src/interp.c (LOADX, DUP, MUL, PUSH 1, ADD, HALT). */
static const int vm_square_plus_one[] = {
	2, 6, 5, 1, 1, 3, 0,
};

/* Hand-specialized run_vm: x * x + 1, wrapping. */
WIPER_TARGET int run_vm(const int *code, int x)
{
	unsigned int u = (unsigned int)x;

	(void)code;
	return (int)(u * u + 1u);
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

	reps = bench_reps(argc, argv, 1, "usage: vm_square REPS X\n");
	if (reps < 0)
		return 2;
	x = parse_int(argv[2]);
	for (i = 0; i < reps; i++)
		acc = bench_fold(acc, run_vm(vm_square_plus_one, x));
	return bench_report(acc);
}
