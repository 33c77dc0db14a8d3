/* globals.c - writable global data that no code writes, next to data that
 * code writes directly and data whose address escapes: only the first is
 * as static as read-only data (wiper's static-data rule).
 *
 * - primes[] (in .data, never written): sum_primes(n) with n static
 *   specializes to a constant;
 * - weights[] (in .data, written by set_weight at a constant index: an
 *   indexed store could land in a neighbour such as primes): its loads
 *   stay;
 * - scratch[] (in .data, its address passed to fill_with): its loads stay;
 * - run_ops(ops, n, x): a computed-goto interpreter over a dispatch table
 *   of label addresses in writable .data (never written).
 *
 * Usage: globals N X [I W]   prints, one per line:
 *   sum_primes(N), weighted(N) (after set_weight(I, W) when given),
 *   scratch_sum(N), run_ops("+*-+", 4, X)
 * exit status = sum_primes(N) & 0x7f.
 */
#include "../rt/rt.h"

int primes[8] = {2, 3, 5, 7, 11, 13, 17, 19};
int weights[8] = {1, 1, 2, 3, 5, 8, 13, 21};
int scratch[8] = {9, 9, 9, 9, 9, 9, 9, 9};

/* The sum of the first n primes of the table (n clamped to 0..8). */
WIPER_TARGET int sum_primes(int n)
{
	int i, s = 0;

	for (i = 0; i < n && i < 8; i++)
		s += primes[i];
	return s;
}

/* The sum of the first n weights (n clamped to 0..8). */
WIPER_TARGET int weighted(int n)
{
	int i, s = 0;

	for (i = 0; i < n && i < 8; i++)
		s += weights[i] * (i + 1);
	return s;
}

WIPER_TARGET void set_weight(int i, int w)
{
	if (i & 1)
		weights[3] = w;
	else
		weights[6] = w;
}

WIPER_TARGET void fill_with(int *p, int n, int v)
{
	int i;

	for (i = 0; i < n; i++)
		p[i] = v;
}

/* The sum of the first n scratch words (n clamped to 0..8). */
WIPER_TARGET int scratch_sum(int n)
{
	int i, s = 0;

	for (i = 0; i < n && i < 8; i++)
		s += scratch[i];
	return s;
}

/* A computed-goto interpreter: '+' adds 3, '*' doubles, '-' subtracts 1,
 * anything else stops. */
WIPER_TARGET int run_ops(const char *ops, int n, int x)
{
	static void *dispatch[4] = {&&add, &&mul, &&sub, &&stop};
	int pc = 0;

#define NEXT                                                              \
	do {                                                              \
		if (pc >= n)                                              \
			goto stop;                                        \
		char c = ops[pc++];                                       \
		goto *dispatch[c == '+' ? 0 : c == '*' ? 1 : c == '-' ? 2 : 3]; \
	} while (0)

	NEXT;
add:
	x += 3;
	NEXT;
mul:
	x *= 2;
	NEXT;
sub:
	x -= 1;
	NEXT;
stop:
	return x;
#undef NEXT
}

int main(int argc, char **argv)
{
	int n, x, r;

	if (argc < 3) {
		print_str("usage: globals N X [I W]\n");
		return 2;
	}
	n = parse_int(argv[1]);
	x = parse_int(argv[2]);
	if (argc >= 5)
		set_weight(parse_int(argv[3]), parse_int(argv[4]));
	if (n > 4)
		fill_with(scratch, n - 4, n);
	r = sum_primes(n);
	print_int(r);
	print_nl();
	print_int(weighted(n));
	print_nl();
	print_int(scratch_sum(n));
	print_nl();
	print_int(run_ops("+*-+", 4, x));
	print_nl();
	return r & 0x7f;
}
