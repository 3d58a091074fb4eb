#!/usr/bin/env bash
#
# test/t_history.sh
#	The client histories the history walk counts, under concurrent change,
#	with pgbench: an extra suite of test/test.sh, run with the private
#	server in the environment (PGHOST, PGPORT, PGUSER, PGDATABASE,
#	PG_BINDIR, SCORING_ROOT).
#
#	Each pgbench connection lives for the whole run, so its memo of the
#	leads it found visible (src/visible.c) lives that long too, while the
#	other connections insert, win, lose, edit and delete leads.  The
#	database has 20 clients with 30 leads each (January 2026, not
#	vacuumed: their pages are not all-visible) and, per client, a probe
#	lead on 2030-01-01 that nothing changes.  Six pgbench clients change
#	leads: each transaction takes client c's advisory lock and changes one
#	of c's leads (inserts one, wins or loses one, edits a column the walk
#	does not read, or deletes one).  Four more, which change nothing (so
#	their memos live for the whole run), check: under c's lock, what
#	explain() of c's probe walked (history.leads, and the wins from
#	history.win_rate = (wins + 1) / (leads + 2)) must equal a count of
#	c's leads, as every change to them is made under that lock.  Two
#	probers insert leads of clients 21-30 (20 leads each in January 2026,
#	some won), under the client's lock too, created now, the way a CRM
#	does, one per transaction: the server
#	preloads scoring, so its history comes from what the prober's backend
#	kept (src/history_cache.c), and its p_win must be what predict_lead()
#	computes from a fresh walk.  6 s.  Every update or delete makes the
#	probers walk again, so a second phase of 4 s runs them with two
#	inserters only, of leads of clients 21-30 under their lock: half of
#	them before the probes (January 2026), half after (clock_timestamp()),
#	some won.
#
#	Checks: pgbench ended without an aborted client or a failed
#	transaction, at least 300 checks and 100 probes ran, none disagreed,
#	the probers did use kept histories in the second phase, also taking
#	in the inserters' leads, and all 20 clients agree afterwards.  Prints TAP-ish lines and, last, "N passed,
#	N failed"; exits non-zero when anything failed.  Drops its database at
#	the end, also on failure or interruption.
#
# Run alone: PGHOST=... PGPORT=... PGUSER=postgres bash test/t_history.sh

set -uo pipefail

PG_BINDIR=${PG_BINDIR:-/usr/lib/postgresql/15/bin}
PSQL=$PG_BINDIR/psql
[ -x "$PSQL" ] || PSQL=psql
PGBENCH=$PG_BINDIR/pgbench
DB=scoring_history_$$
CLIENTS=6
THREADS=1
CHECKERS=4
PROBERS=2
SECONDS_RUN=6

# shellcheck source-path=SCRIPTDIR source=tap.sh
. "$(dirname "${BASH_SOURCE[0]}")/tap.sh"
created_db=0
checkers=
probers=
dir=$(mktemp -d "${TMPDIR:-/tmp}/scoring-t-history.XXXXXX")

# shellcheck disable=SC2317  # called by the EXIT trap
cleanup()
{
	local rc=$?
	trap - EXIT INT TERM
	stop_job "$checkers"
	stop_job "$probers"
	if [ "$created_db" = 1 ]; then
		drop_database "$DB"
	fi
	rm -rf "$dir"
	finish "$rc"
}
trap cleanup EXIT
trap 'not_ok "interrupted"; exit 130' INT TERM

echo "# pgbench load on the leads of 20 clients, histories checked, in database $DB"

require_pgbench

# --- the database --------------------------------------------------------

create_database "$DB"
created_db=1
ok "CREATE DATABASE $DB"
export PGDATABASE=$DB

out=$(q "CREATE EXTENSION scoring;
		 $(history_model_sql 30 10)
		 INSERT INTO scoring.client (client_id, kind)
		 SELECT c, 'company' FROM generate_series(1, 20) AS c;
		 INSERT INTO scoring.lead (client_id, created_at, status, brand, budget)
		 SELECT 1 + i % 20, timestamptz '2026-01-01 00:00+00' + i * interval '1 hour', 'draft', 'B', 1000
		   FROM generate_series(1, 600) AS i;
		 INSERT INTO scoring.lead (lead_id, client_id, created_at, status, brand, budget)
		 SELECT 100000 + c, c, '2030-01-01 00:00+00', 'draft', 'B', 1000
		   FROM generate_series(1, 20) AS c;

		 -- what the walk of client c's probe counted, as 'leads wins'
		 CREATE FUNCTION public.walked(c int) RETURNS text LANGUAGE sql AS \$\$
			SELECT l.value || ' ' || round((w.value::float8 * (l.value::int + 2) - 1)::numeric)
			  FROM scoring.explain(100000 + c) AS l, scoring.explain(100000 + c) AS w
			 WHERE l.feature = 'history.leads' AND w.feature = 'history.win_rate'
		 \$\$;
		 -- and what the table holds
		 CREATE FUNCTION public.truth(c int) RETURNS text LANGUAGE sql AS \$\$
			SELECT count(*) || ' ' ||
				   count(*) FILTER (WHERE status = 'won' AND closed_at <= '2030-01-01 00:00+00')
			  FROM scoring.lead WHERE client_id = c AND created_at < '2030-01-01 00:00+00'
		 \$\$;
		 CREATE TABLE public.checks (c int NOT NULL, walked text, truth text);
		 -- the probers' clients: no lead after theirs, no update or delete
		 INSERT INTO scoring.client (client_id, kind)
		 SELECT c, 'company' FROM generate_series(21, 30) AS c;
		 INSERT INTO scoring.lead (client_id, created_at, status, closed_at, brand, budget)
		 SELECT 21 + i % 10, timestamptz '2026-01-01 00:00+00' + i * interval '1 hour',
				CASE WHEN i % 3 = 0 THEN 'won' ELSE 'draft' END,
				CASE WHEN i % 3 = 0 THEN timestamptz '2026-02-01 00:00+00' END, 'B', 1000
		   FROM generate_series(1, 200) AS i;
		 CREATE TABLE public.probes (c int NOT NULL, ok boolean, preloaded boolean,
									 clients bigint, reused bigint, taken_in bigint,
									 topped_up bigint, walked bigint);
		 SELECT count(*) FROM scoring.lead;")
if [ "$out" = 820 ]; then
	ok "20 clients with 30 leads each and a probe lead each, 10 more with 20 leads"
else
	not_ok "20 clients with 30 leads each and a probe lead each, 10 more with 20 leads" "$out"
	bail "no setup"
fi
is "every client's walk agrees with its leads before the load" \
	"$(q "SELECT count(*) FROM generate_series(1, 20) AS c WHERE public.walked(c) = public.truth(c)")" 20

# --- the pgbench script --------------------------------------------------

# one of client c's leads other than the probe, which may be gone
pick="lead_id = (SELECT lead_id FROM scoring.lead WHERE client_id = :c AND lead_id < 100000
				  ORDER BY lead_id OFFSET :off LIMIT 1)"

cat >"$dir/change.sql" <<EOF
\\set c random(1, 20)
\\set op random(1, 4)
\\set off random(0, 35)
\\set won random(0, 1)
\\set hours random(0, 800)
BEGIN;
SELECT pg_advisory_xact_lock(:c);
INSERT INTO scoring.lead (client_id, created_at, status, brand, budget)
SELECT :c, timestamptz '2026-01-01 00:00+00' + :hours * interval '1 hour', 'draft', 'B', 1000
 WHERE :op = 1;
UPDATE scoring.lead
   SET status = CASE WHEN :won = 1 THEN 'won' ELSE 'lost' END,
	   closed_at = created_at + interval '1 day'
 WHERE :op = 2 AND $pick;
UPDATE scoring.lead SET refusal_reason = 'checked ' || :hours WHERE :op = 3 AND $pick;
DELETE FROM scoring.lead WHERE :op = 4 AND $pick;
COMMIT;
EOF

cat >"$dir/check.sql" <<'EOF'
\set c random(1, 20)
BEGIN;
SELECT pg_advisory_xact_lock(:c);
INSERT INTO public.checks SELECT :c, public.walked(:c), public.truth(:c);
COMMIT;
EOF

cat >"$dir/probe.sql" <<'EOF'
\set c random(21, 30)
BEGIN;
SELECT pg_advisory_xact_lock(:c);
INSERT INTO scoring.lead (client_id, status, brand, budget)
VALUES (:c, 'draft', 'B', 1000) RETURNING lead_id AS probe \gset
INSERT INTO public.probes
SELECT :c, l.p_win = scoring.predict_lead(l.lead_id, l.model_id), s.*
  FROM scoring.lead l, scoring.history_cache_stats() s WHERE l.lead_id = :probe;
COMMIT;
EOF

"$PGBENCH" -n -c "$PROBERS" -j 1 -T "$SECONDS_RUN" -f "$dir/probe.sql" >"$dir/probe.log" 2>&1 &
probers=$!
# the checkers change nothing, so their memos live for the whole run
log=$dir/run.log
clog=$dir/check.log
"$PGBENCH" -n -c "$CHECKERS" -j 1 -T "$SECONDS_RUN" -f "$dir/check.sql" >"$clog" 2>&1 &
checkers=$!
"$PGBENCH" -n -c "$CLIENTS" -j "$THREADS" -T "$SECONDS_RUN" --failures-detailed \
	--verbose-errors -f "$dir/change.sql" >"$log" 2>&1
rc=$?
crc=0
wait "$checkers" || crc=$?
checkers=
prc=0
wait "$probers" || prc=$?
probers=
processed=$(pgbench_field "$log" 'number of transactions actually processed')
nfailed=$(pgbench_field "$log" 'number of failed transactions')
aborted=$(cat "$log" "$clog" "$dir/probe.log" | grep -cE 'client [0-9]+ (script [0-9]+ )?aborted|[Rr]un was aborted')
echo "# ${processed:-?} changes in $SECONDS_RUN s, ${nfailed:-?} failed"
is "pgbench ended normally, no client aborted" "rc $rc $crc $prc, $aborted aborted" \
	"rc 0 0 0, 0 aborted"
is "no failed transaction" "${nfailed:-not reported} $(pgbench_field "$clog" 'number of failed transactions') $(pgbench_field "$dir/probe.log" 'number of failed transactions')" "0 0 0"

checks=$(q "SELECT count(*) FROM public.checks")
if [ -n "$checks" ] && [ "$checks" -ge 300 ]; then
	ok "at least 300 checks ran ($checks)"
else
	not_ok "at least 300 checks ran" "got: ${checks:-none}"
fi
echo "# $(q "SELECT count(*) FILTER (WHERE status = 'won') || ' won, ' ||
					count(*) FILTER (WHERE status = 'lost') || ' lost, ' ||
					count(*) FILTER (WHERE refusal_reason IS NOT NULL) || ' edited, ' ||
					count(*) || ' leads left'
			   FROM scoring.lead WHERE lead_id < 100000")"
wrong=$(q "SELECT count(*) FROM public.checks WHERE walked IS DISTINCT FROM truth")
if [ "$wrong" = 0 ]; then
	ok "every check under the client's lock: the walk agreed with the leads"
else
	not_ok "every check under the client's lock: the walk agreed with the leads" \
		"$wrong disagreed, e.g. (client: walked vs leads, as 'leads wins')" \
		"$(q "SELECT string_agg(c || ': ' || walked || ' vs ' || truth, ', ')
				FROM (SELECT * FROM public.checks WHERE walked IS DISTINCT FROM truth LIMIT 5) d")"
fi
# the second phase: inserts only
cat >"$dir/insert.sql" <<'EOF'
\set c random(21, 30)
\set later random(0, 1)
\set won random(0, 3)
\set hours random(0, 800)
BEGIN;
SELECT pg_advisory_xact_lock(:c);
INSERT INTO scoring.lead (client_id, created_at, status, closed_at, brand, budget)
SELECT :c, at, CASE WHEN :won = 0 THEN 'won' ELSE 'draft' END,
	   CASE WHEN :won = 0 THEN at END, 'B', 1000
  FROM (SELECT CASE WHEN :later = 1 THEN clock_timestamp()
					ELSE timestamptz '2026-01-01 00:00+00' + :hours * interval '1 hour' END) AS t(at);
COMMIT;
EOF
"$PGBENCH" -n -c "$PROBERS" -j 1 -T 4 -f "$dir/probe.sql" >"$dir/probe2.log" 2>&1 &
probers=$!
"$PGBENCH" -n -c 2 -j 1 -T 4 -f "$dir/insert.sql" >"$dir/insert.log" 2>&1
irc=$?
prc=0
wait "$probers" || prc=$?
probers=
is "second phase: pgbench ended normally, no failed transaction" \
	"rc $irc $prc, $(pgbench_field "$dir/insert.log" 'number of failed transactions') $(pgbench_field "$dir/probe2.log" 'number of failed transactions')" \
	"rc 0 0, 0 0"

probes=$(q "SELECT count(*) FROM public.probes")
if [ -n "$probes" ] && [ "$probes" -ge 100 ]; then
	ok "at least 100 probes ran ($probes)"
else
	not_ok "at least 100 probes ran" "got: ${probes:-none}"
fi
echo "# the probers' last counts (reused, taken in, topped up, walked): $(
	q "SELECT string_agg(format('%s %s %s %s', reused, taken_in, topped_up, walked), '; ')
		 FROM (SELECT * FROM public.probes
				ORDER BY reused + taken_in + topped_up + walked DESC LIMIT 2) l")"
is "every probe's p_win is what predict_lead() computes" \
	"$(q "SELECT count(*) FILTER (WHERE ok IS NOT TRUE) FROM public.probes")" 0
is "the probers used kept histories and took in others' leads, scoring being preloaded" \
	"$(q "SELECT bool_and(preloaded) AND max(reused) > 0 AND max(taken_in) > 0
				 AND max(walked) > 0
			FROM public.probes")" t
is "every client's walk agrees with its leads after the load" \
	"$(q "SELECT count(*) FROM generate_series(1, 20) AS c WHERE public.walked(c) = public.truth(c)")" 20
