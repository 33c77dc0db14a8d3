/* codelen.c - loops under dynamic control whose turns leave static data in
 * ever new combinations: the specializer cannot fold them and must not
 * unroll them without end.
 *
 * code_lengths(N, SEED) draws N symbol weights from SEED, builds Huffman
 * code lengths with a binary min-heap kept in local arrays (the heap's
 * entries are static indexes that move under compares of dynamic
 * weights), and returns the weighted total length. N is clamped to
 * 2..300.
 *
 * to_digits(V, BASE) writes V in BASE (clamped to 2..16) into a local
 * buffer from its end, one byte per turn while V is not zero, and returns
 * a checksum of the digits and their count.
 *
 * Usage: codelen N SEED V BASE   prints code_lengths(N, SEED) and
 * to_digits(V, BASE); exit status = their sum & 0x7f, or 2 on bad usage. */
#include "../rt/rt.h"

#define MAX_SYMBOLS 300

/* Moves heap[k] up while its parent weighs more. */
static void sift_up(int *heap, const unsigned *weight, int k)
{
	int item = heap[k];

	while (k > 1 && weight[heap[k / 2]] > weight[item]) {
		heap[k] = heap[k / 2];
		k /= 2;
	}
	heap[k] = item;
}

/* Removes and returns the lightest entry of a heap of *size entries. */
static int pop_lightest(int *heap, int *size, const unsigned *weight)
{
	int top = heap[1], k = 1, item;

	item = heap[(*size)--];
	for (;;) {
		int child = 2 * k;

		if (child > *size)
			break;
		if (child < *size && weight[heap[child + 1]] < weight[heap[child]])
			child++;
		if (weight[item] <= weight[heap[child]])
			break;
		heap[k] = heap[child];
		k = child;
	}
	heap[k] = item;
	return top;
}

WIPER_TARGET int code_lengths(int n, unsigned seed)
{
	unsigned weight[2 * MAX_SYMBOLS];
	int heap[MAX_SYMBOLS + 1];
	int parent[2 * MAX_SYMBOLS];
	int i, size = 0, nodes, total = 0;

	if (n < 2)
		n = 2;
	if (n > MAX_SYMBOLS)
		n = MAX_SYMBOLS;
	for (i = 0; i < n; i++) {
		seed = seed * 1103515245u + 12345u;
		weight[i] = ((seed >> 16) & 255) + 1;
	}
	for (i = 0; i < n; i++) {
		parent[i] = -1;
		heap[++size] = i;
		sift_up(heap, weight, size);
	}
	for (nodes = n; size > 1; nodes++) {
		int a = pop_lightest(heap, &size, weight);
		int b = pop_lightest(heap, &size, weight);

		weight[nodes] = weight[a] + weight[b];
		parent[a] = parent[b] = nodes;
		parent[nodes] = -1;
		heap[++size] = nodes;
		sift_up(heap, weight, size);
	}
	for (i = 0; i < n; i++) {
		int depth = 0, k = i;

		while (parent[k] >= 0) {
			k = parent[k];
			depth++;
		}
		total += depth * (int)weight[i];
	}
	return total;
}

WIPER_TARGET int to_digits(unsigned v, int base)
{
	static const char symbols[] = "0123456789abcdef";
	char buf[40];
	int i = sizeof buf, sum = 0;

	if (base < 2)
		base = 2;
	if (base > 16)
		base = 16;
	do {
		buf[--i] = symbols[v % (unsigned)base];
		v /= (unsigned)base;
	} while (v != 0);
	for (; i < (int)sizeof buf; i++)
		sum = sum * 31 + buf[i];
	return sum + i;
}

int main(int argc, char **argv)
{
	int a, b;

	if (argc < 5) {
		print_str("usage: codelen N SEED V BASE\n");
		return 2;
	}
	a = code_lengths(parse_int(argv[1]), (unsigned)parse_int(argv[2]));
	b = to_digits((unsigned)parse_int(argv[3]), parse_int(argv[4]));
	print_int(a);
	print_nl();
	print_int(b);
	print_nl();
	return (a + b) & 0x7f;
}
