#!/usr/bin/env bash
#
# test/bench/sequences_bench.sh
#	Benchmark of follow-up sequences at scale: builds and installs the
#	extension, starts a private throwaway server (test/lib.sh: a temp dir
#	owned by postgres, initdb/pg_ctl through runuser when root, a free port
#	54xx other than 5432, a Unix socket only), loads N clients with two
#	purchases each and N active enrollments all due now
#	(sequences_load.sql), then times, as the median of RUNS fresh runs of
#	server-side time:
#
#	  run_sequences(now)          one run writes N messages
#	  run_sequences(now), idle    nothing due (the N chains moved a day
#	                              later, committed, vacuumed): the cost
#	                              of the run every minute
#	  run_sequences(now), capped  the same chains in a sequence with a
#	                              daily cap of CAP per manager (8 managers)
#	  lead_context() x N          the part of a run that builds contexts
#	  render() x 2N               the part that renders step 0
#
#	Every run is in a transaction that is rolled back, after which the
#	tables are vacuumed and a checkpoint is taken, so that each run starts
#	from the same fresh state.  After each run the outbox is checked: N
#	messages, one per (enrollment, step).  Prints a table, then one
#	rendered message.
#
# Environment: N (default 100000), RUNS (default 3), CAP (default 1000),
# KEEP=1 leaves the server running (its connection is printed), PG_CONFIG.

set -euo pipefail

bench_dir=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=../lib.sh
. "$bench_dir/../lib.sh"

N=${N:-100000}
RUNS=${RUNS:-3}
CAP=${CAP:-1000}
NOW='2026-03-04 10:00+00'
psqlb()
{
	"$PG_BINDIR/psql" -X -q -v ON_ERROR_STOP=1 "$@"
}

scoring_bench_start sequences_bench
psqlb -f "$bench_dir/sequences_timing.sql" >/dev/null

scoring_say "loading $N clients, $((2 * N)) purchases, $N open leads, $N active enrollments due at $NOW"
t0=$SECONDS
psqlb -v n="$N" -v cap="$CAP" -v now="$NOW" -f "$bench_dir/sequences_load.sql" >/dev/null
scoring_say "loaded in $((SECONDS - t0)) s"

# median, min, max (in s, 3 decimals) of the first fields of lines "seconds count"
stats()
{
	sort -g | awk '
		{ v[NR] = $1 }
		END {
			if (NR % 2) m = v[(NR + 1) / 2]; else m = (v[NR / 2] + v[NR / 2 + 1]) / 2;
			printf "%.3f %.3f %.3f\n", m, v[1], v[NR]
		}'
}

# back to the loaded state after a rolled-back run
fresh()
{
	psqlb -c "VACUUM ANALYZE scoring.enrollment, scoring.outbox" -c "CHECKPOINT"
}

table=()
per_run=()

# one table row; $1 label, $2 what one run writes, then "seconds count" lines
row()
{
	local label=$1 what=$2 med min max counts rate
	shift 2
	counts=$(printf '%s\n' "$@" | awk '{ print $2 }' | sort -u | tr '\n' ' ')
	read -r med min max < <(printf '%s\n' "$@" | stats)
	rate=$(awk -v s="$med" -v n="${counts%% *}" 'BEGIN { if (s > 0 && n > 0) printf "%.0f", n / s; else print "-" }')
	table+=("$(printf '%-34s %10s %10s %10s %10s %12s  %s' "$label" "$med" "$min" "$max" \
		"${counts% }" "$rate" "$what")")
}

full=()
scoring_say "run_sequences('$NOW') on $N due chains, $RUNS fresh runs"
for i in $(seq 1 "$RUNS"); do
	out=$(psqlb -At \
		-c "BEGIN" \
		-c "SELECT seq_bench.time_run('$NOW')" \
		-c "SELECT count(*) || ' ' || count(DISTINCT (enrollment_id, step)) || ' '
					|| (SELECT count(*) FROM scoring.enrollment WHERE step = 1 AND state = 'active')
			  FROM scoring.outbox" \
		-c "ROLLBACK")
	full+=("$(sed -n 1p <<<"$out")")
	check=$(sed -n 2p <<<"$out")
	if [ "$check" != "$N $N $N" ]; then
		scoring_err "run $i: outbox messages, distinct (enrollment, step), advanced chains: $check (want $N $N $N)"
		exit 1
	fi
	per_run+=("$(printf 'run %d: %s s for %s messages' "$i" \
		"$(awk '{ print $1 }' <<<"${full[-1]}")" "$(awk '{ print $2 }' <<<"${full[-1]}")")")
	fresh
done
row "run_sequences(now)" "$N due: one message each" "${full[@]}"

idle=()
scoring_say "run_sequences('$NOW') with $N active chains, none due, $RUNS runs"
psqlb -c "UPDATE scoring.enrollment SET next_at = next_at + interval '1 day'"
fresh
for i in $(seq 1 "$RUNS"); do
	idle+=("$(psqlb -At -c "SELECT seq_bench.time_run('$NOW')")")
done
psqlb -c "UPDATE scoring.enrollment SET next_at = next_at - interval '1 day'"
fresh
row "run_sequences(now), nothing due" "$N active, none due" "${idle[@]}"

capped=()
scoring_say "run_sequences('$NOW') with a daily cap of $CAP per manager, $RUNS fresh runs"
for i in $(seq 1 "$RUNS"); do
	out=$(psqlb -At \
		-c "BEGIN" \
		-c "UPDATE scoring.enrollment SET sequence = 'bench_capped'" \
		-c "SELECT seq_bench.time_run('$NOW')" \
		-c "ROLLBACK")
	capped+=("$(tail -n 1 <<<"$out")")
	fresh
done
row "run_sequences(now), daily cap" "cap $CAP x 8 managers" "${capped[@]}"

ctx=()
rnd=()
scoring_say "lead_context() and render() on their own, $RUNS runs"
for i in $(seq 1 "$RUNS"); do
	ctx+=("$(psqlb -At -c "SELECT seq_bench.time_context('$NOW')")")
	rnd+=("$(psqlb -At -c "SELECT seq_bench.time_render('$NOW')")")
done
row "lead_context() x N" "contexts built" "${ctx[@]}"
row "render() x 2N (subject, body)" "step 0 rendered" "${rnd[@]}"

sample=$(psqlb -At -c "BEGIN" -c "SELECT scoring.run_sequences('$NOW')" \
	-c "SELECT to_address || E'\n' || subject || E'\n\n' || body FROM scoring.outbox ORDER BY message_id LIMIT 1" \
	-c "ROLLBACK" | tail -n +2)

echo
echo "follow-up sequences benchmark: $N clients with 2 purchases each, $N active enrollments"
echo "due at $NOW, median of $RUNS fresh runs, server-side time"
printf '%-34s %10s %10s %10s %10s %12s  %s\n' "operation" "median s" "min s" "max s" \
	"messages" "per second" "what"
printf '%s\n' "${table[@]}"
echo
printf '%s\n' "${per_run[@]}"
echo
echo "===== a message written by the run"
echo "$sample"
