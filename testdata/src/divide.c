/* divide.c - signed and unsigned division and remainder by a divisor that
 * is an argument, so that gcc must emit `idiv`/`div`: specialized to a
 * static divisor, wiper's residual should multiply by a magic number.
 *
 * The divisor -1 is mapped to negation so that INT_MIN / -1 never traps
 * in the original; the divisor 0 gives 0.
 *
 * Usage: divide A B   prints, one per line:
 *   sdiv(A, B), srem(A, B), sdivrem(A, B), udivrem(A, B), smod_sum(A, B)
 * exit status = sdivrem(A, B) & 0x7f.
 */
#include "../rt/rt.h"

/* a / b, truncating. */
WIPER_TARGET int sdiv(int a, int b)
{
	if (b == 0)
		return 0;
	if (b == -1)
		return (int)(0u - (unsigned int)a);
	return a / b;
}

/* a % b, with the sign of a. */
WIPER_TARGET int srem(int a, int b)
{
	if (b == 0 || b == -1)
		return 0;
	return a % b;
}

/* Quotient and remainder of one division, combined. */
WIPER_TARGET int sdivrem(int a, int b)
{
	int q, r;

	if (b == 0 || b == -1)
		return a;
	q = a / b;
	r = a % b;
	return (int)((unsigned int)q * 1000u + (unsigned int)r);
}

/* The same, unsigned. */
WIPER_TARGET unsigned int udivrem(unsigned int a, unsigned int b)
{
	if (b == 0)
		return a;
	return (a / b) * 1000u + a % b;
}

/* The sum of the remainders of a, a - 1, ..., a - 9 by b (signed): a
 * division inside a loop. */
WIPER_TARGET int smod_sum(int a, int b)
{
	int i, s = 0;

	if (b == 0 || b == -1)
		return 0;
	for (i = 0; i < 10; i++)
		s += (int)((unsigned int)a - (unsigned int)i) % b;
	return s;
}

int main(int argc, char **argv)
{
	int a, b, r;

	if (argc < 3) {
		print_str("usage: divide A B\n");
		return 2;
	}
	a = parse_int(argv[1]);
	b = parse_int(argv[2]);
	print_int(sdiv(a, b));
	print_nl();
	print_int(srem(a, b));
	print_nl();
	r = sdivrem(a, b);
	print_int(r);
	print_nl();
	print_int((int)udivrem((unsigned int)a, (unsigned int)b));
	print_nl();
	print_int(smod_sum(a, b));
	print_nl();
	return r & 0x7f;
}
