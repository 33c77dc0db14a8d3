/* loops.c - simple loops: counting, Euclid, bit counting, nested loops,
 * a bounded Collatz walk.
 * Usage: loops A B   (or `loops` alone: reads A and B from stdin, as decimal
 * numbers, missing ones are 0) prints, one per line:
 *   sum_to(A), gcd(A, B), count_bits(A), nested(A & 15, B & 15),
 *   collatz_steps(A)
 * exit status = the sum of those results & 0x7f. */
#include "../rt/rt.h"

/* 1 + 2 + ... + n (0 for n <= 0), wrapping on overflow. */
WIPER_TARGET int sum_to(int n)
{
	unsigned int s = 0;
	int i;
	for (i = 1; i <= n; i++)
		s += (unsigned int)i;
	return (int)s;
}

/* Greatest common divisor of |a| and |b| (gcd(0, 0) = 0). Works on the
 * unsigned magnitudes, so no INT_MIN % -1 trap. */
WIPER_TARGET int gcd(int a, int b)
{
	unsigned int x = a < 0 ? 0u - (unsigned int)a : (unsigned int)a;
	unsigned int y = b < 0 ? 0u - (unsigned int)b : (unsigned int)b;
	while (y != 0) {
		unsigned int t = x % y;
		x = y;
		y = t;
	}
	return (int)x;
}

/* Number of set bits, one bit per iteration. */
WIPER_TARGET int count_bits(unsigned int x)
{
	int c = 0;
	while (x) {
		c += (int)(x & 1);
		x >>= 1;
	}
	return c;
}

/* Two nested counted loops: sum over i < n, j < m of (i * j) ^ (i + j). */
WIPER_TARGET int nested(int n, int m)
{
	int s = 0;
	int i, j;
	for (i = 0; i < n; i++)
		for (j = 0; j < m; j++)
			s += (i * j) ^ (i + j);
	return s;
}

/* Collatz steps from n down to 1, at most 1000 steps (0 for n <= 1). */
WIPER_TARGET int collatz_steps(int n)
{
	unsigned int u = (unsigned int)n;
	int steps = 0;
	if (n <= 1)
		return 0;
	while (u != 1 && steps < 1000) {
		if (u & 1)
			u = 3 * u + 1;
		else
			u = u / 2;
		steps++;
	}
	return steps;
}

int main(int argc, char **argv)
{
	int a, b, r, total = 0;

	if (argc >= 3) {
		a = parse_int(argv[1]);
		b = parse_int(argv[2]);
	} else if (argc == 1) {
		a = read_int();
		b = read_int();
	} else {
		print_str("usage: loops A B   or   loops < input\n");
		return 2;
	}
	r = sum_to(a);
	total += r;
	print_int(r);
	print_nl();
	r = gcd(a, b);
	total += r;
	print_int(r);
	print_nl();
	r = count_bits((unsigned int)a);
	total += r;
	print_int(r);
	print_nl();
	r = nested(a & 15, b & 15);
	total += r;
	print_int(r);
	print_nl();
	r = collatz_steps(a);
	total += r;
	print_int(r);
	print_nl();
	return total & 0x7f;
}
