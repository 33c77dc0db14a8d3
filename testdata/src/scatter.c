/* scatter.c - a store into a local array at an index nobody checks, beside
 * static arguments the function reads afterwards.
 *
 * scatter(AT, V, N, SCALE) fills cells[0..16) from V, stores 7 at
 * cells[AT] (AT is not checked: outside 0..15 the store hits whatever the
 * compiler placed there, as in the C programs this models: saved
 * registers, the return address, the arguments), then folds N cells into
 * a sum with SCALE, which it returns. With N and SCALE static, the fold is
 * specialized only while they stay known after the store; the residual
 * checks that the store stays among the bytes it does not know and
 * otherwise runs the original code from the store on (which then reads
 * what the store left in N or SCALE, as the original does).
 *
 * Usage: scatter AT V N SCALE   prints scatter(AT, V, N, SCALE); exit
 * status = result & 0x7f, or 2 on bad usage. */
#include "../rt/rt.h"

WIPER_TARGET int scatter(int at, int v, int n, int scale)
{
	char cells[16];
	int i, sum = 0;

	for (i = 0; i < 16; i++)
		cells[i] = (char)(v + i);
	cells[at] = 7;
	for (i = 0; i < n; i++)
		sum = sum * scale + cells[i & 15];
	return sum;
}

int main(int argc, char **argv)
{
	int r;

	if (argc < 5) {
		print_str("usage: scatter AT V N SCALE\n");
		return 2;
	}
	r = scatter(parse_int(argv[1]), parse_int(argv[2]), parse_int(argv[3]),
		    parse_int(argv[4]));
	print_int(r);
	print_nl();
	return r & 0x7f;
}
