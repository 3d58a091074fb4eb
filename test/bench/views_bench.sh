#!/usr/bin/env bash
#
# test/bench/views_bench.sh
#	Scale benchmark of the BI views (issue: forecast_monthly for one month
#	< 200 ms and for all months < 1 s, manager_plan for a month < 200 ms,
#	on 10M leads over 3 years).
#
#	bash test/bench/views_bench.sh			# N=10000000
#	N=3000000 bash test/bench/views_bench.sh
#	PROPOSAL=1 ...	# measure the proposal even when the targets are met
#
# Own throwaway server (test/lib.sh), removed at the end.  Loads N leads
# with views_load.sql (the scoring trigger is bypassed for the bulk load
# and re-enabled after), VACUUM ANALYZE, then times each query 5 times
# with EXPLAIN (ANALYZE, TIMING OFF) (views_timing.sql) and prints the
# median against the target.  When a target is missed it also builds the
# proposal of views_proposal.sql in the bench database (a monthly
# aggregate kept by a trigger; the extension is not edited), checks that
# it gives the same rows as the views, times it the same way
# (views_proposal_timing.sql) and the cost of its trigger on updates.

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

scoring_say "loading $N leads over 3 years (scoring trigger DISABLED for the bulk load," \
	"computed columns set directly; re-enabled after)"
t0=$(date +%s)
psql_b -v n="$N" -f test/bench/views_load.sql >/dev/null
psql_b -c "VACUUM ANALYZE scoring.lead"
scoring_say "loaded and analyzed in $(($(date +%s) - t0)) s;" \
	"scoring.lead $(psql_b -c "SELECT pg_size_pretty(pg_total_relation_size('scoring.lead'))") with indexes"

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

scoring_say "timing the views, month $MONTH"
psql_b -v month="$MONTH" -f test/bench/views_timing.sql >/dev/null	# warm the cache
for _ in $(seq "$RUNS"); do
	psql_b -v month="$MONTH" -f test/bench/views_timing.sql
done | medians >"$SCORING_TMP/views.tsv"
echo
if report <"$SCORING_TMP/views.tsv" && [ "${PROPOSAL:-0}" != 1 ]; then
	echo
	scoring_say "every target met by the views as they are"
	exit 0
fi

echo
scoring_say "a target is missed: measuring a proposal in the bench database" \
	"(monthly aggregate per month and assignee kept by a trigger, test/bench/views_proposal.sql)"
t0=$(date +%s)
psql_b -f test/bench/views_proposal.sql >/dev/null
scoring_say "aggregate built in $(($(date +%s) - t0)) s:" \
	"$(psql_b -c "SELECT count(*) FROM bench.lead_month") rows"
# the same rows as the views (months in Europe/Moscow), before and after changes
check_same()
{
	psql_b -c "SET TimeZone = 'Europe/Moscow';
		SELECT (SELECT count(*) FROM (SELECT * FROM scoring.forecast_monthly
				EXCEPT SELECT * FROM bench.forecast_monthly) a)
			 + (SELECT count(*) FROM (SELECT * FROM bench.forecast_monthly
				EXCEPT SELECT * FROM scoring.forecast_monthly) b)
			 + (SELECT count(*) FROM (SELECT * FROM scoring.manager_plan WHERE month = '$MONTH'
				EXCEPT SELECT * FROM bench.manager_plan WHERE month = '$MONTH') c)
			 + (SELECT count(*) FROM (SELECT * FROM bench.manager_plan WHERE month = '$MONTH'
				EXCEPT SELECT * FROM scoring.manager_plan WHERE month = '$MONTH') d)"
}
echo "rows differing from the views: $(check_same)"
# the trigger's cost: 10,000 single-row updates (close an open lead) and
# inserts, through the scoring trigger as in production, with and without it
cost()
{
	psql_b -c "SET TimeZone = 'Europe/Moscow'; SET scoring.now = '2026-12-20 12:00+03';" -c '\timing on' -c "
		DO \$\$ DECLARE r record; BEGIN
		FOR r IN SELECT lead_id FROM scoring.lead WHERE status = 'assigned' ORDER BY lead_id LIMIT 10000 OFFSET $1 LOOP
			UPDATE scoring.lead SET status = 'won', won_profit = 100 WHERE lead_id = r.lead_id;
		END LOOP; END \$\$" | sed -n 's/^Time: \([0-9.]*\) ms.*/\1/p'
}
with=$(cost 0)
psql_b -c "ALTER TABLE scoring.lead DISABLE TRIGGER zz_lead_month"
without=$(cost 0)
psql_b -c "ALTER TABLE scoring.lead ENABLE TRIGGER zz_lead_month"
printf '10,000 single-row updates: %.0f ms with the aggregate trigger, %.0f ms without (%.3f ms a lead more)\n' \
	"$with" "$without" "$(awk -v a="$with" -v b="$without" 'BEGIN { print (a - b) / 10000 }')"
# the other 10,000 were closed with the trigger off: rebuild those months' rows
psql_b -c "SET TimeZone = 'Europe/Moscow'; TRUNCATE bench.lead_month;
	INSERT INTO bench.lead_month
	SELECT date_trunc('month', created_at)::date, coalesce(assignee_id, 0), count(*),
		   coalesce(sum(forecast_profit), 0), coalesce(sum(won_profit) FILTER (WHERE status = 'won'), 0),
		   count(*) FILTER (WHERE status NOT IN ('won', 'lost', 'refused')),
		   coalesce(sum(forecast_profit) FILTER (WHERE status NOT IN ('won', 'lost', 'refused')), 0)
	  FROM scoring.lead GROUP BY 1, 2" >/dev/null
psql_b -c "SET TimeZone = 'Europe/Moscow'; SET scoring.now = '2026-12-20 12:00+03';
	UPDATE scoring.lead SET status = 'lost' WHERE lead_id IN
		(SELECT lead_id FROM scoring.lead WHERE status = 'assigned' ORDER BY lead_id DESC LIMIT 1000);
	DELETE FROM scoring.lead WHERE lead_id IN (SELECT lead_id FROM scoring.lead ORDER BY lead_id DESC LIMIT 10)" >/dev/null
echo "rows differing from the views after updates and deletes: $(check_same)"
psql_b -c "VACUUM ANALYZE scoring.lead" -c "ANALYZE bench.lead_month"
psql_b -v month="$MONTH" -f test/bench/views_timing.sql >/dev/null
psql_b -v month="$MONTH" -f test/bench/views_proposal_timing.sql >/dev/null
for _ in $(seq "$RUNS"); do
	psql_b -v month="$MONTH" -f test/bench/views_timing.sql
	psql_b -v month="$MONTH" -f test/bench/views_proposal_timing.sql
done | medians >"$SCORING_TMP/all.tsv"
echo
report <"$SCORING_TMP/all.tsv" || true
echo
echo "(the bulk load bypassed the scoring trigger: ALTER TABLE scoring.lead DISABLE TRIGGER USER, re-enabled after)"
