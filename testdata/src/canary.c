/* canary.c - gs-relative memory in a static glibc program built with
 * -fstack-protector-all: every function loads the canary from gs:0x14 and
 * checks it before returning (sub ..., gs:0x14; jne __stack_chk_fail), and
 * a __thread counter lives at a negative offset from the thread pointer.
 * Usage: canary WORD N K   prints checksum(WORD, N) (which copies the first
 * N bytes of WORD into a 16-byte buffer: more than 16 smash the stack, and
 * the program aborts with "*** stack smashing detected ***"), then
 * bump(K) K times (a thread-local counter); exit status = the checksum &
 * 0x7f. */
#include <stdio.h>
#include <stdlib.h>

/* A function later tests specialize: never inlined or cloned by gcc. */
#define WIPER_TARGET __attribute__((noipa))

static __thread int calls;

/* Copies up to n bytes of s (stopping at its NUL) into a 16-byte buffer,
 * with no bounds check, and hashes what it copied (at most the 16 bytes of
 * the buffer). */
WIPER_TARGET int checksum(const char *s, int n)
{
	char buf[16];
	int i, j, sum = 0;

	for (i = 0; i < n && s[i]; i++)
		buf[i] = s[i];
	for (j = 0; j < 16; j++)
		sum = sum * 31 + (j < i ? buf[j] : 0);
	return sum;
}

/* Adds k to the thread-local counter and returns it (gs-relative loads
 * and stores). */
WIPER_TARGET int bump(int k)
{
	calls += k;
	return calls;
}

int main(int argc, char **argv)
{
	int n, k, i, r, total = 0;

	if (argc < 4) {
		fputs("usage: canary WORD N K\n", stderr);
		return 2;
	}
	n = atoi(argv[2]);
	k = atoi(argv[3]);
	r = checksum(argv[1], n);
	printf("%d\n", r);
	for (i = 0; i < 3; i++)
		total = bump(k);
	printf("%d\n", total);
	return r & 0x7f;
}
