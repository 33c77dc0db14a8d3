/* bftable.c - a Brainfuck interpreter that first matches the brackets into
 * a jump table (a local array), for specialization with a static program.
 *
 * bf_table(prog, input, out): like bf of interp.c (a 256-byte tape whose
 * head wraps at both ends, cells wrap mod 256, ',' reads 0 at the end of the
 * input, at most 4096 output bytes), but before running, one pass over the
 * program records for every bracket the position of its partner, so `[`
 * and `]` jump in one step. A program with unmatched brackets, or longer
 * than 256 characters, is not run (result -1).
 *
 * Usage:
 *   bftable PROG INPUT   runs PROG with INPUT as its input bytes; prints the
 *                        output bytes, a newline, then the result (number
 *                        of output bytes, or -1) on its own line;
 *                        exit status = result & 0x7f.
 * Bad usage exits with status 2.
 */
#include "../rt/rt.h"

#define BFT_TAPE 256
#define BFT_PROG_MAX 256
#define BFT_OUT_MAX 4096

/* Runs Brainfuck program `prog` on `input`, writing to `out`; returns the
 * number of output bytes, or -1 for a program it does not run. */
WIPER_TARGET int bf_table(const char *prog, const char *input, char *out)
{
	int jump[BFT_PROG_MAX];  /* partner of each bracket */
	int open[BFT_PROG_MAX];  /* positions of the unmatched '[' so far */
	unsigned char tape[BFT_TAPE];
	unsigned char head = 0;
	int len, depth = 0, pc, nout = 0, i;

	for (len = 0; prog[len]; len++) {
		if (len >= BFT_PROG_MAX)
			return -1;
		if (prog[len] == '[') {
			open[depth++] = len;
		} else if (prog[len] == ']') {
			if (depth == 0)
				return -1;
			depth--;
			jump[open[depth]] = len;
			jump[len] = open[depth];
		}
	}
	if (depth != 0)
		return -1;
	for (i = 0; i < BFT_TAPE; i++)
		tape[i] = 0;
	for (pc = 0; pc < len; pc++) {
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
			if (nout < BFT_OUT_MAX)
				out[nout++] = (char)tape[head];
			break;
		case ',':
			if (*input)
				tape[head] = (unsigned char)*input++;
			else
				tape[head] = 0;
			break;
		case '[':
			if (tape[head] == 0)
				pc = jump[pc];
			break;
		case ']':
			if (tape[head] != 0)
				pc = jump[pc];
			break;
		default: /* any other character is a comment */
			break;
		}
	}
	return nout;
}

static char bft_out[BFT_OUT_MAX];

int main(int argc, char **argv)
{
	int n;

	if (argc < 3) {
		print_str("usage: bftable PROG INPUT\n");
		return 2;
	}
	n = bf_table(argv[1], argv[2], bft_out);
	if (n > 0)
		rt_write(1, bft_out, n);
	print_nl();
	print_int(n);
	print_nl();
	return n & 0x7f;
}
