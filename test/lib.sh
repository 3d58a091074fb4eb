# shellcheck shell=bash
#
# test/lib.sh
#	Shared helpers of test/test.sh and test/demo.sh: install what is
#	missing, build and install the extension, and run a private throwaway
#	PostgreSQL server.
#
# Source it; it defines functions and a few variables, runs nothing.
#
#	scoring_root			repository root (this file's parent's parent)
#	scoring_ensure_packages	apt-get install what is missing (sudo when not root)
#	scoring_build_install	make; make install
#	scoring_server_start	initdb + start a server in a fresh temp dir, export
#							PGHOST/PGPORT/PGUSER/PGDATABASE for it
#	scoring_server_stop		stop it and remove the temp dir (idempotent)
#
# The Debian cluster 15/main (port 5432) is never touched nor relied on:
# the private server listens only on a Unix socket inside its temp dir.
#
# PostgreSQL refuses to run as root, so when we are root the temp dir is
# given to the "postgres" OS user and initdb/pg_ctl run as that user; the
# tests themselves (psql, pg_regress, pg_prove) keep running as the caller
# and connect through the socket as the database superuser "postgres".

PG_MAJOR=${PG_MAJOR:-15}
PG_BINDIR=${PG_BINDIR:-/usr/lib/postgresql/$PG_MAJOR/bin}
PG_CONFIG=${PG_CONFIG:-$PG_BINDIR/pg_config}
export PG_CONFIG

scoring_root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)

# packages the tests and the demo need (Debian 12 names)
SCORING_PACKAGES=(
	build-essential
	"postgresql-$PG_MAJOR"
	"postgresql-server-dev-$PG_MAJOR"
	"postgresql-$PG_MAJOR-pgtap"
	libtap-parser-sourcehandler-pgtap-perl
	"postgresql-$PG_MAJOR-cron"
)

# Print a progress line
scoring_say()
{
	printf '==> %s\n' "$*"
}

# Print an error line on stderr
scoring_err()
{
	printf 'ERROR: %s\n' "$*" >&2
}

# Run a command as root: directly when we are root, through sudo otherwise
scoring_as_root()
{
	if [ "$(id -u)" -eq 0 ]; then
		"$@"
	elif command -v sudo >/dev/null 2>&1; then
		sudo "$@"
	else
		scoring_err "need root for: $* (run as root or install sudo)"
		return 1
	fi
}

# apt-get install the packages that are not installed yet (update once)
scoring_ensure_packages()
{
	local pkg missing=()

	for pkg in "${SCORING_PACKAGES[@]}" "$@"; do
		if [ "$(dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null)" != "install ok installed" ]; then
			missing+=("$pkg")
		fi
	done
	if [ "${#missing[@]}" -eq 0 ]; then
		return 0
	fi
	scoring_say "installing ${missing[*]}"
	scoring_as_root env DEBIAN_FRONTEND=noninteractive apt-get update -qq
	scoring_as_root env DEBIAN_FRONTEND=noninteractive \
		apt-get install -y -qq --no-install-recommends "${missing[@]}"
}

# make && make install, quietly; the output is printed when it fails.
# $1: file for the log (default: a temp file)
scoring_build_install()
{
	local log=${1:-$(mktemp)}

	scoring_say "building and installing the extension"
	if ! make -C "$scoring_root" PG_CONFIG="$PG_CONFIG" >"$log" 2>&1; then
		cat "$log" >&2
		scoring_err "make failed"
		return 1
	fi
	if ! scoring_as_root make -C "$scoring_root" PG_CONFIG="$PG_CONFIG" install >>"$log" 2>&1; then
		cat "$log" >&2
		scoring_err "make install failed"
		return 1
	fi
}

# Run a command as the owner of the private server (postgres when we are
# root, ourselves otherwise), from a directory that owner can read
scoring_as_pg_owner()
{
	if [ "$(id -u)" -eq 0 ]; then
		(cd / && runuser -u postgres -- "$@")
	else
		"$@"
	fi
}

# Is TCP port $1 in use on this machine (or its socket lock in /tmp)?
scoring_port_busy()
{
	local port=$1

	[ -e "/tmp/.s.PGSQL.$port.lock" ] && return 0
	[ -e "/var/run/postgresql/.s.PGSQL.$port.lock" ] && return 0
	if command -v ss >/dev/null 2>&1; then
		ss -Hltn "sport = :$port" 2>/dev/null | grep -q . && return 0
	fi
	return 1
}

# Start a private server.  Sets and exports SCORING_TMP (the temp dir),
# PGDATA, PGHOST (socket dir), PGPORT, PGUSER=postgres, PGDATABASE=postgres.
# Extra postgresql.conf lines may be given as arguments.
scoring_server_start()
{
	local port line

	if [ "$(id -u)" -eq 0 ]; then
		SCORING_TMP=$(mktemp -d /tmp/scoring-pg.XXXXXX)
		chown postgres: "$SCORING_TMP"
	else
		SCORING_TMP=$(mktemp -d "${TMPDIR:-/tmp}/scoring-pg.XXXXXX")
	fi
	export SCORING_TMP

	# any free 54xx; the socket lives in our own dir, so this only avoids
	# confusing people looking at `ss` or lock files
	port=5433
	while scoring_port_busy "$port" && [ "$port" -lt 5499 ]; do
		port=$((port + 1))
	done

	export PGDATA=$SCORING_TMP/data
	export PGHOST=$SCORING_TMP
	export PGPORT=$port
	export PGUSER=postgres
	export PGDATABASE=postgres
	unset PGPASSWORD PGSERVICE PGHOSTADDR

	if ! scoring_as_pg_owner "$PG_BINDIR/initdb" -D "$PGDATA" -U postgres \
		-A trust -E UTF8 --locale=C >"$SCORING_TMP/initdb.log" 2>&1; then
		cat "$SCORING_TMP/initdb.log" >&2
		scoring_err "initdb failed"
		return 1
	fi

	{
		echo "# scoring test server"
		echo "port = $port"
		echo "listen_addresses = ''"
		echo "unix_socket_directories = '$SCORING_TMP'"
		# scoring preloaded keeps client histories between leads
		# (src/history_cache.c); test/t_unloaded.sh runs without it
		echo "shared_preload_libraries = 'pg_cron,scoring'"
		echo "cron.database_name = 'postgres'"
		# pg_cron connects to run jobs: through our socket, not localhost
		echo "cron.host = '$SCORING_TMP'"
		echo "fsync = off"
		echo "synchronous_commit = off"
		echo "full_page_writes = off"
		echo "max_connections = 100"
		# the isolation spec client_cache prepares a transaction
		echo "max_prepared_transactions = 4"
		echo "log_min_messages = warning"
		for line in "$@"; do
			echo "$line"
		done
	} | scoring_as_pg_owner tee -a "$PGDATA/postgresql.conf" >/dev/null

	if ! scoring_as_pg_owner "$PG_BINDIR/pg_ctl" -D "$PGDATA" -l "$SCORING_TMP/server.log" \
		-w -t 60 start >"$SCORING_TMP/pg_ctl.log" 2>&1; then
		cat "$SCORING_TMP/pg_ctl.log" "$SCORING_TMP/server.log" >&2
		scoring_err "the private server did not start"
		return 1
	fi
}

# Stop the private server and remove its dir; safe to call twice, or when
# the start failed half way
scoring_server_stop()
{
	if [ -z "${SCORING_TMP:-}" ] || [ ! -d "$SCORING_TMP" ]; then
		return 0
	fi
	if [ -f "$SCORING_TMP/data/postmaster.pid" ]; then
		scoring_as_pg_owner "$PG_BINDIR/pg_ctl" -D "$SCORING_TMP/data" -m immediate \
			-w stop >/dev/null 2>&1 || true
	fi
	rm -rf "$SCORING_TMP"
	SCORING_TMP=
}

# psql that stops at the first error and prints no startup banner
scoring_psql()
{
	"$PG_BINDIR/psql" -X -v ON_ERROR_STOP=1 "$@"
}

# Stop the private server unless KEEP=1, then say how to reach it
scoring_bench_cleanup()
{
	if [ "${KEEP:-0}" = 1 ] && [ -n "${SCORING_TMP:-}" ]; then
		echo "server kept: PGHOST=$PGHOST PGPORT=$PGPORT PGUSER=$PGUSER (stop: pg_ctl -D $PGDATA stop)" >&2
		return
	fi
	scoring_server_stop
}

# For benchmarks: build, install, start a private server tuned for bulk
# loads (stopped on exit unless KEEP=1), and create database $1 with the
# extension; exports PGDATABASE.
scoring_bench_start()
{
	trap scoring_bench_cleanup EXIT
	scoring_build_install
	scoring_say "starting a private server"
	scoring_server_start "shared_buffers = '1GB'" "work_mem = '64MB'" \
		"maintenance_work_mem = '512MB'" "max_wal_size = '8GB'" \
		"checkpoint_timeout = '30min'" "autovacuum = off"
	scoring_say "server on $PGHOST port $PGPORT"
	"$PG_BINDIR/psql" -X -q -v ON_ERROR_STOP=1 -d postgres -c "CREATE DATABASE $1"
	export PGDATABASE=$1
	"$PG_BINDIR/psql" -X -q -v ON_ERROR_STOP=1 -c "CREATE EXTENSION scoring"
}
