/* fpu.c - instructions wiper has no formulas for: x87 arithmetic, compares
 * and conversions (fild, fdivp, fucomip, fnstcw/fldcw, fistp), SSE2 (a
 * function built with -mfpmath=sse) and cpuid. wiper passes them through
 * as opaque parts.
 * Usage: fpu A B N   prints ratio_permille(A, B), poly(A, N) (as an int),
 * clamp_scale(A, B, N), sse_mix(A, B, N) and sse_bit(1); exit status =
 * the sum of the results & 0x7f. */
#include "../rt/rt.h"

/* Floating point in SSE2 registers instead of the x87 stack. */
#define SSE2_MATH __attribute__((target("sse2,fpmath=sse")))

/* num / den in thousandths (0 for den == 0): fild, fdivp, fmul, and the
 * truncating conversion (fnstcw, fldcw, fistp). */
WIPER_TARGET int ratio_permille(int num, int den)
{
	double r;

	if (den == 0)
		return 0;
	r = (double)num / (double)den;
	return (int)(r * 1000.0);
}

/* Horner's rule on 1, 1, 2, ..., n: a loop of x87 operations that a
 * static n unrolls. */
WIPER_TARGET double poly(int x, int n)
{
	double acc = 1.0;
	int i;

	for (i = 1; i <= n; i++)
		acc = acc * (double)x + (double)i;
	return acc;
}

/* x87 compares whose flags steer branches (fucomip / fcomip). */
WIPER_TARGET int clamp_scale(int a, int b, int n)
{
	double v = (double)a * 0.5 + (double)b;
	double lim = (double)n * 10.0;

	if (v > lim)
		return n * 10;
	if (v < -lim)
		return -n * 10;
	return (int)v;
}

/* The same kind of arithmetic in SSE2 registers (cvtsi2sd, mulsd, divsd,
 * comisd, cvttsd2si). */
SSE2_MATH WIPER_TARGET int sse_mix(int a, int b, int n)
{
	double x = (double)a / 3.0;
	double y = (double)b * (double)n;

	if (x > y)
		return (int)(x - y);
	return (int)(y * 0.25 + x);
}

/* cpuid: bit `bit` of edx for leaf 1 (bit 25 is SSE). */
WIPER_TARGET int sse_bit(int leaf, int bit)
{
	unsigned a, b, c, d;

	__asm__ volatile("cpuid" : "=a"(a), "=b"(b), "=c"(c), "=d"(d) : "a"(leaf), "c"(0));
	(void)a;
	(void)b;
	(void)c;
	return (int)((d >> bit) & 1);
}

int main(int argc, char **argv)
{
	int a, b, n, r1, r2, r3, r4, r5;

	if (argc < 4) {
		print_str("usage: fpu A B N\n");
		return 2;
	}
	a = parse_int(argv[1]);
	b = parse_int(argv[2]);
	n = parse_int(argv[3]);
	if (n < 0 || n > 8 || a < -1000 || a > 1000) {
		print_str("fpu: N in 0..8, A in -1000..1000\n");
		return 2;
	}
	r1 = ratio_permille(a, b);
	r2 = (int)poly(a, n) % 100000;
	r3 = clamp_scale(a, b, n);
	r4 = sse_mix(a, b, n);
	r5 = sse_bit(1, 25);
	print_int(r1);
	print_nl();
	print_int(r2);
	print_nl();
	print_int(r3);
	print_nl();
	print_int(r4);
	print_nl();
	print_int(r5);
	print_nl();
	return (r1 + r2 + r3 + r4 + r5) & 0x7f;
}
