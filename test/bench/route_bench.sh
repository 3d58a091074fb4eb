#!/usr/bin/env bash
#
# test/bench/route_bench.sh
#	Benchmark of lead routing: `bash test/bench/route_bench.sh`.
#
# Builds and installs the extension, starts a private throwaway server
# (test/lib.sh: a temp dir, a Unix socket, a port other than 5432; run as
# root, PostgreSQL itself runs as postgres), then measures:
#
#	1. pgbench, 16 clients inserting 20,000 leads in all (one lead per
#	   transaction): ready leads ('new': scored and routed to one of 8
#	   present junior managers) against drafts ('draft': scored only).
#	   Median tps of 3 runs each, and the ratio.  After each routed run:
#	   the spread (max - min) of day_leads among the juniors, and whether
#	   the counters match the leads (sum of day_leads = assigned leads,
#	   open_leads = assigned + accepted per manager).
#	2. dispatch() of 10,000 queued leads: inserted while nobody is present,
#	   then the 8 juniors come online and one dispatch() places them all.
#	   Median wall time of 3 runs (psql \timing, commit included); target
#	   under 1 s.
#
# Prints a table at the end.  Environment: ROUTE_BENCH_RUNS (3),
# ROUTE_BENCH_LEADS (20000), ROUTE_BENCH_CLIENTS (16), ROUTE_BENCH_QUEUE
# (10000).  The server has fsync off (throwaway), so the numbers are the
# extension's CPU and locking cost, not the disk's.

# shellcheck disable=SC2119  # lib.sh functions take optional arguments
set -euo pipefail

# shellcheck source-path=SCRIPTDIR source=../lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"
bench_dir=$scoring_root/test/bench

runs=${ROUTE_BENCH_RUNS:-3}
leads=${ROUTE_BENCH_LEADS:-20000}
clients=${ROUTE_BENCH_CLIENTS:-16}
queue=${ROUTE_BENCH_QUEUE:-10000}
per_client=$((leads / clients))

trap scoring_server_stop EXIT
trap 'exit 130' INT TERM

# the tree may be mid-edit by someone else: try the build a few times
for attempt in 1 2 3; do
	if scoring_build_install; then
		break
	fi
	if [ "$attempt" -eq 3 ]; then
		exit 1
	fi
	scoring_say "build failed, retrying in 60 s"
	sleep 60
done
scoring_server_start "shared_buffers = 256MB" "max_wal_size = 4GB" \
	"checkpoint_timeout = 30min" "autovacuum = off"
scoring_say "server on port $PGPORT"

export PGDATABASE=route_bench
scoring_psql -q -d postgres -c "CREATE DATABASE route_bench"
scoring_psql -q -f "$bench_dir/route_bench_setup.sql" >/dev/null

# median of the numbers on stdin
median()
{
	sort -g | awk '{ v[NR] = $1 } END { if (NR % 2) print v[(NR + 1) / 2]; else print (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}

# one pgbench run of script $1; prints its tps
pgbench_run()
{
	local out

	scoring_psql -q -c "SELECT route_bench_reset()" >/dev/null
	scoring_psql -q -c "VACUUM ANALYZE scoring.lead, scoring.manager_load, scoring.assignment_log" >/dev/null
	out=$("$PG_BINDIR/pgbench" -n -M prepared -c "$clients" -j "$clients" \
		-t "$per_client" -f "$bench_dir/$1" 2>&1) || {
		echo "$out" >&2
		scoring_err "pgbench failed"
		return 1
	}
	if grep -q 'number of failed transactions: [1-9]' <<<"$out"; then
		echo "$out" >&2
		scoring_err "pgbench: failed transactions"
		return 1
	fi
	sed -nE 's/^tps = ([0-9.]+) .*/\1/p' <<<"$out" | head -n 1
}

tps_new=()
tps_draft=()
spreads=()
exact=yes
for ((run = 1; run <= runs; run++)); do
	scoring_say "run $run/$runs: $leads ready leads, $clients clients"
	t=$(pgbench_run route_bench_new.sql)
	tps_new+=("$t")
	IFS='|' read -r n assigned queued spread day_exact open_exact < <(
		scoring_psql -A -t -c "SELECT * FROM route_bench_check")
	scoring_say "  $t tps; $assigned of $n assigned, $queued queued; spread $spread;" \
		"day_leads exact: $day_exact, open_leads exact: $open_exact"
	spreads+=("$spread")
	if [ "$day_exact" != t ] || [ "$open_exact" != t ] || [ "$assigned" != "$leads" ]; then
		exact=NO
	fi
	scoring_say "run $run/$runs: $leads drafts, $clients clients"
	t=$(pgbench_run route_bench_draft.sql)
	tps_draft+=("$t")
	scoring_say "  $t tps"
done

# dispatch of a queue: nobody present while the leads come in
dispatch_ms=()
dispatch_check=()
for ((run = 1; run <= runs; run++)); do
	scoring_say "run $run/$runs: dispatch() of $queue queued leads"
	scoring_psql -q -c "SELECT route_bench_reset()" >/dev/null
	scoring_psql -q -c "SELECT count(scoring.set_presence(m, 'offline')) FROM generate_series(1, 8) AS m" >/dev/null
	scoring_psql -q -c "INSERT INTO scoring.lead (shop, channel, category, brand, budget)
		SELECT 'shop1', 'email', 'welding', 'Fubag', 1000 + (i * 7919) % 98000
		  FROM generate_series(1, $queue) AS i" >/dev/null
	scoring_psql -q -c "VACUUM ANALYZE scoring.lead, scoring.manager_load" >/dev/null
	scoring_psql -q -c "SELECT count(scoring.heartbeat(m, true)) FROM generate_series(1, 8) AS m" >/dev/null
	out=$(scoring_psql -q -A -t -c '\timing on' -c "SELECT scoring.dispatch()")
	placed=$(head -n 1 <<<"$out")
	ms=$(sed -nE 's/^Time: ([0-9.]+) ms.*/\1/p' <<<"$out")
	IFS='|' read -r n assigned queued spread day_exact open_exact < <(
		scoring_psql -A -t -c "SELECT * FROM route_bench_check")
	scoring_say "  placed $placed in $ms ms; spread $spread; exact: $day_exact/$open_exact"
	dispatch_ms+=("$ms")
	dispatch_check+=("$placed placed, spread $spread, exact $day_exact/$open_exact")
done

med_new=$(printf '%s\n' "${tps_new[@]}" | median)
med_draft=$(printf '%s\n' "${tps_draft[@]}" | median)
med_dispatch=$(printf '%s\n' "${dispatch_ms[@]}" | median)
ratio=$(awk -v a="$med_new" -v b="$med_draft" 'BEGIN { printf "%.2f", a / b }')
max_spread=$(printf '%s\n' "${spreads[@]}" | sort -g | tail -n 1)
verdict=$(awk -v ms="$med_dispatch" 'BEGIN { print (ms < 1000 ? "under 1 s: ok" : "over 1 s: SLOW") }')

echo
printf 'routing benchmark: %s leads, %s clients, 8 present junior managers, %s runs (median)\n' \
	"$leads" "$clients" "$runs"
printf '%-44s %s\n' "what" "result"
printf '%-44s %s\n' "--------------------------------------------" "------------------------------"
printf '%-44s %s  (runs: %s)\n' "insert 'new' (scored + routed), tps" "$med_new" "${tps_new[*]}"
printf '%-44s %s  (runs: %s)\n' "insert 'draft' (scored only), tps" "$med_draft" "${tps_draft[*]}"
printf '%-44s %s\n' "ratio routed / draft" "$ratio"
printf '%-44s %s  (runs: %s)\n' "day_leads max - min among juniors" "$max_spread" "${spreads[*]}"
printf '%-44s %s\n' "counters = leads (day_leads, open_leads)" "$exact"
printf '%-44s %s ms, %s  (runs: %s)\n' "dispatch() of $queue queued leads" "$med_dispatch" \
	"$verdict" "${dispatch_ms[*]}"
printf '%-44s %s\n' "after dispatch (last run)" "${dispatch_check[-1]}"
