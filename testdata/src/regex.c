/* regex.c - a small regular-expression matcher (Kernighan and Pike's, from
 * "The Practice of Programming"), for specialization with a static pattern.
 *
 * re_match(re, text): the offset in `text` where the leftmost match of the
 * pattern `re` starts, or -1. Patterns: `c` a literal character, `.` any
 * character, `*` zero or more of the previous one (shortest first, with
 * backtracking), `^` at the start anchors the match, `$` at the end too.
 *
 * Usage:
 *   regex RE TEXT   prints re_match(RE, TEXT);
 *                   exit status = (result + 1) & 0x7f.
 * Bad usage exits with status 2.
 */
#include "../rt/rt.h"

static int match_here(const char *re, const char *text);

/* Matches c* then re at text. */
static int match_star(int c, const char *re, const char *text)
{
	do {
		if (match_here(re, text))
			return 1;
	} while (*text != '\0' && (*text++ == c || c == '.'));
	return 0;
}

/* Whether re matches at the start of text. */
static int match_here(const char *re, const char *text)
{
	if (re[0] == '\0')
		return 1;
	if (re[1] == '*')
		return match_star(re[0], re + 2, text);
	if (re[0] == '$' && re[1] == '\0')
		return *text == '\0';
	if (*text != '\0' && (re[0] == '.' || re[0] == *text))
		return match_here(re + 1, text + 1);
	return 0;
}

/* Where the leftmost match of re in text starts, or -1. */
WIPER_TARGET int re_match(const char *re, const char *text)
{
	const char *start = text;

	if (re[0] == '^')
		return match_here(re + 1, text) ? 0 : -1;
	do {
		if (match_here(re, text))
			return (int)(text - start);
	} while (*text++ != '\0');
	return -1;
}

int main(int argc, char **argv)
{
	int r;

	if (argc < 3) {
		print_str("usage: regex RE TEXT\n");
		return 2;
	}
	r = re_match(argv[1], argv[2]);
	print_int(r);
	print_nl();
	return (r + 1) & 0x7f;
}
