/* fill.c - counted loops with a static trip count over dynamic data: a
 * buffer filled and then summed, N turns each. Specialized to a static N and
 * a dynamic seed, every turn does dynamic work, so unrolling them all would
 * cost code in proportion to N: such loops must stay loops.
 * Usage: fill N SEED   prints fill_sum(N, SEED) (N is clamped to 0..20000);
 * exit status = result & 0x7f. */
#include "../rt/rt.h"

#define FILL_MAX 20000

static int buf[FILL_MAX];

WIPER_TARGET int fill_sum(int n, int seed)
{
	int i, s = 0;

	for (i = 0; i < n; i++)
		buf[i] = seed * i + (seed >> 3);
	for (i = 0; i < n; i++)
		s += buf[i] ^ (i & seed);
	return s;
}

int main(int argc, char **argv)
{
	int n, r;

	if (argc < 3) {
		print_str("usage: fill N SEED\n");
		return 2;
	}
	n = parse_int(argv[1]);
	if (n < 0)
		n = 0;
	if (n > FILL_MAX)
		n = FILL_MAX;
	r = fill_sum(n, parse_int(argv[2]));
	print_int(r);
	print_nl();
	return r & 0x7f;
}
