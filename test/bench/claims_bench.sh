#!/usr/bin/env bash
#
# test/bench/claims_bench.sh
#	Benchmark of company claims at scale: builds and installs the
#	extension, starts a private throwaway server (test/lib.sh: a temp dir
#	owned by postgres, initdb/pg_ctl through runuser when root, a free port
#	54xx other than 5432, a Unix socket only), loads 1M companies, 100k
#	claims of which 10k stale (claims_load.sql), then times
#
#	  release_stale_claims(now)                   target < 1 s
#	  SELECT * FROM scoring.free_companies LIMIT 50   target < 50 ms
#
#	as the median of RUNS runs (default 7) of server-side time, in two
#	scenarios: the claims spread over all potentials, then moved to the
#	100k companies of highest potential (claims_load_top.sql), the worst
#	case for the first page, which then skips every claimed company.
#	release runs in a transaction that is rolled back (and the tables
#	vacuumed), so that every run releases the same 10,000 claims.
#	Prints a table, then EXPLAIN ANALYZE of both (claims_explain.sql).
#
# Environment: RUNS (default 7), KEEP=1 leaves the server running (its
# connection is printed), PG_CONFIG.

# shellcheck disable=SC2119  # lib.sh functions take optional arguments
set -euo pipefail

bench_dir=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source-path=SCRIPTDIR source=../lib.sh
. "$bench_dir/../lib.sh"

RUNS=${RUNS:-7}
NOW='2026-06-01 00:00+00'
psqlb()
{
	"$PG_BINDIR/psql" -X -q -v ON_ERROR_STOP=1 "$@"
}

scoring_bench_start claims_bench
psqlb -f "$bench_dir/claims_timing.sql" >/dev/null

scoring_say "loading 1M companies, 100k claims (10k stale), 200k history rows, 500k touches"
t0=$SECONDS
psqlb -v now="$NOW" -f "$bench_dir/claims_load.sql"
scoring_say "loaded in $((SECONDS - t0)) s"

# median, min, max (in ms) of the first fields of lines "seconds count"
stats()
{
	awk '{ print $1 * 1000 }' | sort -g | awk '
		{ v[NR] = $1 }
		END {
			if (NR % 2) m = v[(NR + 1) / 2]; else m = (v[NR / 2] + v[NR / 2 + 1]) / 2;
			printf "%.1f %.1f %.1f\n", m, v[1], v[NR]
		}'
}

verdict()
{
	awk -v v="$1" -v t="$2" 'BEGIN { print (v < t) ? "ok" : "SLOW" }'
}

table=()

# time both statements on the data as it is; $1: scenario label
time_scenario()
{
	local label=$1 out runs=() counts med min max _

	scoring_say "$label: release_stale_claims('$NOW'), $RUNS runs"
	for _ in $(seq 1 "$RUNS"); do
		out=$(psqlb -At -c "BEGIN" -c "SELECT claims_bench.time_release('$NOW')" -c "ROLLBACK")
		runs+=("$out")
		psqlb -c "VACUUM scoring.claim, scoring.claim_history"
	done
	counts=$(printf '%s\n' "${runs[@]}" | awk '{ print $2 }' | sort -u | tr '\n' ' ')
	read -r med min max < <(printf '%s\n' "${runs[@]}" | stats)
	table+=("$(printf '%-10s %-46s %10s %10s %10s %10s %8s %s' "$label" \
		"release_stale_claims(now)" "$med" "$min" "$max" 1000 "$(verdict "$med" 1000)" \
		"released: $counts")")

	scoring_say "$label: the first page of free_companies, $RUNS runs"
	runs=()
	for _ in $(seq 1 "$RUNS"); do
		runs+=("$(psqlb -At -c "SELECT claims_bench.time_query('SELECT * FROM scoring.free_companies LIMIT 50')")")
	done
	counts=$(printf '%s\n' "${runs[@]}" | awk '{ print $2 }' | sort -u | tr '\n' ' ')
	read -r med min max < <(printf '%s\n' "${runs[@]}" | stats)
	table+=("$(printf '%-10s %-46s %10s %10s %10s %10s %8s %s' "$label" \
		"SELECT * FROM scoring.free_companies LIMIT 50" "$med" "$min" "$max" 50 \
		"$(verdict "$med" 50)" "rows: $counts")")

	scoring_say "$label: EXPLAIN ANALYZE"
	psqlb -v now="$NOW" -f "$bench_dir/claims_explain.sql" >"$explain_dir/$label.txt" 2>&1
}

explain_dir=$(mktemp -d)

# (a) claims spread over the whole potential range
time_scenario spread
# (b) claims on the best companies, as when managers pick from the top
scoring_say "moving the 100k claims to the 100k pool companies of highest potential"
psqlb -v now="$NOW" -f "$bench_dir/claims_load_top.sql"
time_scenario top

echo
echo "claims benchmark: 1,000,000 companies (900,000 in the pool), 100,000 claims (10,000 stale),"
echo "median of $RUNS runs, server-side time; spread: claims over all potentials, top: on the best 100,000"
printf '%-10s %-46s %10s %10s %10s %10s %8s %s\n' "scenario" "operation" "median ms" "min ms" \
	"max ms" "target ms" "result" "rows"
printf '%s\n' "${table[@]}"
echo

for f in spread top; do
	echo "===== EXPLAIN ANALYZE, scenario $f"
	cat "$explain_dir/$f.txt"
	echo
done
rm -rf "$explain_dir"
