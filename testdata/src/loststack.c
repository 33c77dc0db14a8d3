/* loststack.c - a stack pointer the specializer cannot follow.
 *
 * through_slot(IN, OUT, X) stores the stack pointer through the pointer
 * IN and loads it back through OUT (inline assembly; main passes the same
 * slot for both, so the stack pointer is unchanged, but only the run
 * knows), then returns X * 3 + 1 computed after that. The specializer
 * sees `esp` loaded from memory it does not know and leaves for the
 * original code there (docs/specialization.md).
 *
 * lose_at_entry(P) loses the stack pointer within its first 5 bytes,
 * which the residual binary overwrites: there it stays an error.
 *
 * Usage: loststack X   prints through_slot(&slot, &slot, X); exit status
 * = result & 0x7f, or 2 on bad usage. */
#include "../rt/rt.h"

WIPER_TARGET int through_slot(int **in, int **out, int x)
{
	int r = x;

	__asm__ volatile("mov %%esp, (%1)\n\t"
			 "mov (%2), %%esp\n\t"
			 : "+r"(r)
			 : "r"(in), "r"(out)
			 : "memory");
	return r * 3 + 1;
}

/* lose_at_entry(P): esp = *P in its second instruction, inside the 5
 * bytes the residual binary overwrites with its jump (never called: the
 * specializer must refuse it with an error). */
__asm__(".globl lose_at_entry\n"
	".type lose_at_entry, @function\n"
	"lose_at_entry:\n"
	"\tmov 4(%esp), %eax\n"
	"\tmov (%eax), %esp\n"
	"\tret\n"
	".size lose_at_entry, .-lose_at_entry\n");

int main(int argc, char **argv)
{
	int *slot = 0;
	int r;

	if (argc < 2) {
		print_str("usage: loststack X\n");
		return 2;
	}
	r = through_slot(&slot, &slot, parse_int(argv[1]));
	print_int(r);
	print_nl();
	return r & 0x7f;
}
