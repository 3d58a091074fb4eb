#!/usr/bin/env bash
#
# test/demo.sh
#	Run the demo: `bash test/demo.sh`.
#
# Installs what is missing, builds and installs the extension, starts a
# private throwaway server (test/lib.sh), creates the database scoring_demo
# with the extension, loads ~14 months of leads from test/demo/generate.sql,
# then runs test/demo/demo.sql: train on the 12 months before the current
# month, rescore, and the report a head of sales looks at.
#
# The server lives only as long as the demo, unless KEEP=1: then it is left
# running and the script prints how to connect and how to stop it.
#
# Environment (all optional):
#	KEEP=1				keep the server and the data
#	MONTHS=14			closed months of history
#	LEADS_PER_MONTH=4000
#	SEED=0.42			setseed() of the generator
#	NOW='2026-11-15 12:00+03'	the demo's "now" (never the clock)
#	DAY=2026-11-16			the working day simulated after the report

# shellcheck disable=SC2119  # lib.sh functions take optional arguments
set -euo pipefail

# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$scoring_root"

KEEP=${KEEP:-0}
MONTHS=${MONTHS:-14}
LEADS_PER_MONTH=${LEADS_PER_MONTH:-4000}
SEED=${SEED:-0.42}
NOW=${NOW:-2026-11-15 12:00+03}
DB=scoring_demo

# shellcheck disable=SC2317  # called by the EXIT trap
cleanup()
{
	local rc=$?

	if [ -z "${SCORING_TMP:-}" ]; then
		return
	fi
	if [ "$rc" -ne 0 ] && [ -f "$SCORING_TMP/server.log" ]; then
		echo "----- last lines of the server log -----" >&2
		tail -n 30 "$SCORING_TMP/server.log" >&2
	fi
	if [ "$KEEP" = 1 ] && [ -f "$SCORING_TMP/data/postmaster.pid" ]; then
		echo
		echo "The server is kept (KEEP=1). Connect with:"
		echo "  $PG_BINDIR/psql -h $PGHOST -p $PGPORT -U $PGUSER $DB"
		echo "Stop it and remove its files with:"
		if [ "$(id -u)" -eq 0 ]; then
			echo "  runuser -u postgres -- $PG_BINDIR/pg_ctl -D $PGDATA stop && rm -rf $SCORING_TMP"
		else
			echo "  $PG_BINDIR/pg_ctl -D $PGDATA stop && rm -rf $SCORING_TMP"
		fi
	else
		scoring_server_stop
	fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

scoring_say "checking packages"
scoring_ensure_packages

scoring_build_install

scoring_say "starting a private server"
scoring_server_start

scoring_psql -q -d postgres -c "CREATE DATABASE $DB"
scoring_psql -q -d "$DB" -c "CREATE EXTENSION scoring"

scoring_say "generating demo data: $MONTHS months of history + the current month," \
	"$LEADS_PER_MONTH leads a month"
start=$(date +%s)
scoring_psql -q -d "$DB" -v months="$MONTHS" -v leads_per_month="$LEADS_PER_MONTH" \
	-v seed="$SEED" -v now="$NOW" -f test/demo/generate.sql
scoring_say "loaded in $(($(date +%s) - start)) s"

scoring_say "training, rescoring, report"
scoring_psql -q -d "$DB" -v now="$NOW" -f test/demo/demo.sql

scoring_say "a working day: routing, forecasts, plans, automation, the free pool"
scoring_psql -q -d "$DB" -v day="${DAY:-2026-11-16}" -f test/demo/day.sql

scoring_say "the HTML report (forecast, priority mix, plans):"
bash test/demo/report.sh "${REPORT_DIR:-}"
