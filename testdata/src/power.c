/* power.c - the WiPEr slides' example: a = (x + y)^n.
 * Usage: power X Y N   prints power(X, Y, N); exit status = result & 0x7f. */
#include "../rt/rt.h"

WIPER_TARGET int power(int x, int y, int n)
{
	int a = 1;
	while (n--) {
		a *= (x + y);
	}
	return a;
}

int main(int argc, char **argv)
{
	int r;

	if (argc < 4) {
		print_str("usage: power X Y N\n");
		return 2;
	}
	r = power(parse_int(argv[1]), parse_int(argv[2]), parse_int(argv[3]));
	print_int(r);
	print_nl();
	return r & 0x7f;
}
