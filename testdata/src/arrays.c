/* arrays.c - array code for specialization with static sizes and static
 * tables.
 *
 * matvec(m, rows, cols, v, out): out = m v for a rows x cols matrix m (row
 *   by row), wrapping arithmetic (unsigned).
 * isort(a, n): sorts a[0..n) in place, ascending (insertion sort).
 * bsearch_tab(tab, n, key): the index of key in the ascending tab[0..n), or
 *   -1 (binary search).
 *
 * Usage:
 *   arrays matvec V0 V1 V2 V3   prints mat3x4 (V0 V1 V2 V3), one number
 *                               a line; exit status = out[0] & 0x7f
 *   arrays isort A...           sorts the 1 to 16 numbers A...; prints them
 *                               on one line; exit status = the first & 0x7f
 *   arrays bsearch KEY          prints bsearch_tab(sorted16, 16, KEY);
 *                               exit status = (result + 1) & 0x7f
 * Bad usage exits with status 2.
 */
#include "../rt/rt.h"

/* out[i] = sum over j of m[i * cols + j] * v[j], for i < rows. */
WIPER_TARGET void matvec(const int *m, int rows, int cols, const int *v, int *out)
{
	int i, j;

	for (i = 0; i < rows; i++) {
		unsigned int s = 0;
		for (j = 0; j < cols; j++)
			s += (unsigned int)m[i * cols + j] * (unsigned int)v[j];
		out[i] = (int)s;
	}
}

/* Sorts a[0..n) in place, ascending. */
WIPER_TARGET void isort(int *a, int n)
{
	int i, j;

	for (i = 1; i < n; i++) {
		int v = a[i];
		for (j = i - 1; j >= 0 && a[j] > v; j--)
			a[j + 1] = a[j];
		a[j + 1] = v;
	}
}

/* The index of key in the ascending tab[0..n), or -1. */
WIPER_TARGET int bsearch_tab(const int *tab, int n, int key)
{
	int lo = 0, hi = n - 1;

	while (lo <= hi) {
		int mid = lo + (hi - lo) / 2;
		if (tab[mid] == key)
			return mid;
		if (tab[mid] < key)
			lo = mid + 1;
		else
			hi = mid - 1;
	}
	return -1;
}

/* The matrix of `arrays matvec`: 3 rows of 4. */
static const int mat3x4[12] = {
	2, 0, 1, -1,
	0, 3, 0, 0,
	5, 1, 1, -7,
};

/* The table of `arrays bsearch`. */
static const int sorted16[16] = {
	-50, -7, 0, 3, 8, 13, 21, 34, 55, 89, 144, 233, 377, 610, 987, 1597,
};

static int streq(const char *a, const char *b)
{
	while (*a && *a == *b) {
		a++;
		b++;
	}
	return *a == *b;
}

int main(int argc, char **argv)
{
	int a[16], out[3];
	int i, n, r;

	if (argc >= 6 && streq(argv[1], "matvec")) {
		for (i = 0; i < 4; i++)
			a[i] = parse_int(argv[2 + i]);
		matvec(mat3x4, 3, 4, a, out);
		for (i = 0; i < 3; i++) {
			print_int(out[i]);
			print_nl();
		}
		return out[0] & 0x7f;
	}
	if (argc >= 3 && argc <= 18 && streq(argv[1], "isort")) {
		n = argc - 2;
		for (i = 0; i < n; i++)
			a[i] = parse_int(argv[2 + i]);
		isort(a, n);
		for (i = 0; i < n; i++) {
			if (i > 0)
				print_str(" ");
			print_int(a[i]);
		}
		print_nl();
		return a[0] & 0x7f;
	}
	if (argc >= 3 && streq(argv[1], "bsearch")) {
		r = bsearch_tab(sorted16, 16, parse_int(argv[2]));
		print_int(r);
		print_nl();
		return (r + 1) & 0x7f;
	}
	print_str("usage: arrays matvec V0 V1 V2 V3 | arrays isort A... | arrays bsearch KEY\n");
	return 2;
}
