/* bench.h - the driver side every benchmark in bench/ shares: REPS and
 * usage checking, the accumulator the results are folded into, and its
 * report. Each FAMILY.c includes this, then either its hand-specialized
 * function (-DHAND) or its src/ program, and defines main. */
#ifndef WIPER_BENCH_H
#define WIPER_BENCH_H

#include "../rt/rt.h"

/* The last accumulator. This writable global gives every bench binary a
 * writable segment: valgrind (3.19) reads no symbols from an executable
 * without one, and callgrind could not name the functions. */
unsigned int bench_acc;

/* REPS (argv[1]) when argv has it and `nargs` dynamic arguments after it;
 * otherwise prints `usage` and returns -1. */
static inline int bench_reps(int argc, char **argv, int nargs, const char *usage)
{
	if (argc < 2 + nargs) {
		print_str(usage);
		return -1;
	}
	return parse_int(argv[1]);
}

/* One more result folded into the accumulator: acc * 31 + r, unsigned. */
static inline unsigned int bench_fold(unsigned int acc, int r)
{
	return acc * 31u + (unsigned int)r;
}

/* Keeps and prints the accumulator; returns the exit status, acc & 0x7f. */
static inline int bench_report(unsigned int acc)
{
	bench_acc = acc;
	print_int((int)acc);
	print_nl();
	return (int)(acc & 0x7f);
}

/* Prints the `n` bytes of `buf` on a line, then their byte sum on the next. */
static inline void bench_print_bytes(const char *buf, int n)
{
	unsigned int sum = 0;
	int i;

	rt_write(1, buf, n);
	print_nl();
	for (i = 0; i < n; i++)
		sum += (unsigned char)buf[i];
	print_int((int)sum);
	print_nl();
}

#endif
