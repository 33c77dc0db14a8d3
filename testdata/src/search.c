/* search.c - the shapes of glibc's strstr and of a structure copied by
 * value, with the stack traffic gcc gives them at -O1/-O2: a 256-entry
 * shift table on the stack cleared by `rep stosd`, a structure copied by
 * `rep movsd`.
 *
 * find(HAY, NEEDLE) is a Horspool search: the table is cleared, filled from
 * the needle, then read at indices computed from the haystack. Specialized
 * to a static needle the table is static and its reads are not.
 * shuffle(SEED, K) fills a structure from SEED, copies it by value,
 * changes the copy at K and sums both; specialized to a static K the copy
 * moves dynamic words between known places.
 *
 * Usage: search NEEDLE HAYSTACK SEED K   prints find(HAYSTACK, NEEDLE) and
 * shuffle(SEED, K); exit status = (find + shuffle) & 0x7f, or 2 on bad
 * usage. */
#include "../rt/rt.h"

WIPER_TARGET int find(const char *hay, const char *needle)
{
	unsigned char shift[256];
	int n = rt_strlen(needle), h = rt_strlen(hay), i, k;

	if (n == 0)
		return 0;
	if (n > h)
		return -1;
	__builtin_memset(shift, 0, sizeof shift);
	for (i = 0; i < n - 1; i++)
		shift[(unsigned char)needle[i]] = (unsigned char)(n - 1 - i);
	for (k = 0; k + n <= h;) {
		int j = n - 1;
		unsigned char s;

		while (j >= 0 && hay[k + j] == needle[j])
			j--;
		if (j < 0)
			return k;
		/* 0: the character is not in the needle, skip it whole. */
		s = shift[(unsigned char)hay[k + n - 1]];
		k += s ? s : n;
	}
	return -1;
}

struct record {
	int v[12];
};

WIPER_TARGET int shuffle(int seed, int k)
{
	struct record a, b;
	int i, s = 0;

	for (i = 0; i < 12; i++)
		a.v[i] = seed * (i + 1) + k;
	b = a;
	b.v[k & 7] ^= seed;
	for (i = 0; i < 12; i++)
		s += a.v[i] * (i + 1) - b.v[i];
	return s;
}

int main(int argc, char **argv)
{
	int f, s;

	if (argc < 5) {
		print_str("usage: search NEEDLE HAYSTACK SEED K\n");
		return 2;
	}
	f = find(argv[2], argv[1]);
	print_int(f);
	print_nl();
	s = shuffle(parse_int(argv[3]), parse_int(argv[4]));
	print_int(s);
	print_nl();
	return (f + s) & 0x7f;
}
