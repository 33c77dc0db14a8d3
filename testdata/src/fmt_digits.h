/* fmt_digits.h - the digit writers of src/fmt.c, shared with the
 * hand-specialized formatter of bench/fmt.c (one copy of the helpers both
 * call). */
#ifndef WIPER_FMT_DIGITS_H
#define WIPER_FMT_DIGITS_H

/* Writes v in decimal to out; returns the number of digits (and sign). */
static int fmt_dec(char *out, int v)
{
	char buf[12];
	int i = sizeof buf, n = 0;
	unsigned int u = v < 0 ? 0u - (unsigned int)v : (unsigned int)v;

	do {
		buf[--i] = (char)('0' + u % 10);
		u /= 10;
	} while (u);
	if (v < 0)
		buf[--i] = '-';
	while (i < (int)sizeof buf)
		out[n++] = buf[i++];
	return n;
}

/* Writes u in lower-case hex to out; returns the number of digits. */
static int fmt_hex(char *out, unsigned int u)
{
	char buf[8];
	int i = sizeof buf, n = 0;

	do {
		buf[--i] = "0123456789abcdef"[u & 15];
		u >>= 4;
	} while (u);
	while (i < (int)sizeof buf)
		out[n++] = buf[i++];
	return n;
}

#endif
