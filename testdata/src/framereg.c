/* framereg.c - addresses into a local array that travel through registers
 * (computed, passed, returned, kept in a global, walked in a loop) and are
 * written through, while the array's other bytes are static.
 *
 * framereg(AT, V, N, MODE) fills cells[0..16) from N, writes V into the
 * cells through a pointer that MODE sends along a different path, then
 * folds the cells into a sum, which it returns. With N and MODE static,
 * the cells are known to the specializer until the write; the write goes
 * through a dynamic value computed from a frame address, so the cells it
 * may reach must not be folded from what the specializer knew before.
 *
 * MODE: 0 through the pointer itself; 1 by a helper that writes through
 * its argument; 2 through a global the pointer was kept in; 3 through the
 * pointer a helper returns; 4 a loop walking the pointer up to a dynamic
 * end; 5 a pointer difference turned back into an index; 6 a pointer
 * kept in a local slot of its own, then loaded again.
 *
 * Usage: framereg AT V N MODE   prints framereg(AT, V, N, MODE); exit
 * status = result & 0x7f, or 2 on bad usage. */
#include "../rt/rt.h"

static char *volatile kept;

static __attribute__((noinline)) void poke(char *p, int v)
{
	p[0] = (char)v;
}

static __attribute__((noinline)) char *pass(char *p)
{
	return p + 1;
}

static __attribute__((noinline)) void poke_kept(int v)
{
	kept[0] = (char)v;
}

WIPER_TARGET int framereg(int at, int v, int n, int mode)
{
	char cells[16];
	char *volatile slot;
	char *p, *end;
	int i, sum = 0;

	for (i = 0; i < 16; i++)
		cells[i] = (char)(n + 3 * i);
	p = cells + (at & 7);
	switch (mode) {
	case 0:
		*p = (char)v;
		break;
	case 1:
		poke(p, v);
		break;
	case 2:
		kept = p;
		poke_kept(v);
		break;
	case 3:
		*pass(p) = (char)v;
		break;
	case 4:
		end = cells + (at & 15);
		for (p = cells; p < end; p++)
			*p = (char)(v + (p - cells));
		break;
	case 5:
		cells[(p - cells) + 2] = (char)v;
		break;
	default:
		slot = p;
		*slot = (char)v;
		break;
	}
	for (i = 0; i < 16; i++)
		sum = sum * 3 + cells[i];
	return sum;
}

int main(int argc, char **argv)
{
	int r;

	if (argc < 5) {
		print_str("usage: framereg AT V N MODE\n");
		return 2;
	}
	r = framereg(parse_int(argv[1]), parse_int(argv[2]),
		     parse_int(argv[3]), parse_int(argv[4]));
	print_int(r);
	print_nl();
	return r & 0x7f;
}
