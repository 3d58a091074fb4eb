#!/usr/bin/env bash
#
# test/t_load.sh
#	The BI totals and the managers' loads under concurrent load, with
#	pgbench: an extra suite of test/test.sh, run with the private server
#	in the environment (PGHOST, PGPORT, PGUSER, PGDATABASE, PG_BINDIR,
#	SCORING_ROOT).
#
#	Creates its own database with scoring: brand B (margin 0.2), an active
#	hand-written model (intercept 0, no weights: p_win 0.5 for every
#	lead), one route for every lead, 8 junior managers present and on
#	shift at scoring.now, set for the database to 2026-03-31 12:00 UTC
#	(15:00 in Moscow, their default time zone; no open-lead cap, and no
#	setting caps routing).  Then two pgbench runs of 16 clients (-j 2),
#	each raced by a 17th client calling scoring.compact_totals() every
#	200 ms:
#
#	1. routing, 3 s: leads inserted one by one as 'new' (routed by the
#	   trigger) and three at a time, 7 hours apart, as 'draft', created
#	   within 30 hours (drafts 37) of 2026-03-01 or 2026-04-01 UTC, so that
#	   three months and the quarter-hour buckets of lead_totals at the
#	   months' edges are hit; random recent leads accepted, or closed as
#	   won (with won_profit) or lost; unassigned leads deleted.  Then
#	   rebuild_loads(now) must change nothing: the counters of
#	   manager_load are what the leads give.
#	2. everything, 6 s: the same, plus random leads moved by hand to
#	   another manager (UPDATE assignee_id) and any lead deleted.  Then
#	   forecast_monthly and manager_plan must equal a recomputation from
#	   the leads, row for row (EXCEPT ALL both ways), in UTC, Europe/Moscow,
#	   Asia/Kolkata (+05:30) and Asia/Kathmandu (+05:45); lead_totals must
#	   count every lead once, in compacted rows and deltas appended since
#	   the last compaction; after one more compact_totals() no delta is
#	   left and the views still agree.
#
#	Both runs must end without an aborted client and without a failed
#	transaction (deadlock, serialization failure), and every 'new' lead
#	must get a manager.
#
#	Why run 2 does not expect rebuild_loads() to return 0: the day
#	counters of manager_load (day_leads, day_profit) count the leads a
#	manager received in the working day, and a lead moved away or deleted
#	stays counted for whoever received it (README, route_fairness.sql),
#	while rebuild_loads() counts the leads a manager holds that were
#	assigned that day.  So run 2 checks open_leads against the leads,
#	the day counters against what each manager received (routings in
#	assignment_log, plus the moves of open leads the script logs), and
#	that rebuild_loads() rewrites exactly the managers whose received and
#	held leads differ.
#
#	Prints TAP-ish lines and, last, "N passed, N failed"; exits non-zero
#	when anything failed.  Drops its database at the end, also on failure
#	or interruption.
#
# Run alone: PGHOST=... PGPORT=... PGUSER=postgres bash test/t_load.sh

set -uo pipefail

PG_BINDIR=${PG_BINDIR:-/usr/lib/postgresql/15/bin}
PSQL=$PG_BINDIR/psql
[ -x "$PSQL" ] || PSQL=psql
PGBENCH=$PG_BINDIR/pgbench
DB=scoring_load_$$
NOW='2026-03-31 12:00+00'
CLIENTS=16
THREADS=2
ZONES=(UTC Europe/Moscow Asia/Kolkata Asia/Kathmandu)

# shellcheck source-path=SCRIPTDIR source=tap.sh
. "$(dirname "${BASH_SOURCE[0]}")/tap.sh"
created_db=0
compactor=
dir=$(mktemp -d "${TMPDIR:-/tmp}/scoring-t-load.XXXXXX")

# shellcheck disable=SC2317  # called by the EXIT trap
cleanup()
{
	local rc=$?
	trap - EXIT INT TERM
	stop_job "$compactor"
	if [ "$created_db" = 1 ]; then
		drop_database "$DB"
	fi
	rm -rf "$dir"
	finish "$rc"
}
trap cleanup EXIT
trap 'not_ok "interrupted"; exit 130' INT TERM


echo "# pgbench load on leads, routing and the BI totals, in database $DB"

require_pgbench

# --- the database --------------------------------------------------------

create_database "$DB"
created_db=1
ok "CREATE DATABASE $DB"
export PGDATABASE=$DB

out=$(q "CREATE EXTENSION scoring;
		 ALTER DATABASE $DB SET scoring.now = '$NOW';
		 INSERT INTO scoring.brand (brand, margin) VALUES ('B', 0.2);
		 INSERT INTO scoring.model (active, train_since, train_until, n_rows, n_won,
									intercept, weights)
		 VALUES (true, '2025-01-01 00:00+00', '2026-01-01 00:00+00', 0, 0, 0, '{}');
		 INSERT INTO scoring.route (position, condition, tier) VALUES (1, '{}', NULL);
		 INSERT INTO scoring.manager (manager_id, full_name, tier)
		 SELECT m, 'Junior ' || m, 'junior' FROM generate_series(1, 8) AS m;
		 SELECT count(scoring.heartbeat(m, false, timestamptz '$NOW' - interval '1 minute'))
		   FROM generate_series(1, 8) AS m;

		 -- what the script logs: moves of open leads, deletes, compactions
		 CREATE TABLE public.moves (manager_id int NOT NULL, profit numeric NOT NULL);
		 CREATE TABLE public.gone (lead_id bigint PRIMARY KEY, expected_profit numeric);
		 CREATE TABLE public.compactions (run int NOT NULL, folded bigint NOT NULL);

		 -- forecast_monthly and manager_plan recomputed from the leads
		 CREATE VIEW public.raw_forecast AS
			SELECT date_trunc('month', created_at)::date AS month, count(*) AS leads,
				   coalesce(sum(forecast_profit), 0) AS expected_profit,
				   coalesce(sum(won_profit) FILTER (WHERE status = 'won'), 0) AS won_profit,
				   count(*) FILTER (WHERE status NOT IN ('won', 'lost', 'refused')) AS open_leads,
				   coalesce(sum(forecast_profit) FILTER (
						WHERE status NOT IN ('won', 'lost', 'refused')), 0) AS open_expected_profit
			  FROM scoring.lead GROUP BY 1;
		 CREATE VIEW public.raw_plan AS
			SELECT date_trunc('month', created_at)::date AS month, assignee_id AS manager_id,
				   count(*) AS leads, coalesce(sum(forecast_profit), 0) AS plan,
				   coalesce(sum(won_profit) FILTER (WHERE status = 'won'), 0) AS won_profit
			  FROM scoring.lead WHERE assignee_id IS NOT NULL GROUP BY 1, 2;
		 -- rows of each view that the recomputation has not, and back
		 CREATE FUNCTION public.disagreements() RETURNS text LANGUAGE sql AS \$\$
			SELECT (SELECT count(*) FROM (
						(SELECT month, leads, expected_profit, won_profit, open_leads,
								open_expected_profit FROM scoring.forecast_monthly
						 EXCEPT ALL SELECT * FROM public.raw_forecast)
						UNION ALL
						(SELECT * FROM public.raw_forecast
						 EXCEPT ALL SELECT month, leads, expected_profit, won_profit, open_leads,
										   open_expected_profit FROM scoring.forecast_monthly)) f)
				   || ' ' ||
				   (SELECT count(*) FROM (
						(SELECT month, manager_id, leads, plan, won_profit FROM scoring.manager_plan
						 EXCEPT ALL SELECT * FROM public.raw_plan)
						UNION ALL
						(SELECT * FROM public.raw_plan
						 EXCEPT ALL SELECT month, manager_id, leads, plan, won_profit
									  FROM scoring.manager_plan)) p)
		 \$\$;")
if [ "$out" = 8 ]; then
	ok "scoring with a brand, a model, a route and 8 present junior managers"
else
	not_ok "scoring with a brand, a model, a route and 8 present junior managers" "$out"
	bail "no setup"
fi
is "new sessions take scoring.now from the database" "$(q "SELECT scoring.clock() = '$NOW'")" t

# --- the pgbench scripts -------------------------------------------------

# a recent lead, which may be gone or not be there yet
pick="lead_id = (SELECT max(lead_id) FROM scoring.lead) - :off"
# a moment within 30 hours of the start of March or April, UTC
moment="CASE :edge WHEN 0 THEN timestamptz '2026-03-01 00:00+00'
		 ELSE timestamptz '2026-04-01 00:00+00' END + :ms * interval '1 millisecond'"

cat >"$dir/new.sql" <<EOF
\\set edge random(0, 1)
\\set ms random(-108000000, 108000000)
\\set budget random(1000, 200000)
INSERT INTO scoring.lead (created_at, brand, budget, status)
VALUES ($moment, 'B', :budget, 'new');
EOF

cat >"$dir/drafts.sql" <<EOF
\\set edge random(0, 1)
\\set ms random(-108000000, 108000000)
INSERT INTO scoring.lead (created_at, brand, budget, status)
SELECT $moment + i * interval '7 hours', 'B', 1000 + (random() * 199000)::int, 'draft'
  FROM generate_series(-1, 1) AS i;
EOF

cat >"$dir/accept.sql" <<EOF
\\set off random(0, 1000)
UPDATE scoring.lead SET status = 'accepted' WHERE $pick AND status = 'assigned';
EOF

cat >"$dir/close.sql" <<EOF
\\set off random(0, 1000)
\\set won random(0, 1)
\\set pct random(5, 30)
UPDATE scoring.lead
   SET status = CASE WHEN :won = 1 THEN 'won' ELSE 'lost' END,
	   won_profit = CASE WHEN :won = 1 THEN round(budget * :pct / 100.0, 2) END,
	   closed_at = scoring.clock()
 WHERE $pick AND status NOT IN ('won', 'lost', 'refused');
EOF

cat >"$dir/delete_unassigned.sql" <<EOF
\\set off random(0, 1000)
WITH d AS (DELETE FROM scoring.lead WHERE $pick AND assignee_id IS NULL
		   RETURNING lead_id, expected_profit)
INSERT INTO public.gone SELECT lead_id, expected_profit FROM d;
EOF

cat >"$dir/delete.sql" <<EOF
\\set off random(0, 1000)
WITH d AS (DELETE FROM scoring.lead WHERE $pick RETURNING lead_id, expected_profit)
INSERT INTO public.gone SELECT lead_id, expected_profit FROM d;
EOF

# a move of an open lead is a lead received by the new manager
cat >"$dir/move.sql" <<EOF
\\set off random(0, 1000)
\\set m random(1, 8)
WITH moved AS (
	UPDATE scoring.lead SET assignee_id = :m
	 WHERE $pick AND assignee_id IS DISTINCT FROM :m
	RETURNING status, expected_profit)
INSERT INTO public.moves (manager_id, profit)
SELECT :m, coalesce(expected_profit, 0) FROM moved WHERE status IN ('assigned', 'accepted');
EOF

cat >"$dir/compact.sql" <<'EOF'
INSERT INTO public.compactions (run, folded) SELECT :run, scoring.compact_totals();
\sleep 200 ms
EOF

# load RUN SECONDS SCRIPT@WEIGHT...: a pgbench run of $CLIENTS clients
# raced by one calling compact_totals(); checks that every transaction of
# both succeeded
load()
{
	local run=$1 secs=$2 log=$dir/run$1.log clog=$dir/compact$1.log
	local rc crc=0 processed nfailed aborted tps cruns s
	local args=() errors=()
	shift 2
	for s in "$@"; do
		args+=(-f "$dir/$s")
	done

	"$PGBENCH" -n -c 1 -j 1 -T "$secs" -D run="$run" -f "$dir/compact.sql" >"$clog" 2>&1 &
	compactor=$!
	"$PGBENCH" -n -c "$CLIENTS" -j "$THREADS" -T "$secs" --failures-detailed --verbose-errors \
		"${args[@]}" >"$log" 2>&1
	rc=$?
	wait "$compactor" || crc=$?
	compactor=

	processed=$(pgbench_field "$log" 'number of transactions actually processed')
	nfailed=$(pgbench_field "$log" 'number of failed transactions')
	tps=$(pgbench_field "$log" 'tps ')
	aborted=$(grep -cE 'client [0-9]+ (script [0-9]+ )?aborted|[Rr]un was aborted' "$log")
	echo "# run $run: ${processed:-?} transactions in $secs s, ${nfailed:-?} failed, tps ${tps:-?}"
	# per script: "SQL script 1: .../new.sql", then " - 262 transactions (...)"
	awk '/^SQL script/ { n = split($NF, p, "/"); name = p[n] }
		 /^ - [0-9]+ transactions/ { sub(/^ - /, ""); print "#   " name ": " $0 }' "$log"
	is "run $run: pgbench ended normally, no client aborted" "rc $rc, $aborted aborted" \
		"rc 0, 0 aborted"
	if [ -n "$processed" ] && [ "$processed" -ge 300 ]; then
		ok "run $run: at least 300 transactions ($processed)"
	else
		not_ok "run $run: at least 300 transactions" "got: ${processed:-none}" \
			"$(tail -n 3 "$log" | tr '\n' '|')"
	fi
	if [ "$nfailed" = 0 ]; then
		ok "run $run: no failed transaction (deadlock, serialization failure)"
	else
		mapfile -t errors < <(grep -E '^number of (serialization|deadlock) failures' "$log"
			grep -m 3 -E 'got an error|aborted' "$log")
		not_ok "run $run: no failed transaction (deadlock, serialization failure)" \
			"failed: ${nfailed:-not reported}" "${errors[@]}"
	fi

	cruns=$(pgbench_field "$clog" 'number of transactions actually processed')
	echo "# run $run: compact_totals() ran ${cruns:-?} times meanwhile"
	is "run $run: the compacting client ended normally, no failure" \
		"rc $crc, $(pgbench_field "$clog" 'number of failed transactions') failed" "rc 0, 0 failed"
	is "run $run: compact_totals() ran during the load and folded rows" \
		"$(q "SELECT count(*) >= 5 AND sum(folded) > 0 FROM public.compactions WHERE run = $run")" t
}

# Checks that the views equal the recomputation in every zone of ZONES
views_agree()
{
	local when=$1 zone
	for zone in "${ZONES[@]}"; do
		is "$when: forecast_monthly and manager_plan equal the leads in $zone (rows differing)" \
			"$(q "SET TimeZone = '$zone'; SELECT public.disagreements()")" "0 0"
	done
}

# --- run 1: routing ------------------------------------------------------

start=$SECONDS
load 1 3 new.sql@5 drafts.sql@2 accept.sql@2 close.sql@3 delete_unassigned.sql@1

is "run 1: every new lead was routed to a manager (no queued decision)" \
	"$(q "SELECT count(*) FILTER (WHERE event = 'queued') || ' queued, '
				 || (count(*) FILTER (WHERE event = 'assigned') > 0) FROM scoring.assignment_log")" \
	"0 queued, true"
is "run 1: every manager got leads" \
	"$(q "SELECT count(*) FROM scoring.manager_load WHERE day_leads > 0")" 8
is "run 1: rebuild_loads('$NOW') changes nothing: the load counters are exact" \
	"$(q "SELECT scoring.rebuild_loads('$NOW')")" 0
views_agree "run 1"

# --- run 2: everything ---------------------------------------------------

load 2 6 new.sql@4 drafts.sql@2 accept.sql@1 close.sql@3 move.sql@3 delete.sql@1
echo "# pgbench took $((SECONDS - start)) s in all"

out=$(q "SELECT count(*) || ' leads, ' || count(*) FILTER (WHERE assignee_id IS NOT NULL)
			|| ' assigned, ' || count(*) FILTER (WHERE status = 'won') || ' won, '
			|| count(*) FILTER (WHERE status = 'lost') || ' lost; '
			|| (SELECT count(*) FROM public.moves) || ' open leads moved, '
			|| (SELECT count(*) FROM public.gone) || ' deleted'
		   FROM scoring.lead")
echo "# $out"
is "run 2: every new lead was routed to a manager (no queued decision)" \
	"$(q "SELECT count(*) FROM scoring.assignment_log WHERE event = 'queued'")" 0
is "three months with leads (UTC), across 2 month edges" \
	"$(q "SET TimeZone = 'UTC'; SELECT string_agg(month::text, ' ' ORDER BY month) FROM scoring.forecast_monthly")" \
	"2026-02-01 2026-03-01 2026-04-01"
is "the totals count every lead once" \
	"$(q "SELECT (SELECT sum(leads) FROM scoring.lead_totals) = (SELECT count(*) FROM scoring.lead)
				 AND (SELECT sum(open_leads) FROM scoring.lead_totals)
					 = (SELECT count(*) FROM scoring.lead WHERE status NOT IN ('won', 'lost', 'refused'))")" t
rows=$(q "SELECT count(*) FILTER (WHERE compacted) || ' ' || count(*) FILTER (WHERE NOT compacted)
			FROM scoring.lead_totals")
if [[ $rows =~ ^([0-9]+)\ ([0-9]+)$ ]] && [ "${BASH_REMATCH[1]}" -gt 0 ] &&
	[ "${BASH_REMATCH[2]}" -gt 0 ]; then
	ok "lead_totals has compacted rows and deltas appended since ($rows) before the last compaction"
else
	not_ok "lead_totals has compacted rows and deltas appended since before the last compaction" \
		"got: $rows"
fi
views_agree "run 2"

# --- the loads after run 2 -----------------------------------------------

# the working day of each manager at NOW, and what they hold
held="SELECT m.manager_id,
			 scoring.working_day(m.time_zone, m.shift_start, m.shift_end, '$NOW') AS day,
			 count(l.lead_id) FILTER (WHERE l.status IN ('assigned', 'accepted')) AS open,
			 count(l.lead_id) FILTER (WHERE scoring.working_day(m.time_zone, m.shift_start,
					m.shift_end, l.assigned_at)
					= scoring.working_day(m.time_zone, m.shift_start, m.shift_end, '$NOW'))
				 AS day_leads,
			 coalesce(sum(l.routed_expected_profit) FILTER (
				 WHERE scoring.working_day(m.time_zone, m.shift_start, m.shift_end, l.assigned_at)
					   = scoring.working_day(m.time_zone, m.shift_start, m.shift_end, '$NOW')),
				 0) AS day_profit
		FROM scoring.manager m LEFT JOIN scoring.lead l ON l.assignee_id = m.manager_id
	   GROUP BY 1, 2"
# what each manager received: routings, and moves of open leads to them
received="SELECT r.manager_id, count(*) AS day_leads, sum(r.profit) AS day_profit
			FROM (SELECT a.manager_id, coalesce(l.expected_profit, g.expected_profit, 0) AS profit
					FROM scoring.assignment_log a
					LEFT JOIN scoring.lead l ON l.lead_id = a.lead_id
					LEFT JOIN public.gone g ON g.lead_id = a.lead_id
				   WHERE a.event = 'assigned'
				  UNION ALL
				  SELECT manager_id, profit FROM public.moves) r
		   GROUP BY 1"

is "open_leads and day of every manager are what the leads give" \
	"$(q "SELECT string_agg(manager_id || ':' || open_leads || ' ' || day, ', ' ORDER BY manager_id)
			FROM scoring.manager_load")" \
	"$(q "SELECT string_agg(manager_id || ':' || open || ' ' || day, ', ' ORDER BY manager_id)
			FROM ($held) h")"
is "day_leads and day_profit of every manager are what they received (routed + moved to them)" \
	"$(q "SELECT string_agg(manager_id || ':' || day_leads || '/' || day_profit, ', '
							ORDER BY manager_id) FROM scoring.manager_load")" \
	"$(q "SELECT string_agg(m.manager_id || ':' || coalesce(r.day_leads, 0) || '/'
							|| coalesce(r.day_profit, 0), ', ' ORDER BY m.manager_id)
			FROM scoring.manager m LEFT JOIN ($received) r USING (manager_id)")"
differ=$(q "SELECT count(*) FROM ($held) h LEFT JOIN ($received) r USING (manager_id)
			 WHERE (h.day_leads, h.day_profit)
				   IS DISTINCT FROM (coalesce(r.day_leads, 0), coalesce(r.day_profit, 0))")
echo "# $differ managers hold other leads of the day than they received (moves, deletes)"
is "rebuild_loads('$NOW') rewrites exactly those $differ managers" \
	"$(q "SELECT scoring.rebuild_loads('$NOW')")" "$differ"

# --- the last compaction -------------------------------------------------

folded=$(q "SELECT scoring.compact_totals()")
if [[ $folded =~ ^[0-9]+$ ]] && [ "$folded" -gt 0 ]; then
	ok "the last compact_totals() folds the deltas left ($folded)"
else
	not_ok "the last compact_totals() folds the deltas left" "got: $folded"
fi
is "no delta is left in lead_totals: one compacted row per bucket and assignee" \
	"$(q "SELECT count(*) FILTER (WHERE NOT compacted) || ' ' || (count(*) - count(DISTINCT (bucket, assignee_id)))
			FROM scoring.lead_totals")" "0 0"
is "after compaction the totals still count every lead once" \
	"$(q "SELECT (SELECT sum(leads) FROM scoring.lead_totals) = (SELECT count(*) FROM scoring.lead)")" t
views_agree "after compaction"
