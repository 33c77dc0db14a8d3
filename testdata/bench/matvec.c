/* matvec.c - benchmark driver for matvec(m, rows, cols, v, out) of
 * src/arrays.c, specialized for m = mat3x4 (a static 3 x 4 matrix), rows = 3
 * and cols = 4; v and out are dynamic pointers
 * (wiper spec: --static arg0=@i32:2,0,1,-1,0,3,0,0,5,1,1,-7 --static arg1=3
 * --static arg2=4).
 *
 * Usage: matvec REPS V0 V1 V2 V3   calls matvec(mat3x4, 3, 4, v, out) REPS
 * times, folds out[0], out[1], out[2] of each call into acc = acc * 31 + r
 * (unsigned), then prints, one per line: acc, out[0], out[1], out[2] of the
 * last call; exit status = acc & 0x7f, or 2 on bad usage.
 *
 * Built without HAND: the original matvec and mat3x4 of src/arrays.c (its
 * main renamed program_main). Built with -DHAND: matvec written by hand for
 * that matrix (same name and signature; m, rows and cols are unused), and a
 * copy of mat3x4 for the call.
 */
#include "bench.h"

#ifdef HAND
static const int mat3x4[12] = {
	2, 0, 1, -1,
	0, 3, 0, 0,
	5, 1, 1, -7,
};

/* Hand-specialized matvec: the products by 0 dropped, by 1 additions. */
WIPER_TARGET void matvec(const int *m, int rows, int cols, const int *v, int *out)
{
	unsigned int v0 = (unsigned int)v[0], v1 = (unsigned int)v[1];
	unsigned int v2 = (unsigned int)v[2], v3 = (unsigned int)v[3];

	(void)m;
	(void)rows;
	(void)cols;
	out[0] = (int)(2 * v0 + v2 - v3);
	out[1] = (int)(3 * v1);
	out[2] = (int)(5 * v0 + v1 + v2 - 7 * v3);
}
#else
#define main program_main
#include "../src/arrays.c"
#undef main
#endif

int main(int argc, char **argv)
{
	unsigned int acc = 0;
	int reps, i, j, v[4], out[3] = { 0, 0, 0 }, status;

	reps = bench_reps(argc, argv, 4, "usage: matvec REPS V0 V1 V2 V3\n");
	if (reps < 0)
		return 2;
	for (j = 0; j < 4; j++)
		v[j] = parse_int(argv[2 + j]);
	for (i = 0; i < reps; i++) {
		matvec(mat3x4, 3, 4, v, out);
		for (j = 0; j < 3; j++)
			acc = bench_fold(acc, out[j]);
	}
	status = bench_report(acc);
	for (j = 0; j < 3; j++) {
		print_int(out[j]);
		print_nl();
	}
	return status;
}
