/*
 * rt.c - tiny runtime for wiper's -nostdlib -static i386 test programs.
 * See rt.h. Compiled with -fno-tree-loop-distribute-patterns so that gcc
 * does not turn the loops of memset/memcpy into calls to themselves.
 */
#include "rt.h"

static int syscall3(int nr, int a, int b, int c)
{
	int ret;
	__asm__ volatile("int $0x80"
			 : "=a"(ret)
			 : "0"(nr), "b"(a), "c"(b), "d"(c)
			 : "memory");
	return ret;
}

void rt_exit(int status)
{
	for (;;)
		syscall3(SYS_EXIT, status, 0, 0);
}

int rt_write(int fd, const void *buf, int len)
{
	return syscall3(SYS_WRITE, fd, (int)buf, len);
}

int rt_read(int fd, void *buf, int len)
{
	return syscall3(SYS_READ, fd, (int)buf, len);
}

int rt_strlen(const char *s)
{
	int n = 0;
	while (s[n])
		n++;
	return n;
}

void print_str(const char *s)
{
	rt_write(1, s, rt_strlen(s));
}

void print_nl(void)
{
	rt_write(1, "\n", 1);
}

void print_int(int v)
{
	char buf[12];
	int i = sizeof buf;
	/* Work on the unsigned magnitude so that INT_MIN prints correctly. */
	unsigned int u = v < 0 ? 0u - (unsigned int)v : (unsigned int)v;

	do {
		buf[--i] = (char)('0' + u % 10);
		u /= 10;
	} while (u);
	if (v < 0)
		buf[--i] = '-';
	rt_write(1, buf + i, (int)sizeof buf - i);
}

int parse_int(const char *s)
{
	unsigned int v = 0;
	int neg = 0;

	if (*s == '-') {
		neg = 1;
		s++;
	}
	if (s[0] == '0' && (s[1] == 'x' || s[1] == 'X')) {
		for (s += 2;; s++) {
			unsigned int d;
			if (*s >= '0' && *s <= '9')
				d = (unsigned int)(*s - '0');
			else if (*s >= 'a' && *s <= 'f')
				d = (unsigned int)(*s - 'a' + 10);
			else if (*s >= 'A' && *s <= 'F')
				d = (unsigned int)(*s - 'A' + 10);
			else
				break;
			v = v * 16 + d;
		}
	} else {
		for (; *s >= '0' && *s <= '9'; s++)
			v = v * 10 + (unsigned int)(*s - '0');
	}
	return (int)(neg ? 0u - v : v);
}

/* Reads one byte from stdin; -1 at EOF or error. */
static int read_byte(void)
{
	unsigned char c;
	return rt_read(0, &c, 1) == 1 ? c : -1;
}

int read_int(void)
{
	unsigned int v = 0;
	int neg = 0;
	int c = read_byte();

	while (c == ' ' || c == '\t' || c == '\n' || c == '\r')
		c = read_byte();
	if (c == '-') {
		neg = 1;
		c = read_byte();
	}
	while (c >= '0' && c <= '9') {
		v = v * 10 + (unsigned int)(c - '0');
		c = read_byte();
	}
	return (int)(neg ? 0u - v : v);
}

void *memset(void *d, int c, rt_size_t n)
{
	unsigned char *p = d;
	while (n--)
		*p++ = (unsigned char)c;
	return d;
}

void *memcpy(void *d, const void *s, rt_size_t n)
{
	unsigned char *p = d;
	const unsigned char *q = s;
	while (n--)
		*p++ = *q++;
	return d;
}

void *memmove(void *d, const void *s, rt_size_t n)
{
	unsigned char *p = d;
	const unsigned char *q = s;
	if (p < q) {
		while (n--)
			*p++ = *q++;
	} else {
		while (n--)
			p[n] = q[n];
	}
	return d;
}

int memcmp(const void *a, const void *b, rt_size_t n)
{
	const unsigned char *p = a, *q = b;
	for (; n; n--, p++, q++)
		if (*p != *q)
			return *p - *q;
	return 0;
}

void *rt_memset(void *d, int c, rt_size_t n)
{
	return memset(d, c, n);
}

void *rt_memcpy(void *d, const void *s, rt_size_t n)
{
	return memcpy(d, s, n);
}
