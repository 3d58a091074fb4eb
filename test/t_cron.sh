#!/usr/bin/env bash
#
# test/t_cron.sh
#	scoring.schedule_jobs() with a real pg_cron, and the stale-claim job
#	really running (SPEC §4, §6).  An extra suite of test/test.sh, which
#	runs it with the private server in the environment (PGHOST, PGPORT,
#	PGUSER, PGDATABASE=postgres); that server preloads pg_cron with
#	cron.database_name = 'postgres' and cron.host = its socket dir.
#
#	In database postgres: CREATE EXTENSION pg_cron and scoring; a manager,
#	a pool company and a claim that expired a month ago; schedule_jobs()
#	returns the four job names and registers them in cron.job, twice
#	without adding jobs; the release job is then rescheduled to run every
#	second (every minute on pg_cron < 1.5, which has no second intervals)
#	and the suite waits until pg_cron has run it: the claim is gone and
#	claim_history has it as 'expired', exactly once.
#
#	Prints TAP-ish lines and, last, "N passed, N failed"; exits non-zero
#	when anything failed.  The jobs are unscheduled and the extensions it
#	created dropped at the end, also on failure or interruption.
#
# Run alone: PGHOST=... PGPORT=... PGUSER=postgres PGDATABASE=postgres bash test/t_cron.sh

set -uo pipefail

export PGDATABASE=${PGDATABASE:-postgres}
PG_BINDIR=${PG_BINDIR:-/usr/lib/postgresql/15/bin}
PSQL=$PG_BINDIR/psql
[ -x "$PSQL" ] || PSQL=psql

# shellcheck source-path=SCRIPTDIR source=tap.sh
. "$(dirname "${BASH_SOURCE[0]}")/tap.sh"
created_cron=0
created_scoring=0

# shellcheck disable=SC2317  # called by the EXIT trap
cleanup()
{
	local rc=$?
	trap - EXIT INT TERM
	if [ "$created_cron" = 1 ] || [ "$created_scoring" = 1 ]; then
		q "SELECT cron.unschedule(jobid) FROM cron.job WHERE jobname LIKE 'scoring-%'" >/dev/null 2>&1 || true
	fi
	if [ "$created_scoring" = 1 ]; then
		q "DROP EXTENSION scoring CASCADE" >/dev/null 2>&1 ||
			echo "# could not drop extension scoring"
	fi
	if [ "$created_cron" = 1 ]; then
		q "DROP EXTENSION pg_cron CASCADE" >/dev/null 2>&1 ||
			echo "# could not drop extension pg_cron"
	fi
	finish "$rc"
}
trap cleanup EXIT
trap 'not_ok "interrupted"; exit 130' INT TERM


echo "# pg_cron and scoring.schedule_jobs() in database $PGDATABASE"

# --- the extensions ------------------------------------------------------

if [ "$(q "SELECT count(*) FROM pg_extension WHERE extname = 'scoring'")" != 0 ]; then
	not_ok "scoring is not installed in $PGDATABASE yet" "drop it first: this suite creates and drops it"
	bail "scoring already installed"
fi
if [ "$(q "SELECT count(*) FROM pg_extension WHERE extname = 'pg_cron'")" = 0 ]; then
	if out=$(q "CREATE EXTENSION pg_cron"); then
		created_cron=1
		ok "CREATE EXTENSION pg_cron"
	else
		not_ok "CREATE EXTENSION pg_cron" "$out" \
			"needs shared_preload_libraries = 'pg_cron' and cron.database_name = '$PGDATABASE'"
		bail "no pg_cron"
	fi
else
	ok "pg_cron already installed"
fi
cron_version=$(q "SELECT extversion FROM pg_extension WHERE extname = 'pg_cron'")
echo "# pg_cron $cron_version"

if out=$(q "CREATE EXTENSION scoring"); then
	created_scoring=1
	ok "CREATE EXTENSION scoring"
else
	not_ok "CREATE EXTENSION scoring" "$out"
	bail "no scoring"
fi

# --- a claim that expired a month ago --------------------------------------

out=$(q "INSERT INTO scoring.manager (manager_id, login, tier) VALUES (1, 'm_a', 'junior');
		 INSERT INTO scoring.client (client_id, kind, name, pool_eligible)
		 VALUES (1, 'company', 'Svarka', true), (2, 'company', 'GenCo', true);
		 SELECT scoring.claim(1, 1, now() - interval '3 months') < now();
		 SELECT scoring.claim(2, 1, now()) > now()")
is "a claim that expired a month ago and a fresh one" "$out" "t
t"

# --- schedule_jobs() -------------------------------------------------------

jobs_before=$(q "SELECT count(*) FROM cron.job")
out=$(q "SELECT string_agg(j, ',' ORDER BY j) FROM scoring.schedule_jobs() AS j")
is "schedule_jobs() returns the four job names" "$out" \
	"scoring-compact-totals,scoring-dispatch,scoring-release-stale-claims,scoring-run-sequences"

out=$(q "SELECT jobname || ' | ' || schedule || ' | ' || command || ' | ' || database || ' | ' || active
		   FROM cron.job WHERE jobname LIKE 'scoring-%' ORDER BY jobname")
is "cron.job has them, in this database, active" "$out" \
"scoring-compact-totals | */10 * * * * | SELECT scoring.compact_totals() | $PGDATABASE | true
scoring-dispatch | * * * * * | SELECT scoring.dispatch() | $PGDATABASE | true
scoring-release-stale-claims | 17 3 * * * | SELECT scoring.release_stale_claims() | $PGDATABASE | true
scoring-run-sequences | * * * * * | SELECT scoring.run_sequences() | $PGDATABASE | true"

jobs_after=$(q "SELECT count(*) FROM cron.job")
is "four jobs more in cron.job" "$jobs_after" "$((jobs_before + 4))"
ids=$(q "SELECT string_agg(jobid::text, ',' ORDER BY jobname) FROM cron.job WHERE jobname LIKE 'scoring-%'")

out=$(q "SELECT count(*) FROM scoring.schedule_jobs()")
is "schedule_jobs() again returns the four names again" "$out" 4
is "schedule_jobs() again: the same number of jobs in cron.job" \
	"$(q "SELECT count(*) FROM cron.job")" "$jobs_after"
is "schedule_jobs() again: the same jobs (ids)" \
	"$(q "SELECT string_agg(jobid::text, ',' ORDER BY jobname) FROM cron.job WHERE jobname LIKE 'scoring-%'")" \
	"$ids"

# --- the release job really runs -------------------------------------------

release_id=$(q "SELECT jobid FROM cron.job WHERE jobname = 'scoring-release-stale-claims'")
schedule='1 seconds'
if ! out=$(q "SELECT cron.schedule('scoring-release-stale-claims', '$schedule', 'SELECT scoring.release_stale_claims()')"); then
	# pg_cron < 1.5 has no second intervals: every minute then
	echo "# pg_cron $cron_version refuses '$schedule' ($out): every minute instead"
	schedule='* * * * *'
	out=$(q "SELECT cron.schedule('scoring-release-stale-claims', '$schedule', 'SELECT scoring.release_stale_claims()')")
fi
is "cron.schedule() of the same name reschedules the same job" "$out" "$release_id"
is "the release job runs at '$schedule' now" \
	"$(q "SELECT schedule FROM cron.job WHERE jobid = $release_id")" "$schedule"

if [ "$schedule" = '1 seconds' ]; then
	timeout=20
else
	timeout=75
fi
echo "# waiting up to $timeout s for pg_cron to run job $release_id"
start=$SECONDS
state=
while [ $((SECONDS - start)) -lt "$timeout" ]; do
	state=$(q "SELECT (SELECT count(*) FROM scoring.claim WHERE client_id = 1) || ' ' ||
					  (SELECT count(*) FROM scoring.claim_history
						WHERE client_id = 1 AND manager_id = 1 AND reason = 'expired')")
	if [ "$state" = "0 1" ]; then
		break
	fi
	sleep 1
done
is "the job released the stale claim (claims left, history rows 'expired')" "$state" "0 1"
echo "# after $((SECONDS - start)) s"

out=$(q "SELECT count(*) > 0 FROM cron.job_run_details WHERE jobid = $release_id AND status = 'succeeded'")
is "cron.job_run_details has a successful run of the job" "$out" t
failures=$(q "SELECT coalesce(string_agg(DISTINCT return_message, '; '), '')
				FROM cron.job_run_details WHERE jobid = $release_id AND status = 'failed'")
is "no failed run of the job" "$failures" ""

# further runs release nothing more and write no duplicate
sleep 2
is "the fresh claim is kept" "$(q "SELECT count(*) FROM scoring.claim WHERE client_id = 2")" 1
is "the history has the expired claim once" \
	"$(q "SELECT count(*) FROM scoring.claim_history")" 1
is "released after it was claimed, not in the future" \
	"$(q "SELECT released_at > claimed_at AND released_at <= now() FROM scoring.claim_history")" t

# --- unscheduling ------------------------------------------------------------

out=$(q "SELECT count(*) FILTER (WHERE cron.unschedule(j.jobid))
		   FROM (SELECT jobid FROM cron.job WHERE jobname LIKE 'scoring-%' ORDER BY jobid) AS j")
is "the four jobs unschedule" "$out" 4
is "cron.job is back to what it was" "$(q "SELECT count(*) FROM cron.job")" "$jobs_before"
