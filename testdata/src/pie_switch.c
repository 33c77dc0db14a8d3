/* pie_switch.c - a switch compiled as position-independent code: gcc emits a
 * jump table whose entries are offsets from the GOT (`_GLOBAL_OFFSET_TABLE_`),
 * dispatched with `mov reg, [ebx+idx*4+off]; add reg, ebx; jmp reg`.
 * Built as dynamic glibc PIE executables at -O0 and -O2.
 *
 * Usage: pie_switch OP A B   prints step(OP, A, B) and the global `calls`;
 * exit status = result & 0x7f.
 * step() has 8 cases (op 0..7) plus a default.
 */
#include <stdio.h>
#include <stdlib.h>

#define WIPER_TARGET __attribute__((noipa))

int calls;

WIPER_TARGET int step(int op, int a, int b)
{
	int r;

	switch (op) {
	case 0:
		r = a + b;
		calls += 1;
		break;
	case 1:
		r = a - b;
		calls += 2;
		break;
	case 2:
		r = a * b;
		calls += 3;
		break;
	case 3:
		r = a & b;
		calls -= 1;
		break;
	case 4:
		r = a | b;
		calls ^= 5;
		break;
	case 5:
		r = a ^ b;
		calls += a;
		break;
	case 6:
		r = a << (b & 7);
		calls += b;
		break;
	case 7:
		r = (int)((unsigned int)a >> (b & 7));
		calls = -calls;
		break;
	default:
		r = -1;
		calls = 0;
		break;
	}
	return r;
}

int main(int argc, char **argv)
{
	int r;

	if (argc < 4) {
		printf("usage: pie_switch OP A B\n");
		return 2;
	}
	r = step(atoi(argv[1]), atoi(argv[2]), atoi(argv[3]));
	printf("%d\n%d\n", r, calls);
	return r & 0x7f;
}
