/* recursion.c - recursive functions.
 * Usage: recursion N X   prints, one per line:
 *   fact(N), fib(N & 15), ackermann(X & 3, N & 7), pow_rec(X, N & 31)
 * (the masks keep the running time small). exit status = fact(N) & 0x7f. */
#include "../rt/rt.h"

/* n! (1 for n <= 1), wrapping on overflow. */
WIPER_TARGET int fact(int n)
{
	if (n <= 1)
		return 1;
	return (int)((unsigned int)n * (unsigned int)fact(n - 1));
}

/* Naive doubly recursive Fibonacci: fib(0) = 0, fib(1) = 1. */
WIPER_TARGET int fib(int n)
{
	if (n < 2)
		return n;
	return fib(n - 1) + fib(n - 2);
}

/* Ackermann-Peter function; only call it with tiny m and n. */
WIPER_TARGET int ackermann(int m, int n)
{
	if (m == 0)
		return n + 1;
	if (n == 0)
		return ackermann(m - 1, 1);
	return ackermann(m - 1, ackermann(m, n - 1));
}

/* x^n by recursion on n (1 for n <= 0), wrapping on overflow. */
WIPER_TARGET int pow_rec(int x, int n)
{
	if (n <= 0)
		return 1;
	return (int)((unsigned int)x * (unsigned int)pow_rec(x, n - 1));
}

int main(int argc, char **argv)
{
	int n, x, f;

	if (argc < 3) {
		print_str("usage: recursion N X\n");
		return 2;
	}
	n = parse_int(argv[1]);
	x = parse_int(argv[2]);
	f = fact(n);
	print_int(f);
	print_nl();
	print_int(fib(n & 15));
	print_nl();
	print_int(ackermann(x & 3, n & 7));
	print_nl();
	print_int(pow_rec(x, n & 31));
	print_nl();
	return f & 0x7f;
}
