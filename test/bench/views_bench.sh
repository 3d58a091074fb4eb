#!/usr/bin/env bash
#
# test/bench/views_bench.sh
#	Scale benchmark of the BI views (issue: forecast_monthly for one month
#	< 200 ms and for all months < 1 s, manager_plan for a month < 200 ms,
#	on 10M leads over 3 years).
#
#	bash test/bench/views_bench.sh			# N=10000000
#	N=3000000 bash test/bench/views_bench.sh
#
# Own throwaway server (test/lib.sh), removed at the end.  Loads N leads
# with views_load.sql (triggers bypassed for the bulk load, as a restore
# with --disable-triggers would), rebuilds scoring.lead_totals with
# rebuild_totals(), VACUUM ANALYZE, checks that the views give exactly
# what the leads give (in two time zones), then times each query 5 times
# with EXPLAIN (ANALYZE, TIMING OFF) (views_timing.sql) and prints the
# median against the target.  Last, what keeping the totals costs a
# single-row update and insert (with and without the totals triggers),
# and a compaction after those changes.

# shellcheck disable=SC2119
set -euo pipefail
# shellcheck source-path=SCRIPTDIR source=../lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"
cd "$scoring_root"

N=${N:-10000000}
MONTH=${MONTH:-2026-06-01}
RUNS=5
DB=views_bench

trap scoring_server_stop EXIT
trap 'exit 130' INT TERM

scoring_build_install
scoring_say "starting a private server"
scoring_server_start "shared_buffers = '2GB'" "work_mem = '64MB'" \
	"max_wal_size = '8GB'" "checkpoint_timeout = '30min'" "jit = off"
psql_b() { scoring_psql -q -At -d "$DB" "$@"; }
scoring_psql -q -d postgres -c "CREATE DATABASE $DB"
psql_b -c "CREATE EXTENSION scoring"

scoring_say "loading $N leads over 3 years (triggers DISABLED for the bulk load," \
	"computed columns set directly; re-enabled after)"
t0=$(date +%s)
psql_b -v n="$N" -f test/bench/views_load.sql >/dev/null
scoring_say "loaded in $(($(date +%s) - t0)) s;" \
	"scoring.lead $(psql_b -c "SELECT pg_size_pretty(pg_total_relation_size('scoring.lead'))") with indexes"
t0=$(date +%s%N)
psql_b -c "SELECT scoring.rebuild_totals()" >/dev/null
scoring_say "rebuild_totals(): $((($(date +%s%N) - t0) / 1000000)) ms, $(psql_b -c "SELECT count(*) FROM scoring.lead_totals") rows"
psql_b -c "VACUUM ANALYZE scoring.lead, scoring.lead_totals"

# median of the RUNS values of each name in "name<TAB>ms" lines on stdin
medians()
{
	sort -t $'\t' -k1,1 -k2,2n | awk -F '\t' -v runs="$RUNS" '
		{ v[$1, ++n[$1]] = $2; if (!($1 in seen)) { seen[$1] = 1; order[++k] = $1 } }
		END { for (i = 1; i <= k; i++) { m = order[i]; print m "\t" v[m, int((n[m] + 1) / 2)] } }'
}

target()
{
	case "$1" in
		*"all months"*) echo 1000 ;;
		*) echo 200 ;;
	esac
}

# print the table; returns 1 when a target is missed
report()
{
	local name ms t missed=0
	printf '%-42s %12s %10s  %s\n' "query (median of $RUNS, N=$N)" "ms" "target" "met"
	while IFS=$'\t' read -r name ms; do
		t=$(target "$name")
		if awk -v a="$ms" -v b="$t" 'BEGIN { exit !(a < b) }'; then
			printf '%-42s %12.1f %10s  %s\n' "$name" "$ms" "< $t" "yes"
		else
			printf '%-42s %12.1f %10s  %s\n' "$name" "$ms" "< $t" "NO"
			missed=1
		fi
	done
	return "$missed"
}

# rows where the views and a recomputation from the leads differ, in the
# session time zone $1
check_same()
{
	psql_b -c "SET TimeZone = '$1';
		CREATE TEMP VIEW raw_forecast AS
			SELECT date_trunc('month', created_at)::date AS month, count(*) AS leads,
				   coalesce(sum(forecast_profit), 0) AS expected_profit,
				   coalesce(sum(won_profit) FILTER (WHERE status = 'won'), 0) AS won_profit,
				   count(*) FILTER (WHERE status NOT IN ('won', 'lost', 'refused')) AS open_leads
			  FROM scoring.lead GROUP BY 1;
		CREATE TEMP VIEW raw_plan AS
			SELECT date_trunc('month', created_at)::date AS month, assignee_id AS manager_id,
				   count(*) AS leads, coalesce(sum(forecast_profit), 0) AS plan,
				   coalesce(sum(won_profit) FILTER (WHERE status = 'won'), 0) AS won_profit
			  FROM scoring.lead WHERE assignee_id IS NOT NULL GROUP BY 1, 2;
		SELECT (SELECT count(*) FROM (
					(SELECT month, leads, expected_profit, won_profit, open_leads
					   FROM scoring.forecast_monthly EXCEPT ALL SELECT * FROM raw_forecast)
					UNION ALL
					(SELECT * FROM raw_forecast EXCEPT ALL
					 SELECT month, leads, expected_profit, won_profit, open_leads
					   FROM scoring.forecast_monthly)) f)
			 + (SELECT count(*) FROM (
					(SELECT month, manager_id, leads, plan, won_profit
					   FROM scoring.manager_plan EXCEPT ALL SELECT * FROM raw_plan)
					UNION ALL
					(SELECT * FROM raw_plan EXCEPT ALL
					 SELECT month, manager_id, leads, plan, won_profit
					   FROM scoring.manager_plan)) p)" | tail -n 1
}
totals_rows() { psql_b -c "SELECT count(*) FROM scoring.lead_totals"; }

for zone in Europe/Moscow Asia/Kolkata; do
	echo "rows where the views and the leads differ ($zone): $(check_same "$zone")"
done
echo

scoring_say "timing the views, month $MONTH"
psql_b -v month="$MONTH" -f test/bench/views_timing.sql >/dev/null	# warm the cache
for _ in $(seq "$RUNS"); do
	psql_b -v month="$MONTH" -f test/bench/views_timing.sql
done | medians >"$SCORING_TMP/views.tsv"
echo
report <"$SCORING_TMP/views.tsv" || missed=1

# what the totals cost: 10,000 single-row updates (closing an open lead) and
# inserts through the scoring trigger, with and without the totals triggers
cost()
{
	psql_b -c "SET TimeZone = 'Europe/Moscow'; SET scoring.now = '2026-12-20 12:00+03';" \
		-c '\timing on' -c "$1" | sed -n 's/^Time: \([0-9.]*\) ms.*/\1/p'
}
close_leads()
{
	cost "DO \$\$ DECLARE r record; BEGIN
		FOR r IN SELECT lead_id FROM scoring.lead WHERE status = 'assigned'
				  ORDER BY lead_id LIMIT 10000 OFFSET $1 LOOP
			UPDATE scoring.lead SET status = 'won', won_profit = 100 WHERE lead_id = r.lead_id;
		END LOOP; END \$\$"
}
insert_leads()
{
	cost "DO \$\$ BEGIN
		FOR i IN 1..10000 LOOP
			INSERT INTO scoring.lead (created_at, shop, channel, brand, budget, status)
			VALUES ('2026-12-20 12:00+03', 's1', 'email', 'B', 1000 + i, 'draft');
		END LOOP; END \$\$"
}
per_lead() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.1f", (a - b) * 1000 / 10000 }'; }
echo
scoring_say "the cost of keeping the totals"
up_with=$(close_leads 20000)
in_with=$(insert_leads)
psql_b -c "ALTER TABLE scoring.lead DISABLE TRIGGER lead_totals_update,
	DISABLE TRIGGER lead_totals_insert" >/dev/null
up_without=$(close_leads 0)
in_without=$(insert_leads)
psql_b -c "ALTER TABLE scoring.lead ENABLE TRIGGER lead_totals_update,
	ENABLE TRIGGER lead_totals_insert" >/dev/null
printf '10,000 single-row updates: %.0f ms with the totals, %.0f ms without (%s µs a lead more)\n' \
	"$up_with" "$up_without" "$(per_lead "$up_with" "$up_without")"
printf '10,000 single-row inserts: %.0f ms with the totals, %.0f ms without (%s µs a lead more)\n' \
	"$in_with" "$in_without" "$(per_lead "$in_with" "$in_without")"
echo "lead_totals: $(totals_rows) rows after the changes with the totals on"
t0=$(date +%s%N)
folded=$(psql_b -c "SELECT scoring.compact_totals()")
echo "compact_totals(): $folded rows folded in $((($(date +%s%N) - t0) / 1000000)) ms; $(totals_rows) rows"
t0=$(date +%s%N)
psql_b -c "SELECT scoring.rebuild_totals()" >/dev/null
echo "rebuild_totals() after the changes made without the totals: $((($(date +%s%N) - t0) / 1000000)) ms"
echo "rows where the views and the leads differ (Europe/Moscow): $(check_same Europe/Moscow)"
exit "${missed:-0}"
