/* expr.c - benchmark driver for eval_expr(src, x, y) of src/expr.c (a
 * recursive-descent evaluator), specialized for the expression
 * "(x + 3) * (y - x) + 2 * x * x - 7 * y + 100"
 * (wiper spec: --static arg0=@str:(x + 3) * (y - x) + 2 * x * x - 7 * y + 100).
 *
 * Usage: expr REPS X Y   calls eval_expr(EXPR, X, Y) REPS times, folds the
 * results into acc = acc * 31 + r (unsigned), prints acc;
 * exit status = acc & 0x7f, or 2 on bad usage.
 *
 * Built without HAND: the original eval_expr of src/expr.c (its main
 * renamed program_main). Built with -DHAND: eval_expr written by hand for
 * that expression (same name and signature; src is unused).
 */
#include "bench.h"

#define EXPR "(x + 3) * (y - x) + 2 * x * x - 7 * y + 100"

#ifdef HAND
/* Hand-specialized eval_expr: the expression in C, on unsigned values. */
WIPER_TARGET int eval_expr(const char *src, int x, int y)
{
	unsigned int ux = (unsigned int)x, uy = (unsigned int)y;

	(void)src;
	return (int)((ux + 3) * (uy - ux) + 2 * ux * ux - 7 * uy + 100);
}
#else
#define main program_main
#include "../src/expr.c"
#undef main
#endif

int main(int argc, char **argv)
{
	unsigned int acc = 0;
	int reps, x, y, i;

	reps = bench_reps(argc, argv, 2, "usage: expr REPS X Y\n");
	if (reps < 0)
		return 2;
	x = parse_int(argv[2]);
	y = parse_int(argv[3]);
	for (i = 0; i < reps; i++)
		acc = bench_fold(acc, eval_expr(EXPR, x, y));
	return bench_report(acc);
}
