/* abn.c - the slides' `a + b[n]` example: a local array filled with v.
 * Usage: abn A V N   (N must be 0..4) prints abn(A, V, N);
 * exit status = result & 0x7f, or 2 on bad usage / N out of range. */
#include "../rt/rt.h"

WIPER_TARGET int abn(int a, int v, int n)
{
	int b[5];
	int i = 4;
	while (i >= 0) {
		b[i] = v;
		i--;
	}
	return a + b[n];
}

int main(int argc, char **argv)
{
	int n, r;

	if (argc < 4) {
		print_str("usage: abn A V N   (0 <= N <= 4)\n");
		return 2;
	}
	n = parse_int(argv[3]);
	if (n < 0 || n > 4) {
		print_str("abn: N out of range 0..4\n");
		return 2;
	}
	r = abn(parse_int(argv[1]), parse_int(argv[2]), n);
	print_int(r);
	print_nl();
	return r & 0x7f;
}
