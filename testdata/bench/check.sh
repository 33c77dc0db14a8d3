#!/bin/sh
# check.sh - checks the benchmark binaries in bin/bench: for each family F,
# F-O0, F-O1, F-O2 and F-hand must print the same output and exit with the
# same status, for the family's benchmark inputs (DYNARGS), for other small
# inputs, and for bad usage (no arguments: status 2). Needs only sh and the
# built binaries. Usage: sh testdata/bench/check.sh   (exit status 1 on any
# mismatch).
cd "$(dirname "$0")/../bin/bench" || exit 1

fails=0
checks=0

# run BINARY ARGS...: its stdout and exit status, as hex bytes through od
# (bf output may hold any byte, even NUL).
run() {
	{ "$@"; echo "status $?"; } | od -An -tx1 | tr -d ' \n'
}

# check FAMILY ARGS...: runs every build of FAMILY with ARGS and compares
# its stdout and exit status with those of FAMILY-O0.
check() {
	fam=$1
	shift
	ref=$(run "./$fam-O0" "$@")
	for v in O1 O2 hand; do
		out=$(run "./$fam-$v" "$@")
		checks=$((checks + 1))
		if [ "$out" != "$ref" ]; then
			echo "MISMATCH $fam-$v $*:"
			echo "  O0:   $ref"
			echo "  $v: $out"
			fails=$((fails + 1))
		fi
	done
}

# Bad usage (no arguments): status 2 from every build.
for f in power prod abn nested pow_rec dispatch sum_array vm_fact vm_square \
	bf_echo bf_nested cgvm_fib bf_table bf_reverse expr regex fmt matvec \
	isort bsearch modpow; do
	for v in O0 O1 O2 hand; do
		"./$f-$v" >/dev/null
		st=$?
		checks=$((checks + 1))
		if [ "$st" -ne 2 ]; then
			echo "BAD USAGE $f-$v: expected status 2, got $st"
			fails=$((fails + 1))
		fi
	done
done

# The first line of each family is its DYNARGS (with REPS 5).
check power 5 7
check power 3 0
check power 3 1
check power 3 -3
check power 3 -10
check power 3 100
check power 1 12345

check prod 5 7
check prod 3 0
check prod 3 -2
check prod 3 -9
check prod 3 1000
check prod 1 2147483647

check abn 5 10 20
check abn 3 0 0
check abn 3 -5 5
check abn 3 1 -100
check abn 3 2147483647 1
check abn 1 123 456

check nested 5 6
check nested 3 0
check nested 3 1
check nested 3 -4
check nested 3 2
check nested 3 15
check nested 1 100

check pow_rec 5 3
check pow_rec 3 0
check pow_rec 3 1
check pow_rec 3 -2
check pow_rec 3 7
check pow_rec 3 40
check pow_rec 1 -1

check dispatch 5 5 9
check dispatch 3 0 0
check dispatch 3 -7 3
check dispatch 3 100 -50
check dispatch 1 1 1
check dispatch 7 2147483647 2147483647
check dispatch 0 5 9

check sum_array 5 1 2 3 4 5 6 7 8
check sum_array 3 0 0 0 0 0 0 0 0
check sum_array 3 -1 -2 -3 -4 -5 -6 -7 -8
check sum_array 3 100 0 -100 7 7 7 1000 1
check sum_array 1 2147483647 1 0 0 0 0 0 0
check sum_array 2 9 8 7 6 5 4 3 2

check vm_fact 5 12
check vm_fact 3 0
check vm_fact 3 1
check vm_fact 3 2
check vm_fact 3 5
check vm_fact 3 13
check vm_fact 1 40

check vm_square 5 1234
check vm_square 3 0
check vm_square 3 1
check vm_square 3 -1
check vm_square 3 -300
check vm_square 3 65536
check vm_square 1 99999

check bf_echo 5 hello,world
check bf_echo 3 ""
check bf_echo 3 a
check bf_echo 3 "Hello, World!"
check bf_echo 3 "[->+<]"
check bf_echo 3 "~ ~ 0123456789 ~ ~"
check bf_echo 1 "The quick brown fox jumps over the lazy dog."

check bf_nested 5 "#"
check bf_nested 3 ""
check bf_nested 3 "!"
check bf_nested 3 "A"
check bf_nested 3 "z"
check bf_nested 3 "~"
check bf_nested 2 "#more bytes are not read"

# The wider benchmark's families (issue 14).
check cgvm_fib 5 30
check cgvm_fib 3 0
check cgvm_fib 3 1
check cgvm_fib 3 2
check cgvm_fib 3 47
check cgvm_fib 1 1000

check bf_table 5 wiper
check bf_table 3 ""
check bf_table 3 a
check bf_table 3 "Hello, World!"
check bf_table 3 "~ ~ 0123456789 ~ ~"
check bf_table 1 "The quick brown fox jumps over the lazy dog."

check bf_reverse 5 hello,world
check bf_reverse 3 ""
check bf_reverse 3 a
check bf_reverse 3 "Hello, World!"
check bf_reverse 3 "[->+<]"
check bf_reverse 1 "The quick brown fox jumps over the lazy dog."

check expr 5 5 9
check expr 3 0 0
check expr 3 -7 3
check expr 3 100 -50
check expr 1 2147483647 -2147483648
check expr 2 65536 65536

check regex 5 xyabbbcqqz
check regex 3 ""
check regex 3 acz
check regex 3 abcz
check regex 3 abbbbbbc
check regex 3 "abczx"
check regex 3 "zzabxacbbz"
check regex 1 "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaabbbbbbbbbbbbbbbbbbbcz"

check fmt 5 -17 255 hello 42
check fmt 3 0 0 "" 0
check fmt 3 -2147483648 -1 "%d %s" 2147483647
check fmt 3 7 0x7fffffff "a b c" -5
check fmt 1 123456 3735928559 "the lazy dog" 100

check matvec 5 1 2 3 4
check matvec 3 0 0 0 0
check matvec 3 -1 -2 -3 -4
check matvec 3 2147483647 -2147483648 7 100
check matvec 1 1000 -1000 65536 3

check isort 5 5 3 -1 8 0 2 2 7
check isort 3 1 2 3 4 5 6 7 8
check isort 3 8 7 6 5 4 3 2 1
check isort 3 0 0 0 0 0 0 0 0
check isort 1 2147483647 -2147483648 0 -1 1 2147483647 -2147483648 5

check bsearch 5 377
check bsearch 20 -60
check bsearch 3 1597
check bsearch 3 -50
check bsearch 3 2147483647
check bsearch 3 -2147483648
check bsearch 40 0

check modpow 5 7
check modpow 3 0
check modpow 3 1
check modpow 3 65521
check modpow 3 -1
check modpow 1 123456789

if [ "$fails" -ne 0 ]; then
	echo "check.sh: $fails of $checks checks failed"
	exit 1
fi
echo "check.sh: all $checks checks passed"
