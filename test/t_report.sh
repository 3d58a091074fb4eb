#!/usr/bin/env bash
#
# test/t_report.sh
#	The demo's HTML report (test/demo/report.sh) renders: an extra suite
#	of test/test.sh, run with the private server in the environment
#	(PGHOST, PGPORT, PGUSER, PGDATABASE, PG_BINDIR, SCORING_ROOT).
#
#	Creates its own database, loads a small demo (test/demo/generate.sql
#	with 14 months of 300 leads), trains as test/demo/demo.sql does and
#	plays test/demo/day.sql (managers, so plans have rows), writes the
#	report with test/demo/report.sh and checks it: three inline SVG charts
#	with bars, the tables, nothing fetched from anywhere (no http, no
#	src=, no <link>, no @import, no url()); then opens it in headless
#	Chromium (Debian `chromium`, installed when missing; the suite FAILS
#	when it cannot be): the DOM Chromium dumps has the title and the three
#	svg elements with their bars, and a 1200x2000 screenshot is a PNG
#	that is not blank.
#
#	Prints TAP-ish lines and, last, "N passed, N failed"; exits non-zero
#	when anything failed.  Drops its database at the end.
#
# Run alone: PGHOST=... PGPORT=... PGUSER=postgres bash test/t_report.sh
# (KEEP_REPORT=1 keeps the report dir and prints where it is.)

set -uo pipefail

root=${SCORING_ROOT:-$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)}
PG_BINDIR=${PG_BINDIR:-/usr/lib/postgresql/15/bin}
export PG_BINDIR
PSQL=$PG_BINDIR/psql
[ -x "$PSQL" ] || PSQL=psql
DB=scoring_report_$$
NOW='2026-11-15 12:00+03'

# shellcheck source-path=SCRIPTDIR source=tap.sh
. "$(dirname "${BASH_SOURCE[0]}")/tap.sh"
created_db=0
dir=$(mktemp -d "${TMPDIR:-/tmp}/scoring-t-report.XXXXXX")
chmod 755 "$dir"

# check DESCRIPTION COMMAND...: ok when the command succeeds
check()
{
	local what=$1
	shift
	if "$@"; then
		ok "$what"
	else
		not_ok "$what"
	fi
}

# shellcheck disable=SC2317  # called by the EXIT trap
cleanup()
{
	local rc=$?
	trap - EXIT INT TERM
	if [ "$created_db" = 1 ]; then
		drop_database "$DB"
	fi
	if [ "${KEEP_REPORT:-0}" = 1 ]; then
		echo "# report kept in $dir"
	else
		rm -rf "$dir"
	fi
	finish "$rc"
}
trap cleanup EXIT
trap 'not_ok "interrupted"; exit 130' INT TERM


echo "# the HTML report of the BI views, in database $DB"

# --- a small demo --------------------------------------------------------

start=$(date +%s)
create_database "$DB"
created_db=1
ok "CREATE DATABASE $DB"
export PGDATABASE=$DB
load()
{
	"$PSQL" -X -q -v ON_ERROR_STOP=1 -c "CREATE EXTENSION scoring" &&
		"$PSQL" -X -q -v ON_ERROR_STOP=1 -v months=14 -v leads_per_month=300 \
			-v now="$NOW" -f "$root/test/demo/generate.sql" &&
		"$PSQL" -X -q -v ON_ERROR_STOP=1 -v now="$NOW" -f "$root/test/demo/demo.sql" &&
		"$PSQL" -X -q -v ON_ERROR_STOP=1 -v day=2026-11-16 -f "$root/test/demo/day.sql"
}
if out=$(load 2>&1 >/dev/null); then
	ok "a small demo loaded, trained and played (day.sql) in $(($(date +%s) - start)) s"
else
	not_ok "a small demo loaded, trained and played" "$(printf '%s' "$out" | tail -n 5)"
	bail "no demo data"
fi

# --- the report ------------------------------------------------------------

if path=$(REPORT_DB=$DB bash "$root/test/demo/report.sh" "$dir" 2>&1); then
	ok "report.sh ran"
else
	not_ok "report.sh ran" "$path"
	bail "no report"
fi
is "report.sh prints the path of the report" "$path" "$dir/report.html"
html=$dir/report.html
check "report.html is not empty" test -s "$html"

is "three svg charts" "$(grep -o '<svg ' "$html" | wc -l)" 3
for id in chart-forecast chart-priority chart-attainment; do
	check "svg #$id is there" grep -q "<svg id=\"$id\"" "$html"
done
is "one bar of expected and one of won per month (15 months: 14 closed + the current one)" \
	"$(grep -o 'class="bar-expected"' "$html" | wc -l) $(grep -o 'class="bar-won"' "$html" | wc -l)" "15 15"
# the bars are the views' numbers: the tallest expected bar is the largest
# expected profit of the last 15 months, drawn 260 px high
top=$("$PSQL" -X -At -c "SET TimeZone = 'Europe/Moscow';
	SELECT to_char(max(expected_profit), 'FM999G999G999G999G990')
	  FROM (SELECT expected_profit, won_profit FROM scoring.forecast_monthly ORDER BY month DESC LIMIT 15) f
	HAVING max(expected_profit) >= max(won_profit)" | tail -n 1)
if [ -n "$top" ]; then
	check "the expected bar of the top month is 260 px high, and titled with its amount" \
		grep -qE "class=\"bar-expected\" x=\"[0-9.]+\" y=\"20.0\" width=\"[0-9.]+\" height=\"260.0\" fill=\"#4a7ebb\"><title>[0-9-]+ expected $top</title>" "$html"
else
	# a won bar is the tallest
	check "the tallest bar is 260 px high" grep -q 'height="260.0"' "$html"
fi
is "the priority chart: 5 segments per channel of the latest month" \
	"$(grep -o 'class="bar-priority"' "$html" | wc -l)" \
	"$("$PSQL" -X -At -c "SET TimeZone = 'Europe/Moscow';
		SELECT 5 * count(DISTINCT channel) FROM scoring.marketing_roi
		 WHERE month = (SELECT max(month) FROM scoring.marketing_roi WHERE leads > 0)" | tail -n 1)"
is "the attainment chart: a bar per manager of the latest month of manager_plan" \
	"$(grep -o 'class="bar-attainment"' "$html" | wc -l)" \
	"$("$PSQL" -X -At -c "SET TimeZone = 'Europe/Moscow';
		SELECT count(*) FROM scoring.manager_plan
		 WHERE month = (SELECT max(month) FROM scoring.manager_plan)" | tail -n 1)"
check "the attainment chart has bars (day.sql gave managers leads)" \
	grep -q 'class="bar-attainment"' "$html"
is "the three tables" "$(grep -oE '<table id="table-(forecast|priority|plan)"' "$html" | wc -l)" 3
is "no 'http' anywhere in the page" "$(grep -ci 'http' "$html")" 0
is "nothing loaded: no src=, href=, <link, @import, url(" \
	"$(grep -ciE 'src=|href=|<link|@import|url\(' "$html")" 0
is "no <script>" "$(grep -ci '<script' "$html")" 0

# --- Chromium --------------------------------------------------------------

chromium=$(command -v chromium || true)
if [ -z "$chromium" ]; then
	echo "# chromium is missing: installing it (apt)"
	# shellcheck source-path=SCRIPTDIR source=lib.sh
	. "$root/test/lib.sh"
	scoring_ensure_packages chromium >"$dir/apt.log" 2>&1 || tail -n 5 "$dir/apt.log"
	chromium=$(command -v chromium || true)
fi
if [ -z "$chromium" ]; then
	not_ok "chromium is installed" "apt-get install chromium failed; the report cannot be checked"
	bail "no chromium"
fi
ok "chromium is installed ($("$chromium" --version 2>/dev/null | head -n 1))"

profile=$(mktemp -d "${TMPDIR:-/tmp}/scoring-chromium.XXXXXX")
chrome()
{
	timeout 90 "$chromium" --headless --no-sandbox --disable-gpu --disable-quic \
		--no-first-run --disable-background-networking --disable-component-update \
		--disable-sync --disable-dev-shm-usage --user-data-dir="$profile" "$@"
}
dom=$dir/dom.html
if chrome --dump-dom "file://$html" >"$dom" 2>"$dir/chromium.log" && [ -s "$dom" ]; then
	ok "chromium --dump-dom"
else
	not_ok "chromium --dump-dom" "$(tail -n 5 "$dir/chromium.log")"
fi
check "the rendered DOM has the title" \
	grep -q '<title>Scoring: forecast, marketing and plans</title>' "$dom"
is "the rendered DOM has the three svg elements" \
	"$(grep -oE '<svg id="chart-(forecast|priority|attainment)"' "$dom" | sort | tr '\n' ' ')" \
	'<svg id="chart-attainment" <svg id="chart-forecast" <svg id="chart-priority" '
is "the rendered DOM has all the bars" \
	"$(grep -oE 'class="bar-[a-z]+"' "$dom" | wc -l)" "$(grep -oE 'class="bar-[a-z]+"' "$html" | wc -l)"

png=$dir/report.png
if chrome --screenshot="$png" --window-size=1200,2000 "file://$html" >>"$dir/chromium.log" 2>&1 && [ -s "$png" ]; then
	ok "chromium --screenshot writes a PNG"
else
	not_ok "chromium --screenshot writes a PNG" "$(tail -n 5 "$dir/chromium.log")"
fi
is "the screenshot is a 1200x2000 PNG" \
	"$(od -An -tx1 -N8 "$png" 2>/dev/null | tr -d ' \n'):$(od -An -tu1 -j16 -N8 "$png" 2>/dev/null | awk '{ print $3 * 256 + $4 "x" $7 * 256 + $8 }')" \
	"89504e470d0a1a0a:1200x2000"
# a blank page compresses to a few kB; bars, text and tables do not
size=$(stat -c %s "$png" 2>/dev/null || echo 0)
check "the screenshot is not blank ($size bytes > 30000)" test "$size" -gt 30000
rm -rf "$profile"
