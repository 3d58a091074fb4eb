#!/usr/bin/env bash
#
# test/demo/report.sh
#	Write the one-page HTML report of the BI views and print its path.
#
#	bash test/demo/report.sh [DIR]
#
# DIR (default: a new temp dir) receives report.html.  Connects with the
# environment (PGHOST, PGPORT, PGUSER, as test/demo.sh sets them) to the
# database $REPORT_DB (default scoring_demo).  The page is drawn by
# test/demo/report.sql (psql -At): three inline SVG charts and their
# tables; it fetches nothing from anywhere.

set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
PG_BINDIR=${PG_BINDIR:-/usr/lib/postgresql/15/bin}
PSQL=$PG_BINDIR/psql
[ -x "$PSQL" ] || PSQL=psql
db=${REPORT_DB:-scoring_demo}
# months are taken in the session time zone: the demo's, unless PGTZ is set
export PGTZ=${PGTZ:-Europe/Moscow}

dir=${1:-}
if [ -z "$dir" ]; then
	dir=$(mktemp -d "${TMPDIR:-/tmp}/scoring-report.XXXXXX")
fi
mkdir -p "$dir"
out=$(cd "$dir" && pwd)/report.html

"$PSQL" -X -q -At -v ON_ERROR_STOP=1 -d "$db" -f "$here/report.sql" >"$out.tmp"
mv "$out.tmp" "$out"
chmod a+r "$out"
echo "$out"
