#!/usr/bin/env bash
#
# test/bench/run.sh
#	Benchmarks of the lead-scoring part of the scoring extension.
#
#	test/bench/run.sh [quality|insert|train|all]	(default: all)
#
# Builds and installs the extension (make && make install), starts a
# private throwaway PostgreSQL server in a temp dir (as root the server runs
# as the "postgres" OS user through runuser; the socket lives in the temp
# dir, the port is BENCH_PORT, 55432 by default; the Debian cluster on 5432
# is never touched), runs the chosen benchmarks, each in a fresh database,
# prints their tables on stdout (progress on stderr), and stops the server.
#
#	quality	model quality on UCI Bank Marketing vs sklearn (quality.py)
#	insert	cost of the scoring trigger: bulk and pgbench (insert.py)
#	train	cost of scoring.train() on 1M leads vs sklearn (train.py)
#
# Environment:
#	SCALE=1		sizes and pgbench durations (0.1 for a quick run)
#	RUNS=3		runs per measurement; tables show medians
#	BENCH_PORT	port of the private server (default 55432)
#	KEEP=1		keep the server's temp dir (logs) after the run
#	PG_BINDIR	/usr/lib/postgresql/15/bin; PYTHON /usr/bin/python3
#
# The Python parts need Debian's python3-sklearn and python3-pandas (not a
# pyenv/virtualenv python), and insert's instruction counts valgrind; they
# are installed with apt when missing, with what the tests need (the server,
# its headers, the compiler: test/lib.sh).  Server settings favour
# repeatable CPU measurements over durability: fsync, synchronous_commit
# and full_page_writes off, autovacuum off (the benchmarks VACUUM where a
# real system's autovacuum would have), shared_buffers 1GB; everything
# else is the default (JIT included).  sklearn runs on one core
# (OMP_NUM_THREADS=1 ...), like a PostgreSQL backend.

set -euo pipefail

what=${1:-all}
case $what in
	quality | insert | train) benches=("$what") ;;
	all) benches=(quality insert train) ;;
	-h | --help | help)
		sed -n '2,34p' "$0" | sed 's/^# \{0,1\}//'
		exit 0
		;;
	*)
		echo "usage: $0 [quality|insert|train|all]" >&2
		exit 2
		;;
esac

BENCH_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$BENCH_DIR/../.." && pwd)
PG_BINDIR=${PG_BINDIR:-/usr/lib/postgresql/15/bin}
export PG_CONFIG=${PG_CONFIG:-$PG_BINDIR/pg_config}
export PSQL=$PG_BINDIR/psql
export PGBENCH=$PG_BINDIR/pgbench
PYTHON=${PYTHON:-/usr/bin/python3}
PORT=${BENCH_PORT:-55432}
export SCALE=${SCALE:-1}
export RUNS=${RUNS:-3}
# one core for numpy/scipy/sklearn, like one PostgreSQL backend; also keeps
# OpenMP from spinning against the server on a 2-core machine
export OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 MKL_NUM_THREADS=1
export PYTHONDONTWRITEBYTECODE=1

say()
{
	printf '==> %s\n' "$*" >&2
}

# scoring_as_root, scoring_as_pg_owner (the server's owner: postgres when
# we are root, as PostgreSQL refuses root), scoring_port_busy,
# scoring_ensure_packages
# shellcheck source-path=SCRIPTDIR source=../lib.sh
. "$BENCH_DIR/../lib.sh"

# ---------------------------------------------------------------- packages

# what test.sh installs (the server, its headers, the compiler), and the
# Python parts' sklearn and pandas; valgrind counts the instructions of
# single-row inserts (insert.py)
scoring_ensure_packages python3-sklearn python3-pandas valgrind >&2
for bin in "$PSQL" "$PGBENCH" "$PG_BINDIR/initdb" "$PG_BINDIR/pg_ctl"; do
	[ -x "$bin" ] || {
		echo "missing $bin (postgresql-15)" >&2
		exit 1
	}
done

# ---------------------------------------------------------------- build

# Others may be editing the tree: a failed build is retried a few times.
build_log=$(mktemp)
for attempt in 1 2 3 4 5; do
	if make -C "$ROOT" PG_CONFIG="$PG_CONFIG" >"$build_log" 2>&1 &&
		scoring_as_root make -C "$ROOT" PG_CONFIG="$PG_CONFIG" install >>"$build_log" 2>&1; then
		break
	fi
	if [ "$attempt" -eq 5 ]; then
		cat "$build_log" >&2
		echo "build failed" >&2
		exit 1
	fi
	say "build failed (attempt $attempt), retrying in 60 s"
	sleep 60
done
rm -f "$build_log"

# ---------------------------------------------------------------- server

TMP=$(mktemp -d /tmp/scoring-bench.XXXXXX)
if [ "$(id -u)" -eq 0 ]; then
	chown postgres: "$TMP"
fi
export PGHOST=$TMP PGPORT=$PORT PGUSER=postgres
# insert.py stops the server to count instructions in single-user mode
export BENCH_DATA=$TMP/data PG_BINDIR
if [ "$(id -u)" -eq 0 ]; then
	export AS_PG="runuser -u postgres --"
fi
unset PGPASSWORD PGSERVICE PGHOSTADDR PGDATABASE

stop_server()
{
	if [ -f "$TMP/data/postmaster.pid" ]; then
		scoring_as_pg_owner "$PG_BINDIR/pg_ctl" -D "$TMP/data" -m fast -w stop >/dev/null 2>&1 || true
	fi
	if [ "${KEEP:-0}" = 1 ]; then
		say "kept $TMP"
	else
		rm -rf "$TMP"
	fi
}
trap stop_server EXIT
trap 'exit 130' INT TERM

if scoring_port_busy "$PORT"; then
	echo "port $PORT is in use; set BENCH_PORT" >&2
	exit 1
fi

scoring_as_pg_owner "$PG_BINDIR/initdb" -D "$TMP/data" -U postgres -A trust -E UTF8 \
	--locale=C >"$TMP/initdb.log" 2>&1 || {
	cat "$TMP/initdb.log" >&2
	exit 1
}
cat <<EOF | scoring_as_pg_owner tee -a "$TMP/data/postgresql.conf" >/dev/null
# scoring benchmark server
port = $PORT
listen_addresses = ''
unix_socket_directories = '$TMP'
max_connections = 20
shared_buffers = 1GB
work_mem = 16MB
maintenance_work_mem = 256MB
max_wal_size = 8GB
checkpoint_timeout = 1h
fsync = off
synchronous_commit = off
full_page_writes = off
autovacuum = off
log_min_messages = warning
# kept client histories between single-row leads (src/history_cache.c)
shared_preload_libraries = 'scoring'
EOF
scoring_as_pg_owner "$PG_BINDIR/pg_ctl" -D "$TMP/data" -l "$TMP/server.log" -w -t 60 start \
	>/dev/null || {
	cat "$TMP/server.log" >&2
	exit 1
}

# ---------------------------------------------------------------- run

commit=$(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo unknown)
if [ -n "$(git -C "$ROOT" status --porcelain -- src 'sql/scoring--*' Makefile scoring.control 2>/dev/null)" ]; then
	commit="$commit + uncommitted changes in src/, sql/scoring--*"
fi
echo "# scoring benchmarks: $what"
echo
echo "- command: \`SCALE=$SCALE RUNS=$RUNS test/bench/run.sh $what\`"
echo "- when: $(date -u '+%Y-%m-%d %H:%M UTC'); code: $commit"
echo "- machine: $(getconf _NPROCESSORS_ONLN) cores, $(awk '/MemTotal/ {printf "%.0f GB", $2/1048576}' /proc/meminfo)," \
	"$("$PG_BINDIR/postgres" --version); load average at start: $(cut -d' ' -f1-3 /proc/loadavg)"

for b in "${benches[@]}"; do
	db="bench_$b"
	say "$b (SCALE=$SCALE, RUNS=$RUNS)"
	"$PSQL" -X -q -d postgres -c "CREATE DATABASE $db"
	PGDATABASE=$db "$PSQL" -X -q -v ON_ERROR_STOP=1 -f "$BENCH_DIR/common.sql"
	start=$(date +%s)
	(cd "$BENCH_DIR" && PGDATABASE=$db "$PYTHON" "$BENCH_DIR/$b.py")
	echo
	echo "($b: $(($(date +%s) - start)) s; load average after: $(cut -d' ' -f1-3 /proc/loadavg))"
done
