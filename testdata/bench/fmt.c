/* fmt.c - benchmark driver for fmt(out, format, ...) of src/fmt.c (a
 * printf-like formatter), specialized for the format
 * "x: %d, y: %x, s: %s, %d%%"
 * (wiper spec: --static arg1=@str:x: %d, y: %x, s: %s, %d%%).
 *
 * Usage: fmt REPS A B S C   calls fmt(fmt_buf, FORMAT, A, B, S, C) REPS
 * times, folds the returned lengths into acc = acc * 31 + n (unsigned),
 * then prints, one per line: acc, the last output, the sum of its bytes;
 * exit status = acc & 0x7f, or 2 on bad usage. S of at most 200 bytes.
 *
 * Built without HAND: the original fmt and fmt_buf of src/fmt.c (its main
 * renamed program_main). Built with -DHAND: fmt written by hand for that
 * format (same name and signature; format is unused): the literal parts
 * copied with fixed-size memcpy, the conversions by the same helpers.
 */
#include "bench.h"

#define FORMAT "x: %d, y: %x, s: %s, %d%%"

#ifdef HAND
static char fmt_buf[1024];

#include "../src/fmt_digits.h"

/* Hand-specialized fmt for "x: %d, y: %x, s: %s, %d%%". */
WIPER_TARGET int fmt(char *out, const char *format, ...)
{
	__builtin_va_list ap;
	const char *s;
	int n;

	(void)format;
	__builtin_va_start(ap, format);
	__builtin_memcpy(out, "x: ", 3);
	n = 3;
	n += fmt_dec(out + n, __builtin_va_arg(ap, int));
	__builtin_memcpy(out + n, ", y: ", 5);
	n += 5;
	n += fmt_hex(out + n, __builtin_va_arg(ap, unsigned int));
	__builtin_memcpy(out + n, ", s: ", 5);
	n += 5;
	for (s = __builtin_va_arg(ap, const char *); *s; s++)
		out[n++] = *s;
	__builtin_memcpy(out + n, ", ", 2);
	n += 2;
	n += fmt_dec(out + n, __builtin_va_arg(ap, int));
	out[n++] = '%';
	__builtin_va_end(ap);
	out[n] = '\0';
	return n;
}
#else
#define main program_main
#include "../src/fmt.c"
#undef main
#endif

int main(int argc, char **argv)
{
	unsigned int acc = 0;
	int reps, a, b, c, i, n = 0, status;

	reps = bench_reps(argc, argv, 4, "usage: fmt REPS A B S C\n");
	if (reps < 0)
		return 2;
	if (rt_strlen(argv[4]) > 200) {
		print_str("fmt: S too long\n");
		return 2;
	}
	a = parse_int(argv[2]);
	b = parse_int(argv[3]);
	c = parse_int(argv[5]);
	for (i = 0; i < reps; i++) {
		n = fmt(fmt_buf, FORMAT, a, b, argv[4], c);
		acc = bench_fold(acc, n);
	}
	status = bench_report(acc);
	bench_print_bytes(fmt_buf, n);
	return status;
}
