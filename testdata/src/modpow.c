/* modpow.c - modular exponentiation, for specialization with a static
 * exponent and modulus.
 *
 * modpow(b, e, m) = b^e mod m by right-to-left square and multiply, in
 * 32-bit unsigned arithmetic: m must be 1..65536, so that products of
 * residues fit in 32 bits (no 64-bit division, which would need libgcc).
 *
 * Usage:
 *   modpow B E M   prints modpow(B, E, M) (B, E any 32-bit values taken as
 *                  unsigned, M in 1..65536); exit status = result & 0x7f.
 * Bad usage exits with status 2.
 */
#include "../rt/rt.h"

/* b^e mod m, for 1 <= m <= 65536. */
WIPER_TARGET unsigned int modpow(unsigned int b, unsigned int e, unsigned int m)
{
	unsigned int r = 1 % m;

	b %= m;
	while (e != 0) {
		if (e & 1)
			r = r * b % m;
		b = b * b % m;
		e >>= 1;
	}
	return r;
}

int main(int argc, char **argv)
{
	unsigned int b, e, m, r;

	if (argc < 4) {
		print_str("usage: modpow B E M\n");
		return 2;
	}
	b = (unsigned int)parse_int(argv[1]);
	e = (unsigned int)parse_int(argv[2]);
	m = (unsigned int)parse_int(argv[3]);
	if (m < 1 || m > 65536) {
		print_str("modpow: M out of range 1..65536\n");
		return 2;
	}
	r = modpow(b, e, m);
	print_int((int)r);
	print_nl();
	return (int)(r & 0x7f);
}
