/* calls.c - calls between functions, pointer arguments, strings, globals,
 * read-only lookup tables and a call through a function pointer.
 *
 * Usage: calls A B STRING   prints, one per line:
 *   sum_array({A, B, A*B, A-B, 7}, 5)
 *   x, y              (two lines: x = A, y = B, then swap(&x, &y): B, A)
 *   my_strlen(STRING)
 *   count_char(STRING, 'a')
 *   bump(A), bump(B)  (two lines; counter starts at 0)
 *   lookup(A)
 *   crc8(STRING, my_strlen(STRING))
 *   apply(square, A), apply(add_one, B)   (two lines)
 *   mix(A, B)
 *   counter
 * exit status = mix(A, B) & 0x7f.
 *
 * Usage: calls arrays N STRING V...   (at most 16 Vs) calls each of
 * sum_array and crc8 exactly once (mix is not called), so a residual
 * specialized to a static array sees no other caller; prints, one per line:
 *   sum_array({V...}, min(N, number of Vs))
 *   crc8(STRING, min(N, my_strlen(STRING)))
 * exit status = the sum of both & 0x7f.
 */
#include "../rt/rt.h"

int counter; /* global state, changed by bump() */

/* Read-only table: the first 16 primes. */
static const int table[16] = {
	2, 3, 5, 7, 11, 13, 17, 19, 23, 29, 31, 37, 41, 43, 47, 53,
};

/* CRC-8 with polynomial x^8 + x^2 + x + 1 (0x07), initial value 0. */
static const unsigned char crc8_table[256] = {
	0x00, 0x07, 0x0e, 0x09, 0x1c, 0x1b, 0x12, 0x15, 0x38, 0x3f, 0x36, 0x31,
	0x24, 0x23, 0x2a, 0x2d, 0x70, 0x77, 0x7e, 0x79, 0x6c, 0x6b, 0x62, 0x65,
	0x48, 0x4f, 0x46, 0x41, 0x54, 0x53, 0x5a, 0x5d, 0xe0, 0xe7, 0xee, 0xe9,
	0xfc, 0xfb, 0xf2, 0xf5, 0xd8, 0xdf, 0xd6, 0xd1, 0xc4, 0xc3, 0xca, 0xcd,
	0x90, 0x97, 0x9e, 0x99, 0x8c, 0x8b, 0x82, 0x85, 0xa8, 0xaf, 0xa6, 0xa1,
	0xb4, 0xb3, 0xba, 0xbd, 0xc7, 0xc0, 0xc9, 0xce, 0xdb, 0xdc, 0xd5, 0xd2,
	0xff, 0xf8, 0xf1, 0xf6, 0xe3, 0xe4, 0xed, 0xea, 0xb7, 0xb0, 0xb9, 0xbe,
	0xab, 0xac, 0xa5, 0xa2, 0x8f, 0x88, 0x81, 0x86, 0x93, 0x94, 0x9d, 0x9a,
	0x27, 0x20, 0x29, 0x2e, 0x3b, 0x3c, 0x35, 0x32, 0x1f, 0x18, 0x11, 0x16,
	0x03, 0x04, 0x0d, 0x0a, 0x57, 0x50, 0x59, 0x5e, 0x4b, 0x4c, 0x45, 0x42,
	0x6f, 0x68, 0x61, 0x66, 0x73, 0x74, 0x7d, 0x7a, 0x89, 0x8e, 0x87, 0x80,
	0x95, 0x92, 0x9b, 0x9c, 0xb1, 0xb6, 0xbf, 0xb8, 0xad, 0xaa, 0xa3, 0xa4,
	0xf9, 0xfe, 0xf7, 0xf0, 0xe5, 0xe2, 0xeb, 0xec, 0xc1, 0xc6, 0xcf, 0xc8,
	0xdd, 0xda, 0xd3, 0xd4, 0x69, 0x6e, 0x67, 0x60, 0x75, 0x72, 0x7b, 0x7c,
	0x51, 0x56, 0x5f, 0x58, 0x4d, 0x4a, 0x43, 0x44, 0x19, 0x1e, 0x17, 0x10,
	0x05, 0x02, 0x0b, 0x0c, 0x21, 0x26, 0x2f, 0x28, 0x3d, 0x3a, 0x33, 0x34,
	0x4e, 0x49, 0x40, 0x47, 0x52, 0x55, 0x5c, 0x5b, 0x76, 0x71, 0x78, 0x7f,
	0x6a, 0x6d, 0x64, 0x63, 0x3e, 0x39, 0x30, 0x37, 0x22, 0x25, 0x2c, 0x2b,
	0x06, 0x01, 0x08, 0x0f, 0x1a, 0x1d, 0x14, 0x13, 0xae, 0xa9, 0xa0, 0xa7,
	0xb2, 0xb5, 0xbc, 0xbb, 0x96, 0x91, 0x98, 0x9f, 0x8a, 0x8d, 0x84, 0x83,
	0xde, 0xd9, 0xd0, 0xd7, 0xc2, 0xc5, 0xcc, 0xcb, 0xe6, 0xe1, 0xe8, 0xef,
	0xfa, 0xfd, 0xf4, 0xf3,
};

WIPER_TARGET int sum_array(const int *a, int n)
{
	unsigned int s = 0;
	int i;
	for (i = 0; i < n; i++)
		s += (unsigned int)a[i];
	return (int)s;
}

WIPER_TARGET void swap(int *a, int *b)
{
	int t = *a;
	*a = *b;
	*b = t;
}

WIPER_TARGET int my_strlen(const char *s)
{
	const char *p = s;
	while (*p)
		p++;
	return (int)(p - s);
}

WIPER_TARGET int count_char(const char *s, int c)
{
	int n = 0;
	for (; *s; s++)
		if (*s == c)
			n++;
	return n;
}

/* Adds k to the global counter and returns its new value. */
WIPER_TARGET int bump(int k)
{
	counter += k;
	return counter;
}

WIPER_TARGET int lookup(int i)
{
	return table[i & 15];
}

WIPER_TARGET int crc8(const unsigned char *p, int n)
{
	unsigned int c = 0;
	int i;
	for (i = 0; i < n; i++)
		c = crc8_table[(c ^ p[i]) & 0xff];
	return (int)c;
}

static WIPER_TARGET int square(int x)
{
	return (int)((unsigned int)x * (unsigned int)x);
}

static WIPER_TARGET int add_one(int x)
{
	return x + 1;
}

/* Calls f through a function pointer. */
WIPER_TARGET int apply(int (*f)(int), int x)
{
	return f(x);
}

/* Calls several of the others: builds {lookup(b), b, lookup(a), a} on the
 * stack and combines sums, a callback, the global counter and a CRC of the
 * array's bytes. */
WIPER_TARGET int mix(int a, int b)
{
	int v[4];
	int s, f, k, c;

	v[0] = a;
	v[1] = b;
	v[2] = lookup(a);
	v[3] = lookup(b);
	swap(&v[0], &v[3]);
	s = sum_array(v, 4);
	f = apply(add_one, v[0]);
	k = bump(a & 7);
	c = crc8((const unsigned char *)v, (int)sizeof v);
	return (int)((unsigned int)s * 3 + (unsigned int)f + (unsigned int)k +
		     (unsigned int)c);
}

static void line(int v)
{
	print_int(v);
	print_nl();
}

static int streq(const char *a, const char *b)
{
	while (*a && *a == *b) {
		a++;
		b++;
	}
	return *a == *b;
}

/* `calls arrays N STRING V...` (see the top of the file). */
static int arrays_mode(int argc, char **argv)
{
	int v[16];
	int n = parse_int(argv[2]);
	const char *s = argv[3];
	int count = argc - 4;
	int len, k, r1, r2;

	if (count > 16)
		count = 16;
	for (k = 0; k < count; k++)
		v[k] = parse_int(argv[4 + k]);
	r1 = sum_array(v, n < count ? n : count);
	line(r1);
	len = my_strlen(s);
	r2 = crc8((const unsigned char *)s, n < len ? n : len);
	line(r2);
	return (int)(((unsigned int)r1 + (unsigned int)r2) & 0x7f);
}

int main(int argc, char **argv)
{
	int a, b, x, y, m;
	int arr[5];
	const char *s;

	if (argc >= 4 && streq(argv[1], "arrays"))
		return arrays_mode(argc, argv);
	if (argc < 4) {
		print_str("usage: calls A B STRING | calls arrays N STRING V...\n");
		return 2;
	}
	a = parse_int(argv[1]);
	b = parse_int(argv[2]);
	s = argv[3];
	arr[0] = a;
	arr[1] = b;
	arr[2] = (int)((unsigned int)a * (unsigned int)b);
	arr[3] = (int)((unsigned int)a - (unsigned int)b);
	arr[4] = 7;
	line(sum_array(arr, 5));
	x = a;
	y = b;
	swap(&x, &y);
	line(x);
	line(y);
	line(my_strlen(s));
	line(count_char(s, 'a'));
	line(bump(a));
	line(bump(b));
	line(lookup(a));
	line(crc8((const unsigned char *)s, my_strlen(s)));
	line(apply(square, a));
	line(apply(add_one, b));
	m = mix(a, b);
	line(m);
	line(counter);
	return m & 0x7f;
}
