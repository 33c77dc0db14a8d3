/* interp.c - two interpreters, for specialization with a static program.
 *
 * run_vm(code, x): a small stack-based bytecode VM, dispatched by a switch.
 * bf(prog, input, out): a Brainfuck interpreter with a 256-byte tape.
 *
 * Usage:
 *   interp vm N X        runs built-in VM program N (see vm_programs) on X,
 *                        0 <= X <= 100000; prints the result;
 *                        exit status = result & 0x7f.
 *   interp bf PROG INPUT runs the Brainfuck program PROG with INPUT as its
 *                        input bytes; prints the output bytes, a newline,
 *                        then the number of output bytes on its own line;
 *                        exit status = that number & 0x7f.
 * Bad usage exits with status 2.
 */
#include "../rt/rt.h"

/* VM opcodes. Operands follow the opcode in the code array. */
enum {
	OP_HALT,  /* stop; result = top of stack (0 if empty) */
	OP_PUSH,  /* PUSH k: push k */
	OP_LOADX, /* push x */
	OP_ADD,   /* a b -> a+b */
	OP_SUB,   /* a b -> a-b */
	OP_MUL,   /* a b -> a*b */
	OP_DUP,   /* a -> a a */
	OP_SWAP,  /* a b -> b a */
	OP_OVER,  /* a b -> a b a */
	OP_DROP,  /* a -> */
	OP_JZ,    /* JZ t: pop a; if a == 0 jump to t */
	OP_JMP,   /* JMP t: jump to t */
	OP_DEC,   /* a -> a-1 */
};

#define VM_STACK 64

/* Runs bytecode `code` with input x and returns the top of the stack at
 * HALT. Arithmetic wraps (it is done on unsigned values). */
WIPER_TARGET int run_vm(const int *code, int x)
{
	unsigned int stack[VM_STACK];
	int sp = 0; /* number of values on the stack */
	int pc = 0;

	for (;;) {
		int op = code[pc++];
		switch (op) {
		case OP_HALT:
			return sp > 0 ? (int)stack[sp - 1] : 0;
		case OP_PUSH:
			stack[sp++] = (unsigned int)code[pc++];
			break;
		case OP_LOADX:
			stack[sp++] = (unsigned int)x;
			break;
		case OP_ADD:
			sp--;
			stack[sp - 1] = stack[sp - 1] + stack[sp];
			break;
		case OP_SUB:
			sp--;
			stack[sp - 1] = stack[sp - 1] - stack[sp];
			break;
		case OP_MUL:
			sp--;
			stack[sp - 1] = stack[sp - 1] * stack[sp];
			break;
		case OP_DUP:
			stack[sp] = stack[sp - 1];
			sp++;
			break;
		case OP_SWAP: {
			unsigned int t = stack[sp - 1];
			stack[sp - 1] = stack[sp - 2];
			stack[sp - 2] = t;
			break;
		}
		case OP_OVER:
			stack[sp] = stack[sp - 2];
			sp++;
			break;
		case OP_DROP:
			sp--;
			break;
		case OP_JZ:
			sp--;
			if (stack[sp] == 0)
				pc = code[pc];
			else
				pc++;
			break;
		case OP_JMP:
			pc = code[pc];
			break;
		case OP_DEC:
			stack[sp - 1]--;
			break;
		default: /* bad opcode */
			return -1;
		}
	}
}

/* Program 0: x*x + 1 (straight-line). */
static const int vm_square_plus_one[] = {
	OP_LOADX, OP_DUP, OP_MUL, OP_PUSH, 1, OP_ADD, OP_HALT,
};

/* Program 1: x! (loop). Stack: acc n. */
static const int vm_factorial[] = {
	/* 0 */ OP_PUSH, 1,
	/* 2 */ OP_LOADX,
	/* 3 */ OP_DUP,
	/* 4 */ OP_JZ, 13,
	/* 6 */ OP_SWAP, OP_OVER, OP_MUL, OP_SWAP, OP_DEC,
	/* 11 */ OP_JMP, 3,
	/* 13 */ OP_DROP, OP_HALT,
};

/* Program 2: 1 + 2 + ... + x (loop). Stack: acc n. */
static const int vm_sum_to[] = {
	/* 0 */ OP_PUSH, 0,
	/* 2 */ OP_LOADX,
	/* 3 */ OP_DUP,
	/* 4 */ OP_JZ, 13,
	/* 6 */ OP_SWAP, OP_OVER, OP_ADD, OP_SWAP, OP_DEC,
	/* 11 */ OP_JMP, 3,
	/* 13 */ OP_DROP, OP_HALT,
};

/* Program 3: 3*x - 7 (straight-line). */
static const int vm_linear[] = {
	OP_LOADX, OP_PUSH, 3, OP_MUL, OP_PUSH, 7, OP_SUB, OP_HALT,
};

/* The built-in programs, selected by `interp vm N X`. */
static const int *const vm_programs[] = {
	vm_square_plus_one,
	vm_factorial,
	vm_sum_to,
	vm_linear,
};

#define BF_TAPE 256
#define BF_OUT_MAX 4096

/* Runs Brainfuck program `prog` on a 256-byte tape (the head wraps around
 * at both ends, cells wrap mod 256). ',' reads the next byte of the
 * NUL-terminated `input`, or 0 at its end. Output goes to `out` (at most
 * BF_OUT_MAX bytes; more are dropped). Brackets are matched by scanning at
 * run time; an unmatched bracket ends the program. Returns the number of
 * bytes written to `out`. */
WIPER_TARGET int bf(const char *prog, const char *input, char *out)
{
	unsigned char tape[BF_TAPE];
	unsigned char head = 0;
	int pc = 0;
	int nout = 0;
	int i;

	for (i = 0; i < BF_TAPE; i++)
		tape[i] = 0;
	while (prog[pc]) {
		switch (prog[pc]) {
		case '+':
			tape[head]++;
			break;
		case '-':
			tape[head]--;
			break;
		case '>':
			head++;
			break;
		case '<':
			head--;
			break;
		case '.':
			if (nout < BF_OUT_MAX)
				out[nout++] = (char)tape[head];
			break;
		case ',':
			if (*input)
				tape[head] = (unsigned char)*input++;
			else
				tape[head] = 0;
			break;
		case '[':
			if (tape[head] == 0) {
				int depth = 1;
				while (depth > 0) {
					pc++;
					if (prog[pc] == 0)
						return nout;
					if (prog[pc] == '[')
						depth++;
					else if (prog[pc] == ']')
						depth--;
				}
			}
			break;
		case ']':
			if (tape[head] != 0) {
				int depth = 1;
				while (depth > 0) {
					if (pc == 0)
						return nout;
					pc--;
					if (prog[pc] == ']')
						depth++;
					else if (prog[pc] == '[')
						depth--;
				}
			}
			break;
		default: /* any other character is a comment */
			break;
		}
		pc++;
	}
	return nout;
}

static int streq(const char *a, const char *b)
{
	while (*a && *a == *b) {
		a++;
		b++;
	}
	return *a == *b;
}

static char bf_out[BF_OUT_MAX];

int main(int argc, char **argv)
{
	if (argc >= 4 && streq(argv[1], "vm")) {
		int n = parse_int(argv[2]);
		int x = parse_int(argv[3]);
		int r;
		if (n < 0 || n >= (int)(sizeof vm_programs / sizeof vm_programs[0])) {
			print_str("interp: no such VM program\n");
			return 2;
		}
		if (x < 0 || x > 100000) {
			print_str("interp: X out of range 0..100000\n");
			return 2;
		}
		r = run_vm(vm_programs[n], x);
		print_int(r);
		print_nl();
		return r & 0x7f;
	}
	if (argc >= 4 && streq(argv[1], "bf")) {
		int n = bf(argv[2], argv[3], bf_out);
		rt_write(1, bf_out, n);
		print_nl();
		print_int(n);
		print_nl();
		return n & 0x7f;
	}
	print_str("usage: interp vm N X | interp bf PROGRAM INPUT\n");
	return 2;
}
