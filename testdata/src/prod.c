/* prod.c - the slides' running example: p = n * (x + y) by repeated addition.
 * Usage: prod X Y N   prints prod(X, Y, N); exit status = result & 0x7f. */
#include "../rt/rt.h"

WIPER_TARGET int prod(int x, int y, int n)
{
	int p = 0;
	while (n--) {
		p = p + (x + y);
	}
	return p;
}

int main(int argc, char **argv)
{
	int r;

	if (argc < 4) {
		print_str("usage: prod X Y N\n");
		return 2;
	}
	r = prod(parse_int(argv[1]), parse_int(argv[2]), parse_int(argv[3]));
	print_int(r);
	print_nl();
	return r & 0x7f;
}
