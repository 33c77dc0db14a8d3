/* libc_demo.c - a program built against glibc (static, dynamic, PIE and
 * stripped variants): printf, strlen, strcmp, qsort with a comparison
 * callback, malloc/free, atoi.
 *
 * Usage: libc_demo WORD X Y N [V...]   prints, one per line:
 *   classify(WORD)
 *   power(X, Y, N)
 *   sort_and_sum(V..., count)  (of a malloc'ed copy of the Vs)
 *   the sorted Vs, space separated (an empty line if there are none)
 * exit status = (classify + power + sort_and_sum) & 0x7f, or 2 on bad usage.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define WIPER_TARGET __attribute__((noipa))

/* The slides' example, as in power.c. */
WIPER_TARGET int power(int x, int y, int n)
{
	int a = 1;
	while (n--) {
		a *= (x + y);
	}
	return a;
}

/* qsort callback: ascending ints, without overflow. */
static int cmp_int(const void *pa, const void *pb)
{
	int a = *(const int *)pa;
	int b = *(const int *)pb;
	return (a > b) - (a < b);
}

/* Sorts v[0..n) ascending in place and returns the weighted sum
 * v[0]*1 + v[1]*2 + ... + v[n-1]*n (wrapping), so the order matters. */
WIPER_TARGET int sort_and_sum(int *v, int n)
{
	unsigned int s = 0;
	int i;
	qsort(v, (size_t)n, sizeof v[0], cmp_int);
	for (i = 0; i < n; i++)
		s += (unsigned int)v[i] * (unsigned int)(i + 1);
	return (int)s;
}

/* 1 for "add", 2 for "sub", 3 for "mul", otherwise 100 + strlen(s). */
WIPER_TARGET int classify(const char *s)
{
	if (strcmp(s, "add") == 0)
		return 1;
	if (strcmp(s, "sub") == 0)
		return 2;
	if (strcmp(s, "mul") == 0)
		return 3;
	return 100 + (int)strlen(s);
}

int main(int argc, char **argv)
{
	int c, p, s, n, i;
	int *v;

	if (argc < 5) {
		printf("usage: libc_demo WORD X Y N [V...]\n");
		return 2;
	}
	c = classify(argv[1]);
	printf("%d\n", c);
	p = power(atoi(argv[2]), atoi(argv[3]), atoi(argv[4]));
	printf("%d\n", p);
	n = argc - 5;
	v = malloc((size_t)(n > 0 ? n : 1) * sizeof *v);
	if (v == NULL)
		return 3;
	for (i = 0; i < n; i++)
		v[i] = atoi(argv[5 + i]);
	s = sort_and_sum(v, n);
	printf("%d\n", s);
	for (i = 0; i < n; i++)
		printf(i ? " %d" : "%d", v[i]);
	printf("\n");
	free(v);
	return (int)(((unsigned int)c + (unsigned int)p + (unsigned int)s) & 0x7f);
}
