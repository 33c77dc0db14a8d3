/* wide.c - a 64-bit result: its high half comes back in edx, which the
 * caller reads. A residual of `widen` must still put a known edx there
 * (the specializer drops edx at `ret` only when no caller reads it).
 *
 * Usage: wide A K   prints, one per line, the high and the low half of
 *   widen(A, K) = (K << 32) | (unsigned)(A + K)   (a 64-bit value)
 * exit status = the high half & 0x7f, or 2 on bad usage.
 */
#include "../rt/rt.h"

WIPER_TARGET long long widen(int x, int k)
{
	unsigned long long hi = (unsigned long long)(unsigned int)k << 32;

	return (long long)(hi | (unsigned int)(x + k));
}

int main(int argc, char **argv)
{
	long long r;

	if (argc < 3) {
		print_str("usage: wide A K\n");
		return 2;
	}
	r = widen(parse_int(argv[1]), parse_int(argv[2]));
	print_int((int)(r >> 32));
	print_nl();
	print_int((int)r);
	print_nl();
	return (int)(r >> 32) & 0x7f;
}
