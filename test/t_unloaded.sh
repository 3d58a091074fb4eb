#!/usr/bin/env bash
#
# test/t_unloaded.sh
#	The extension loaded on first use, not preloaded: an extra suite of
#	test/test.sh.  The suites' server preloads scoring (test/lib.sh), so
#	this one starts a private server of its own with pg_cron alone in
#	shared_preload_libraries, on another port, and stops it at the end.
#
#	Without the shared memory there are no kept client histories
#	(src/history_cache.c): history_cache_stats() says so, and every
#	single-row lead walks its client's history, as predict_lead() does.
#	Client 7 gets 30 leads one transaction at a time, some won, one
#	inserted in replica role (the trigger that publishes such leads
#	finds no shared memory either) and one in a transaction that also
#	inserts a lead ON CONFLICT DO NOTHING.
#
#	Checks: the server starts without scoring preloaded, CREATE EXTENSION
#	works, history_cache_stats() reports no shared memory and no history
#	kept, every lead's p_win is predict_lead()'s, the last lead counted
#	all the earlier ones, and the server is still up.  Prints TAP-ish
#	lines and, last, "N passed, N failed".
#
# Run alone: bash test/t_unloaded.sh (needs the extension installed)

set -uo pipefail

# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
# shellcheck source-path=SCRIPTDIR source=tap.sh
. "$(dirname "${BASH_SOURCE[0]}")/tap.sh"
PSQL=$PG_BINDIR/psql

# shellcheck disable=SC2317  # called by the EXIT trap
cleanup()
{
	local rc=$?
	trap - EXIT INT TERM
	scoring_server_stop
	finish "$rc"
}
trap cleanup EXIT
trap 'not_ok "interrupted"; exit 130' INT TERM

echo "# scoring loaded on first use, on a private server of its own"

if scoring_server_start "shared_preload_libraries = 'pg_cron'" >/dev/null 2>&1; then
	ok "a server without scoring in shared_preload_libraries starts"
else
	not_ok "a server without scoring in shared_preload_libraries starts"
	bail "no server"
fi
is "shared_preload_libraries" "$(q "SHOW shared_preload_libraries")" "pg_cron"

out=$(q "CREATE EXTENSION scoring;
		 $(history_model_sql 10 5)
		 INSERT INTO scoring.client (client_id, kind) VALUES (7, 'company');
		 SELECT preloaded FROM scoring.history_cache_stats();")
is "CREATE EXTENSION; history_cache_stats() finds no shared memory" "$out" "f"

# one session, one transaction per lead, as a CRM inserts them
{
	for i in $(seq 1 26); do
		if [ $((i % 4)) = 0 ]; then
			echo "INSERT INTO scoring.lead (client_id, status, closed_at, brand, budget)
				  VALUES (7, 'won', now(), 'B', 1000);"
		else
			echo "INSERT INTO scoring.lead (client_id, status, brand, budget)
				  VALUES (7, 'draft', 'B', 1000);"
		fi
	done
	echo "SET session_replication_role = replica;"
	echo "INSERT INTO scoring.lead (client_id, status, brand, budget) VALUES (7, 'draft', 'B', 1000);"
	echo "RESET session_replication_role;"
	echo "BEGIN;"
	echo "INSERT INTO scoring.lead (client_id, status, brand, budget) VALUES (7, 'draft', 'B', 1000);"
	echo "INSERT INTO scoring.lead (lead_id, client_id, status, brand, budget)
		  VALUES (1, 7, 'draft', 'B', 1000) ON CONFLICT (lead_id) DO NOTHING;"
	echo "COMMIT;"
	echo "INSERT INTO scoring.lead (client_id, status, brand, budget) VALUES (7, 'draft', 'B', 1000);"
	echo "INSERT INTO scoring.lead (client_id, status, brand, budget) VALUES (7, 'draft', 'B', 1000);"
	echo "SELECT clients, reused, taken_in, topped_up, walked FROM scoring.history_cache_stats();"
} >"$SCORING_TMP/leads.sql"
out=$("$PSQL" -X -q -At -v ON_ERROR_STOP=1 -f "$SCORING_TMP/leads.sql" 2>&1)
is "30 single-row leads: no history kept or reused" "$out" "0|0|0|0|0"

is "30 leads of client 7" "$(q "SELECT count(*) FROM scoring.lead WHERE client_id = 7")" 30
is "every scored lead's p_win is predict_lead()'s, from a fresh walk" \
	"$(q "SELECT count(*) FILTER (WHERE p_win = scoring.predict_lead(lead_id, model_id))
			 || ' of ' || count(*)
			FROM scoring.lead WHERE model_id IS NOT NULL")" "29 of 29"
# history.win_rate = (wins + 1) / (leads + 2) = 7 / 31, as explain() prints it
is "the last lead counted the 29 before it, 6 of them won" \
	"$(q "SELECT string_agg(value, ' ' ORDER BY feature)
			FROM scoring.explain((SELECT max(lead_id) FROM scoring.lead))
		   WHERE feature IN ('history.leads', 'history.win_rate')")" \
	"29 0.225806"
is "the server is still up" "$(q "SELECT 1")" 1
