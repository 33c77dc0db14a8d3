/* cgvm.c - a stack VM dispatched by computed goto, for specialization with
 * a static program.
 *
 * cg_run(code, x): runs the bytecode `code` (one byte per opcode or operand)
 * with input x. Dispatch is GCC's labels as values: `goto *dispatch[op]`
 * through a `static void *dispatch[]` table, not const (gcc places it in
 * writable .data at -O0, and in .rodata at -O1 and -O2, as nothing writes
 * it). The operand stack lives in memory (a local array and a pointer to its
 * next free slot).
 *
 * Usage:
 *   cgvm N X   runs built-in program N (0: fib(x), 1: 3x^2 + 5x - 7) on X,
 *              0 <= X <= 100000; prints the result;
 *              exit status = result & 0x7f.
 * Bad usage exits with status 2.
 */
#include "../rt/rt.h"

/* Opcodes. PUSH and the jumps take a one-byte operand after the opcode. */
enum {
	CG_HALT, /* stop; result = top of stack (0 if empty) */
	CG_PUSH, /* PUSH k: push the byte k */
	CG_ARG,  /* push x */
	CG_ADD,  /* a b -> a+b */
	CG_SUB,  /* a b -> a-b */
	CG_MUL,  /* a b -> a*b */
	CG_DUP,  /* a -> a a */
	CG_SWAP, /* a b -> b a */
	CG_OVER, /* a b -> a b a */
	CG_ROT,  /* a b c -> b c a */
	CG_DROP, /* a -> */
	CG_JZ,   /* JZ t: pop a; if a == 0 jump to t */
	CG_JMP,  /* JMP t: jump to t */
	CG_DEC,  /* a -> a-1 */
	CG_NOPS  /* number of opcodes */
};

#define CG_STACK 32

/* Runs bytecode `code` with input x and returns the top of the stack at
 * HALT, or -1 at an opcode out of range. Arithmetic wraps (unsigned). */
WIPER_TARGET int cg_run(const unsigned char *code, int x)
{
	static void *dispatch[CG_NOPS] = {
		&&op_halt, &&op_push, &&op_arg,  &&op_add, &&op_sub,
		&&op_mul,  &&op_dup,  &&op_swap, &&op_over, &&op_rot,
		&&op_drop, &&op_jz,   &&op_jmp,  &&op_dec,
	};
	unsigned int stack[CG_STACK];
	unsigned int *sp = stack; /* the next free slot */
	unsigned int t;
	int pc = 0;
	int op;

#define NEXT                              \
	do {                              \
		op = code[pc++];          \
		if (op >= CG_NOPS)        \
			return -1;        \
		goto *dispatch[op];       \
	} while (0)

	NEXT;
op_halt:
	return sp > stack ? (int)sp[-1] : 0;
op_push:
	*sp++ = code[pc++];
	NEXT;
op_arg:
	*sp++ = (unsigned int)x;
	NEXT;
op_add:
	sp--;
	sp[-1] += sp[0];
	NEXT;
op_sub:
	sp--;
	sp[-1] -= sp[0];
	NEXT;
op_mul:
	sp--;
	sp[-1] *= sp[0];
	NEXT;
op_dup:
	sp[0] = sp[-1];
	sp++;
	NEXT;
op_swap:
	t = sp[-1];
	sp[-1] = sp[-2];
	sp[-2] = t;
	NEXT;
op_over:
	sp[0] = sp[-2];
	sp++;
	NEXT;
op_rot:
	t = sp[-3];
	sp[-3] = sp[-2];
	sp[-2] = sp[-1];
	sp[-1] = t;
	NEXT;
op_drop:
	sp--;
	NEXT;
op_jz:
	sp--;
	if (sp[0] == 0)
		pc = code[pc];
	else
		pc++;
	NEXT;
op_jmp:
	pc = code[pc];
	NEXT;
op_dec:
	sp[-1]--;
	NEXT;
#undef NEXT
}

/* Program 0: fib(x) (a loop). Stack: a b n; each turn (a, b, n) becomes
 * (b, a+b, n-1). */
static const unsigned char cg_fib[] = {
	/* 0 */ CG_PUSH, 0,
	/* 2 */ CG_PUSH, 1,
	/* 4 */ CG_ARG,
	/* 5 */ CG_DUP,
	/* 6 */ CG_JZ, 17,
	/* 8 */ CG_DEC, CG_ROT, CG_ROT, CG_SWAP, CG_OVER, CG_ADD, CG_ROT,
	/* 15 */ CG_JMP, 5,
	/* 17 */ CG_DROP, CG_DROP, CG_HALT,
};

/* Program 1: 3x^2 + 5x - 7 (straight-line). */
static const unsigned char cg_poly[] = {
	CG_ARG, CG_DUP, CG_MUL, CG_PUSH, 3, CG_MUL, CG_ARG, CG_PUSH, 5, CG_MUL,
	CG_ADD, CG_PUSH, 7, CG_SUB, CG_HALT,
};

/* The built-in programs, selected by `cgvm N X`. */
static const unsigned char *const cg_programs[] = { cg_fib, cg_poly };

int main(int argc, char **argv)
{
	int n, x, r;

	if (argc < 3) {
		print_str("usage: cgvm N X\n");
		return 2;
	}
	n = parse_int(argv[1]);
	x = parse_int(argv[2]);
	if (n < 0 || n >= (int)(sizeof cg_programs / sizeof cg_programs[0])) {
		print_str("cgvm: no such program\n");
		return 2;
	}
	if (x < 0 || x > 100000) {
		print_str("cgvm: X out of range 0..100000\n");
		return 2;
	}
	r = cg_run(cg_programs[n], x);
	print_int(r);
	print_nl();
	return r & 0x7f;
}
