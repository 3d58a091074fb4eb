# shellcheck shell=bash
#
# test/tap.sh
#	TAP-ish reporting for the extra suites test/t_*.sh: source it, call
#	ok / not_ok / is (bail to stop early), and end the suite's EXIT trap
#	with finish, which prints "$passed passed, $failed failed", the line
#	test/test.sh reads.  Also runs SQL (q), stops background jobs
#	(stop_job), checks for and reads pgbench (require_pgbench,
#	pgbench_field) and writes a model of client histories alone
#	(history_model_sql).

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

# q SQL: runs SQL with $PSQL in the suite's database ($PGDATABASE):
# unaligned, tuples only, stopping at the first error; prints the result,
# or the error
q()
{
	"$PSQL" -X -q -At -v ON_ERROR_STOP=1 -c "$1" 2>&1
}

# stop_job PID: stops a background job of the suite if it still runs
# (for the suite's EXIT trap; PID may be empty)
stop_job()
{
	if [ -n "$1" ] && kill -0 "$1" 2>/dev/null; then
		kill "$1" 2>/dev/null
		wait "$1" 2>/dev/null
	fi
}

# require_pgbench: bails out unless $PGBENCH is there to run
require_pgbench()
{
	if [ ! -x "$PGBENCH" ]; then
		not_ok "pgbench is installed" "not found at $PGBENCH"
		bail "no pgbench"
	fi
}

# Stops the suite here: the rest depends on what failed
bail()
{
	echo "# bailing out: $1"
	exit 1
}

# Creates database $1 ($PSQL), or reports why it could not and bails out
create_database()
{
	local out

	if ! out=$("$PSQL" -X -q -v ON_ERROR_STOP=1 -d postgres -c "CREATE DATABASE $1" 2>&1); then
		not_ok "CREATE DATABASE $1" "$out"
		bail "no database"
	fi
}

# Drops a database the suite made ($PSQL), saying so when it cannot
drop_database()
{
	"$PSQL" -X -q -d postgres -c "DROP DATABASE IF EXISTS $1 WITH (FORCE)" >/dev/null 2>&1 ||
		echo "# could not drop database $1"
}

# Ends the suite from its EXIT trap: the summary line, and a failing exit
# when a check failed or the suite itself ended with status $1
finish()
{
	echo "$passed passed, $failed failed"
	if [ "$failed" -gt 0 ] || [ "$1" -ne 0 ]; then
		exit 1
	fi
	exit 0
}

# pgbench_field FILE NAME: the number after "NAME:" or "NAME =" in the
# pgbench output FILE
pgbench_field()
{
	sed -n "s/^$2[:=] *\([0-9.]*\).*/\1/p" "$1" | head -n 1
}

# history_model_sql MEAN STD: SQL for brand B and an active model that
# scores leads by their client's history alone (history.leads standardized
# by MEAN and STD, history.win_rate): for suites that check the history a
# lead's p_win was computed from
history_model_sql()
{
	cat <<EOF
INSERT INTO scoring.brand (brand, margin) VALUES ('B', 0.2);
INSERT INTO scoring.model (active, train_since, train_until, n_rows, n_won,
						   intercept, weights, numeric_features)
VALUES (true, '2025-01-01 00:00+00', '2026-01-01 00:00+00', 0, 0, -1,
		'{"history.leads": 0.3, "history.win_rate": 1.5}',
		'{"history.leads": {"mean": $1, "std": $2, "min": 0, "max": 100000},
		  "history.win_rate": {"mean": 0.4, "std": 0.2, "min": 0, "max": 1}}');
EOF
}
