/* fmt.c - a printf-like formatter, for specialization with a static format.
 *
 * fmt(out, format, ...) writes `format` to `out` with its conversions
 * replaced by the next arguments: `%d` an int in decimal, `%x` an unsigned
 * int in lower-case hex, `%c` a character (an int), `%s` a string, `%%` a
 * percent sign; `%` before any other character is copied with it, and a `%`
 * ending the format is copied. It NUL-terminates `out` and returns the
 * number of bytes before the NUL. The arguments are read with
 * __builtin_va_arg (no libc).
 *
 * Usage:
 *   fmt FORMAT A B S C   prints fmt(buf, FORMAT, A, B, S, C) (A, B, C
 *                        numbers, S a string) and the length on the next
 *                        line; exit status = length & 0x7f. The conversions
 *                        of FORMAT must take the arguments in that order:
 *                        %d, %x or %c for A, B and C, %s for S. FORMAT and S
 *                        have at most 200 bytes.
 * Bad usage exits with status 2.
 */
#include "../rt/rt.h"

#include "fmt_digits.h"

/* Formats the arguments after `format` into out (see the top). */
WIPER_TARGET int fmt(char *out, const char *format, ...)
{
	__builtin_va_list ap;
	const char *p, *s;
	int n = 0;

	__builtin_va_start(ap, format);
	for (p = format; *p; p++) {
		if (*p != '%') {
			out[n++] = *p;
			continue;
		}
		switch (p[1]) {
		case 'd':
			n += fmt_dec(out + n, __builtin_va_arg(ap, int));
			break;
		case 'x':
			n += fmt_hex(out + n, __builtin_va_arg(ap, unsigned int));
			break;
		case 'c':
			out[n++] = (char)__builtin_va_arg(ap, int);
			break;
		case 's':
			for (s = __builtin_va_arg(ap, const char *); *s; s++)
				out[n++] = *s;
			break;
		case '%':
			out[n++] = '%';
			break;
		case '\0':
			out[n++] = '%';
			continue; /* p + 1 is the end */
		default:
			out[n++] = '%';
			out[n++] = p[1];
			break;
		}
		p++;
	}
	__builtin_va_end(ap);
	out[n] = '\0';
	return n;
}

/* Whether the conversions of format take int, int, string, int (a prefix
 * of that), as main passes them. */
static int format_ok(const char *format)
{
	static const char kinds[] = "iisi";
	int k = 0;

	for (; *format; format++) {
		char c;
		if (*format != '%')
			continue;
		c = format[1];
		if (c == 'd' || c == 'x' || c == 'c' || c == 's') {
			if (k >= 4 || kinds[k] != (c == 's' ? 's' : 'i'))
				return 0;
			k++;
		}
		if (c)
			format++;
	}
	return 1;
}

static char fmt_buf[1024];

int main(int argc, char **argv)
{
	int n;

	if (argc < 6) {
		print_str("usage: fmt FORMAT A B S C\n");
		return 2;
	}
	if (rt_strlen(argv[1]) > 200 || rt_strlen(argv[4]) > 200 ||
	    !format_ok(argv[1])) {
		print_str("fmt: bad format or string\n");
		return 2;
	}
	n = fmt(fmt_buf, argv[1], parse_int(argv[2]), parse_int(argv[3]),
		argv[4], parse_int(argv[5]));
	rt_write(1, fmt_buf, n);
	print_nl();
	print_int(n);
	print_nl();
	return n & 0x7f;
}
