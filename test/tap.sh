# shellcheck shell=bash
#
# test/tap.sh
#	TAP-ish reporting for the extra suites test/t_*.sh: source it, call
#	ok / not_ok / is, and end with "$passed passed, $failed failed",
#	the line test/test.sh reads.

passed=0
failed=0
n=0

# Reports a passing check
ok()
{
	n=$((n + 1))
	passed=$((passed + 1))
	echo "ok $n - $1"
}

# Reports a failing check, with lines of detail
not_ok()
{
	n=$((n + 1))
	failed=$((failed + 1))
	echo "not ok $n - $1"
	shift
	local line
	for line in "$@"; do
		printf '#   %s\n' "$line"
	done
}

# is DESCRIPTION GOT WANT: passes when GOT equals WANT
is()
{
	if [ "$2" = "$3" ]; then
		ok "$1"
	else
		not_ok "$1" "got:  $(printf '%s' "$2" | tr '\n' '|' | cut -c1-300)" \
			"want: $(printf '%s' "$3" | tr '\n' '|')"
	fi
}
