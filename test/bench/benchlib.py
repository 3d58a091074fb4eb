"""
test/bench/benchlib.py
    Small helpers shared by the benchmark scripts: psql through a
    subprocess (no driver needed), medians, and the table printer.

The connection comes from the environment that run.sh exports (PGHOST,
PGPORT, PGUSER, PGDATABASE); PSQL names the psql binary.
"""
import os
import statistics
import subprocess
import sys
import time

BENCH_DIR = os.path.dirname(os.path.abspath(__file__))
PSQL = os.environ.get("PSQL", "psql")
SCALE = float(os.environ.get("SCALE", "1"))
RUNS = max(int(os.environ.get("RUNS", "3")), 1)


def log(msg):
    """A progress line on stderr, so that stdout holds only the tables."""
    print("  .. " + msg, file=sys.stderr, flush=True)


def psql(sql=None, file=None, variables=None, stdin=None, check=True):
    """Runs SQL (a string or a file) and returns psql's unaligned output."""
    cmd = [PSQL, "-X", "-q", "-At", "-v", "ON_ERROR_STOP=1"]
    for k, v in (variables or {}).items():
        cmd += ["-v", "%s=%s" % (k, v)]
    if file:
        cmd += ["-f", file]
    if sql:
        cmd += ["-c", sql]
    res = subprocess.run(cmd, input=stdin, capture_output=True, text=True)
    if check and res.returncode != 0:
        sys.stderr.write(res.stdout + res.stderr)
        raise SystemExit("psql failed: %s" % (sql or file))
    return res.stdout.strip()


def psql_value(sql):
    """The single value a query returns, as a float."""
    return float(psql(sql).splitlines()[-1])


def timed_sql(sql):
    """Seconds the server spent running sql (bench.seconds measures it
    with clock_timestamp() around EXECUTE, in one transaction)."""
    return psql_value("SELECT bench.seconds($bench$%s$bench$)" % sql)


def wall(fn, *args, **kwargs):
    """(seconds, result) of a Python call."""
    t0 = time.perf_counter()
    r = fn(*args, **kwargs)
    return time.perf_counter() - t0, r


def median(xs):
    return statistics.median(xs)


def spread(xs):
    """min..max of the runs, for the reader to judge the noise."""
    if len(xs) < 2:
        return ""
    return "%s..%s" % (fmt(min(xs)), fmt(max(xs)))


def fmt(x, digits=3):
    if x is None:
        return "-"
    if isinstance(x, str):
        return x
    if isinstance(x, int):
        return "{:,}".format(x)
    a = abs(x)
    if a >= 1000:
        return "{:,.0f}".format(x)
    if a >= 100:
        return "%.1f" % x
    if a >= 10:
        return "%.2f" % x
    if a >= 1:
        return "%.3f" % x
    return "%.*f" % (digits + 1, x)


def table(title, header, rows, notes=()):
    """Prints a plain-text table (also valid Markdown)."""
    cells = [[fmt(c) for c in r] for r in rows]
    numeric = [[not isinstance(c, str) for c in r] for r in rows]
    widths = [max(len(str(h)), *(len(r[i]) for r in cells)) if cells else len(h)
              for i, h in enumerate(header)]
    print()
    print("### " + title)
    print()
    line = "| " + " | ".join(h.ljust(w) for h, w in zip(header, widths)) + " |"
    print(line)
    print("|" + "|".join("-" * (w + 2) for w in widths) + "|")
    for r, isnum in zip(cells, numeric):
        print("| " + " | ".join(c.rjust(w) if n else c.ljust(w)
                                for c, w, n in zip(r, widths, isnum)) + " |")
    for n in notes:
        print()
        print(n)
    sys.stdout.flush()


def verdict(ok):
    return "met" if ok else "MISSED"
