/* switch.c - a dense switch that gcc compiles to a jump table.
 *
 * dispatch() has 10 cases (op 0..9) plus default. gcc 12 -m32 emits a
 * 10-entry jump table (an indirect `jmp DWORD PTR [op*4+table]`) for it
 * at -O0, -O1 and -O2; the Makefile checks that with objdump. The cases
 * have different side effects (different arithmetic, updates of globals,
 * calls to different helpers), so gcc cannot turn the switch into a lookup
 * table of values.
 *
 * Usage: switch OP A B   prints, one per line:
 *   dispatch(OP, A, B), last_op, hits[0] + hits[1] + hits[2] + hits[3]
 * exit status = dispatch's result & 0x7f.
 */
#include "../rt/rt.h"

int last_op;  /* last op that recorded itself (-1 after default) */
int hits[4];  /* per-case counters */

static WIPER_TARGET int twice(int x)
{
	return x + x;
}

static WIPER_TARGET int negate(int x)
{
	return -x;
}

WIPER_TARGET int dispatch(int op, int a, int b)
{
	int r;

	switch (op) {
	case 0:
		r = a + b;
		break;
	case 1:
		r = a - b;
		last_op = 1;
		break;
	case 2:
		r = a * b;
		hits[0]++;
		break;
	case 3: /* unsigned division: no trap for INT_MIN / -1; x / 0 = 0 */
		r = b ? (int)((unsigned int)a / (unsigned int)b) : 0;
		last_op = 3;
		break;
	case 4:
		r = a & b;
		hits[1] += a;
		break;
	case 5:
		r = a | b;
		last_op = 5;
		hits[2] += 5;
		break;
	case 6:
		r = a ^ b;
		hits[2]--;
		break;
	case 7:
		r = (int)((unsigned int)a << (b & 31));
		hits[3] = b;
		break;
	case 8:
		r = twice(a) - b;
		last_op = 8;
		break;
	case 9:
		r = negate(a) + twice(b);
		hits[0] += 9;
		break;
	default:
		r = -1;
		last_op = -1;
		break;
	}
	return r;
}

int main(int argc, char **argv)
{
	int r;

	if (argc < 4) {
		print_str("usage: switch OP A B\n");
		return 2;
	}
	r = dispatch(parse_int(argv[1]), parse_int(argv[2]), parse_int(argv[3]));
	print_int(r);
	print_nl();
	print_int(last_op);
	print_nl();
	print_int(hits[0] + hits[1] + hits[2] + hits[3]);
	print_nl();
	return r & 0x7f;
}
