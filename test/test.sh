#!/usr/bin/env bash
#
# test/test.sh
#	Run every test of the scoring extension: `bash test/test.sh`.
#
# Installs what is missing (apt), builds and installs the extension, starts
# a private throwaway PostgreSQL server (see test/lib.sh) and runs against it:
#
#	(a) pg_regress: `make installcheck` (REGRESS tests, then the ISOLATION
#		specs of test/specs, each counted as one test);
#	(b) pgTAP: every test/pgtap/*.sql file through pg_prove, counted by
#		assertion.  Each file runs in its own fresh database, created from
#		the template database scoring_tap that has CREATE EXTENSION pgtap
#		and scoring, so files are independent of each other and need no
#		BEGIN/ROLLBACK of their own (they may still use one);
#	(c) extra suites test/t_*.sh, run with bash and the connection in the
#		environment (PGHOST, PGPORT, PGUSER, PGDATABASE, PG_BINDIR,
#		SCORING_ROOT).  A suite counts as one test (its exit status) unless
#		its last line of output is "N passed, N failed", then as those.
#
# Quiet on success (a line per stage), verbose on failure.  The very last
# line is "N passed, N failed"; the exit status is non-zero when anything
# failed.  Works from any directory, as root or as a user with sudo.
#
# Environment: KEEP_LOGS=1 keeps the log dir; PG_CONFIG overrides pg_config.

# shellcheck disable=SC2119  # lib.sh functions take optional arguments
set -euo pipefail

# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$scoring_root"

passed=0
failed=0
logdir=$(mktemp -d "${TMPDIR:-/tmp}/scoring-test-logs.XXXXXX")

# shellcheck disable=SC2317  # called by the EXIT trap
cleanup()
{
	scoring_server_stop
	if [ "${KEEP_LOGS:-0}" = 1 ]; then
		echo "logs kept in $logdir" >&2
	else
		rm -rf "$logdir"
	fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# Print the final count and exit accordingly
finish()
{
	scoring_server_stop
	echo "$passed passed, $failed failed"
	if [ "$failed" -gt 0 ]; then
		exit 1
	fi
	exit 0
}

# Print a file with a header, when it exists and is not empty
show()
{
	if [ -s "$1" ]; then
		printf '\n----- %s -----\n' "$1"
		cat "$1"
		printf -- '----- end of %s -----\n\n' "$1"
	fi
}

# Count the tests of a pg_regress log $1 from its per-test lines
# ("test name ... ok", "     name ... FAILED"); sets run_passed/run_failed.
# Tests that failed in a schedule's "ignore" list count as passed.
parse_pg_regress()
{
	run_passed=$(grep -cE '^(test | +)[^ ]+ +\.\.\. +(ok|failed \(ignored\))( |$)' "$1") || true
	run_failed=$(grep -cE '^(test | +)[^ ]+ +\.\.\. +FAILED( |$)' "$1") || true
}

# Did pg_regress log $1 get to its final summary?
pg_regress_finished()
{
	grep -qE '^ *(All [0-9]+ tests passed|[0-9]+ of [0-9]+ tests (passed|failed))' "$1"
}

# (a) one `make installcheck` run.  $1: label, $2: its regression.diffs,
# the rest: make arguments selecting what runs
run_installcheck()
{
	local label=$1 diffs=$2 log rc=0
	shift 2
	log=$logdir/$label.log

	make -C "$scoring_root" PG_CONFIG="$PG_CONFIG" installcheck "$@" >"$log" 2>&1 || rc=$?
	parse_pg_regress "$log"
	if [ "$rc" -eq 0 ] && [ $((run_passed + run_failed)) -eq 0 ]; then
		# nothing of this kind in the Makefile
		return 0
	fi
	# stopped before its summary (a missing expected file, CREATE EXTENSION
	# failed, ...) or failed without a failed test: one more failure
	if [ "$rc" -ne 0 ] && { ! pg_regress_finished "$log" || [ "$run_failed" -eq 0 ]; }; then
		run_failed=$((run_failed + 1))
	fi
	scoring_say "$label: $run_passed passed, $run_failed failed"
	if [ "$run_failed" -gt 0 ]; then
		show "$log"
		show "$diffs"
	fi
	passed=$((passed + run_passed))
	failed=$((failed + run_failed))
}

# Count one pg_prove run from log $1 (rc $2): sets run_passed/run_failed
parse_pg_prove()
{
	local log=$1 rc=$2 total=0 nfail=0 planned ran

	if [[ $(grep -E '^Files=[0-9]+, Tests=[0-9]+' "$log" | tail -n 1) =~ Tests=([0-9]+) ]]; then
		total=${BASH_REMATCH[1]}
	fi
	while read -r n; do
		nfail=$((nfail + n))
	done < <(grep -oE 'Failed: [0-9]+\)' "$log" | grep -oE '[0-9]+')
	run_failed=$nfail
	run_passed=$((total - nfail))
	# tests that were planned but never ran (the file died half way)
	if [[ $(grep -E 'You planned [0-9]+ tests? but ran [0-9]+' "$log" | head -n 1) =~ planned\ ([0-9]+)\ tests?\ but\ ran\ ([0-9]+) ]]; then
		planned=${BASH_REMATCH[1]}
		ran=${BASH_REMATCH[2]}
		if [ "$planned" -gt "$ran" ]; then
			run_failed=$((run_failed + planned - ran))
		fi
	fi
	if [ "$rc" -ne 0 ] && [ "$run_failed" -eq 0 ]; then
		run_failed=1
	fi
}

# (b) every test/pgtap/*.sql in a fresh database cloned from scoring_tap
run_pgtap()
{
	local files=() f db i=0 log rc sum_p=0 sum_f=0 failed_files=()

	shopt -s nullglob
	files=(test/pgtap/*.sql)
	shopt -u nullglob
	if [ "${#files[@]}" -eq 0 ]; then
		scoring_say "pgTAP: no test/pgtap/*.sql yet, skipped"
		return 0
	fi

	log=$logdir/pgtap-template.log
	if ! { scoring_psql -d postgres -c 'CREATE DATABASE scoring_tap' &&
		scoring_psql -d scoring_tap -c 'CREATE EXTENSION pgtap' \
			-c 'CREATE EXTENSION scoring'; } >"$log" 2>&1; then
		scoring_say "pgTAP: could not prepare the template database scoring_tap"
		show "$log"
		failed=$((failed + 1))
		return 0
	fi

	for f in "${files[@]}"; do
		i=$((i + 1))
		db=scoring_tap_$i
		log=$logdir/pgtap-$i.log
		rc=0
		{
			echo "# $f in database $db"
			scoring_psql -q -d postgres -c "CREATE DATABASE $db TEMPLATE scoring_tap" &&
				pg_prove --verbose --failures -d "$db" "$f"
		} >"$log" 2>&1 || rc=$?
		parse_pg_prove "$log" "$rc"
		sum_p=$((sum_p + run_passed))
		sum_f=$((sum_f + run_failed))
		if [ "$run_failed" -gt 0 ]; then
			failed_files+=("$f")
			show "$log"
		fi
		scoring_psql -q -d postgres -c "DROP DATABASE IF EXISTS $db" >/dev/null 2>&1 || true
	done
	scoring_say "pgTAP: ${#files[@]} files, $sum_p passed, $sum_f failed${failed_files[*]:+ (in ${failed_files[*]})}"
	passed=$((passed + sum_p))
	failed=$((failed + sum_f))
}

# (c) extra suites test/t_*.sh
run_extra_suites()
{
	local files=() f log rc last

	shopt -s nullglob
	files=(test/t_*.sh)
	shopt -u nullglob
	if [ "${#files[@]}" -eq 0 ]; then
		scoring_say "extra suites: no test/t_*.sh, skipped"
		return 0
	fi
	for f in "${files[@]}"; do
		log=$logdir/$(basename "$f" .sh).log
		rc=0
		SCORING_ROOT=$scoring_root PG_BINDIR=$PG_BINDIR PGDATABASE=postgres \
			bash "$f" </dev/null >"$log" 2>&1 || rc=$?
		last=$(tail -n 1 "$log")
		if [[ $last =~ ^([0-9]+)\ passed,\ ([0-9]+)\ failed$ ]]; then
			run_passed=${BASH_REMATCH[1]}
			run_failed=${BASH_REMATCH[2]}
			if [ "$rc" -ne 0 ] && [ "$run_failed" -eq 0 ]; then
				run_failed=1
			fi
		elif [ "$rc" -eq 0 ]; then
			run_passed=1
			run_failed=0
		else
			run_passed=0
			run_failed=1
		fi
		scoring_say "$f: $run_passed passed, $run_failed failed"
		if [ "$run_failed" -gt 0 ]; then
			echo "(exit status $rc)"
			show "$log"
		fi
		passed=$((passed + run_passed))
		failed=$((failed + run_failed))
	done
}

scoring_say "checking packages"
scoring_ensure_packages

if ! scoring_build_install "$logdir/build.log"; then
	failed=$((failed + 1))
	finish
fi

scoring_say "starting a private server"
# shared_buffers fixed: pgTAP train_order fills scoring.lead past a quarter
# of it (where sequential scans are synchronized), about 40,000 leads here
if ! scoring_server_start "shared_buffers = '128MB'"; then
	failed=$((failed + 1))
	finish
fi

# pg_regress writes into the source tree; stale diffs would mislead
rm -f regression.diffs regression.out test/output/regression.diffs test/output/regression.out

# (a) the two halves of `make installcheck`, run apart so that a failing
# REGRESS test does not stop the isolation specs from running
scoring_say "running pg_regress tests"
run_installcheck pg_regress regression.diffs ISOLATION=
run_installcheck isolation test/output/regression.diffs REGRESS= TAP_TESTS=

scoring_say "running pgTAP tests"
run_pgtap

scoring_say "running extra suites"
run_extra_suites

finish
