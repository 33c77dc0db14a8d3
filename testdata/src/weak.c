/* weak.c - a call to an undefined weak function, as glibc and musl make
 * them (`__pthread_initialize_minimal`, `__libc_cleanup_pop_restore`): the
 * static link resolves the function to address 0, so `call 0` faults when
 * it runs, and code calls it only behind a test.
 *
 * hooked(X, MODE) calls `hook` when MODE > 0 (it faults: nothing defines
 * it), else only when it is linked (never here), and otherwise returns
 * X * 3 + MODE.
 *
 * Usage: weak X MODE   prints hooked(X, MODE); exit status = result &
 * 0x7f, or 2 on bad usage; killed by SIGSEGV when MODE > 0. */
#include "../rt/rt.h"

extern int hook(int) __attribute__((weak));

WIPER_TARGET int hooked(int x, int mode)
{
	if (mode > 0)
		return hook(x) + 1;
	if (hook)
		return hook(x);
	return x * 3 + mode;
}

int main(int argc, char **argv)
{
	int r;

	if (argc < 3) {
		print_str("usage: weak X MODE\n");
		return 2;
	}
	r = hooked(parse_int(argv[1]), parse_int(argv[2]));
	print_int(r);
	print_nl();
	return r & 0x7f;
}
