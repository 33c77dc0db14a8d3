/* uncalled.c - specs that do not mean what they say (wiper's warnings):
 * never_called is a function nothing in the program calls, main calls
 * scale with the constant k = 3, and pick never reads its second argument.
 * Usage: uncalled X   prints pick(scale(X, 3), argc, X);
 * exit status = result & 0x7f. */
#include "../rt/rt.h"

WIPER_TARGET int never_called(int n)
{
	int s = 0;
	while (n-- > 0)
		s += n;
	return s;
}

WIPER_TARGET int scale(int x, int k)
{
	return x * k + 1;
}

WIPER_TARGET int pick(int a, int unused, int c)
{
	(void)unused;
	return a - c;
}

int main(int argc, char **argv)
{
	int r;

	if (argc < 2) {
		print_str("usage: uncalled X\n");
		return 2;
	}
	r = scale(parse_int(argv[1]), 3);
	r = pick(r, argc, parse_int(argv[1]));
	print_int(r);
	print_nl();
	return r & 0x7f;
}
