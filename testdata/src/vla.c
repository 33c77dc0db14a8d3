/* vla.c - a variable-length array (`sub esp, eax` with a run-time size,
 * as alloca and gcc's VLAs compile) in a function that also keeps locals
 * in its fixed frame.
 *
 * weights(N, K) fills a[0..N) with i * K + N in a VLA, then sums the
 * entries that a second pass over a fixed-size local table selects; it
 * returns the sum. N is clamped to 1..64.
 *
 * Usage: vla N K   prints weights(N, K); exit status = result & 0x7f, or
 * 2 on bad usage. */
#include "../rt/rt.h"

WIPER_TARGET int weights(int n, int k)
{
	int pick[4] = { 1, 2, 3, 5 };
	int i, sum = 0;

	if (n < 1)
		n = 1;
	if (n > 64)
		n = 64;
	{
		int a[n];

		for (i = 0; i < n; i++)
			a[i] = i * k + n;
		for (i = 0; i < 4; i++)
			sum += a[pick[i] % n] * pick[i];
	}
	return sum + k;
}

int main(int argc, char **argv)
{
	int r;

	if (argc < 3) {
		print_str("usage: vla N K\n");
		return 2;
	}
	r = weights(parse_int(argv[1]), parse_int(argv[2]));
	print_int(r);
	print_nl();
	return r & 0x7f;
}
