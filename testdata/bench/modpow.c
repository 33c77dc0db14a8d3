/* modpow.c - benchmark driver for modpow(b, e, m) of src/modpow.c,
 * specialized for e = 12345 and m = 65521 (the largest prime below 2^16)
 * (wiper spec: --static arg1=12345 --static arg2=65521); b is dynamic.
 *
 * Usage: modpow REPS B   calls modpow(B + i, 12345, 65521) for i = 0 ..
 * REPS-1, folds the results into acc = acc * 31 + r (unsigned), prints acc;
 * exit status = acc & 0x7f, or 2 on bad usage.
 *
 * Built without HAND: the original modpow of src/modpow.c (its main renamed
 * program_main). Built with -DHAND: modpow written by hand for that exponent
 * and modulus (same name and signature; e and m are unused): the square and
 * multiply loop unrolled over the bits of 12345 = 0b11000000111001, the
 * modulus a constant (which gcc turns into a multiplication).
 */
#include "bench.h"

#ifdef HAND
#define M 65521u

/* Hand-specialized modpow: b^12345 mod 65521. */
WIPER_TARGET unsigned int modpow(unsigned int b, unsigned int e, unsigned int m)
{
	unsigned int r;

	(void)e;
	(void)m;
	b %= M;
	r = b;                            /* bit 0: r = 1 * b */
	b = b * b % M;                    /* b^2 */
	b = b * b % M;                    /* b^4 */
	b = b * b % M;                    /* b^8 */
	r = r * b % M;                    /* bit 3 */
	b = b * b % M;                    /* b^16 */
	r = r * b % M;                    /* bit 4 */
	b = b * b % M;                    /* b^32 */
	r = r * b % M;                    /* bit 5 */
	b = b * b % M;                    /* b^64 */
	b = b * b % M;                    /* b^128 */
	b = b * b % M;                    /* b^256 */
	b = b * b % M;                    /* b^512 */
	b = b * b % M;                    /* b^1024 */
	b = b * b % M;                    /* b^2048 */
	b = b * b % M;                    /* b^4096 */
	r = r * b % M;                    /* bit 12 */
	b = b * b % M;                    /* b^8192 */
	r = r * b % M;                    /* bit 13 */
	return r;
}
#else
#define main program_main
#include "../src/modpow.c"
#undef main
#endif

int main(int argc, char **argv)
{
	unsigned int acc = 0;
	int reps, i;
	unsigned int b;

	reps = bench_reps(argc, argv, 1, "usage: modpow REPS B\n");
	if (reps < 0)
		return 2;
	b = (unsigned int)parse_int(argv[2]);
	for (i = 0; i < reps; i++)
		acc = bench_fold(acc, (int)modpow(b + (unsigned int)i, 12345, 65521));
	return bench_report(acc);
}
