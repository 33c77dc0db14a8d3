/* expr.c - a recursive-descent expression evaluator, for specialization
 * with a static expression.
 *
 * eval_expr(src, x, y) evaluates the expression text `src` with the
 * variables x and y. Grammar (spaces are skipped):
 *   expr   := term (('+' | '-') term)*
 *   term   := factor ('*' factor)*
 *   factor := NUMBER | 'x' | 'y' | '(' expr ')' | '-' factor
 * Arithmetic wraps (it is done on unsigned values); a syntax error makes the
 * factor where it occurs 0 (and a missing ')' is taken as read). The parser
 * keeps its position in memory, in a struct the recursive functions share by
 * pointer.
 *
 * Usage:
 *   expr EXPR X Y   prints the value of EXPR for x = X, y = Y;
 *                   exit status = value & 0x7f.
 * Bad usage exits with status 2.
 */
#include "../rt/rt.h"

/* The parser's state: the next character and the variables' values. */
struct parser {
	const char *p;
	unsigned int x, y;
};

static unsigned int parse_sum(struct parser *ps);

/* The next non-space character (not consumed). */
static char peek(struct parser *ps)
{
	while (*ps->p == ' ')
		ps->p++;
	return *ps->p;
}

static unsigned int parse_factor(struct parser *ps)
{
	unsigned int v = 0;
	char c = peek(ps);

	if (c == '(') {
		ps->p++;
		v = parse_sum(ps);
		if (peek(ps) == ')')
			ps->p++;
		return v;
	}
	if (c == '-') {
		ps->p++;
		return 0u - parse_factor(ps);
	}
	if (c == 'x') {
		ps->p++;
		return ps->x;
	}
	if (c == 'y') {
		ps->p++;
		return ps->y;
	}
	while (*ps->p >= '0' && *ps->p <= '9') {
		v = v * 10 + (unsigned int)(*ps->p - '0');
		ps->p++;
	}
	return v;
}

static unsigned int parse_term(struct parser *ps)
{
	unsigned int v = parse_factor(ps);

	while (peek(ps) == '*') {
		ps->p++;
		v *= parse_factor(ps);
	}
	return v;
}

static unsigned int parse_sum(struct parser *ps)
{
	unsigned int v = parse_term(ps);

	for (;;) {
		char c = peek(ps);
		if (c == '+') {
			ps->p++;
			v += parse_term(ps);
		} else if (c == '-') {
			ps->p++;
			v -= parse_term(ps);
		} else {
			return v;
		}
	}
}

/* The value of the expression `src` for x and y. */
WIPER_TARGET int eval_expr(const char *src, int x, int y)
{
	struct parser ps;

	ps.p = src;
	ps.x = (unsigned int)x;
	ps.y = (unsigned int)y;
	return (int)parse_sum(&ps);
}

int main(int argc, char **argv)
{
	int r;

	if (argc < 4) {
		print_str("usage: expr EXPR X Y\n");
		return 2;
	}
	r = eval_expr(argv[1], parse_int(argv[2]), parse_int(argv[3]));
	print_int(r);
	print_nl();
	return r & 0x7f;
}
