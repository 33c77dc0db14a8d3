/* regex.c - benchmark driver for re_match(re, text) of src/regex.c
 * (Kernighan and Pike's matcher), specialized for the pattern "ab*c.*z$"
 * (wiper spec: --static arg0=@str:ab*c.*z$).
 *
 * Usage: regex REPS TEXT   calls re_match("ab*c.*z$", TEXT) REPS times,
 * folds the results into acc = acc * 31 + r (unsigned), prints acc and the
 * last result; exit status = acc & 0x7f, or 2 on bad usage.
 *
 * Built without HAND: the original re_match of src/regex.c (its main
 * renamed program_main). Built with -DHAND: re_match written by hand for
 * that pattern (same name and signature; re is unused): the matcher's
 * recursion unfolded along the pattern, its backtracking kept.
 */
#include "bench.h"

#ifdef HAND
/* ".*z$" at t: any characters, then a z that ends the text. */
static int here_any_z(const char *t)
{
	do {
		if (t[0] == 'z' && t[1] == '\0')
			return 1;
	} while (*t++ != '\0');
	return 0;
}

/* "b*c.*z$" at t. */
static int here_b_star(const char *t)
{
	do {
		if (t[0] == 'c' && here_any_z(t + 1))
			return 1;
	} while (*t != '\0' && *t++ == 'b');
	return 0;
}

/* Hand-specialized re_match for "ab*c.*z$". */
WIPER_TARGET int re_match(const char *re, const char *text)
{
	const char *s = text;

	(void)re;
	do {
		if (s[0] == 'a' && here_b_star(s + 1))
			return (int)(s - text);
	} while (*s++ != '\0');
	return -1;
}
#else
#define main program_main
#include "../src/regex.c"
#undef main
#endif

int main(int argc, char **argv)
{
	unsigned int acc = 0;
	int reps, i, r = 0, status;

	reps = bench_reps(argc, argv, 1, "usage: regex REPS TEXT\n");
	if (reps < 0)
		return 2;
	for (i = 0; i < reps; i++) {
		r = re_match("ab*c.*z$", argv[2]);
		acc = bench_fold(acc, r);
	}
	status = bench_report(acc);
	print_int(r);
	print_nl();
	return status;
}
