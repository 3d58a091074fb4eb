"""
test/bench/insert.py
    Benchmark 2: what scoring every lead on insert costs.

Bulk: NLEADS history leads (closed, won/lost; gen.sql) go in with one
INSERT ... SELECT into
  (a)  scoring.lead: the C trigger, an active model, priority bands;
  (b)  bench.twin_plain: CREATE TABLE (LIKE scoring.lead INCLUDING ALL),
       no trigger: it differs from (a) only by the triggers;
  (c)  bench.twin_plpgsql: (b) with a PL/pgSQL BEFORE INSERT trigger
       doing the same scoring work (plpgsql_trigger.sql; it produces the
       same p_win, profits, priority and flags as the C trigger).
Every run starts each table from the same state (insert_reset.sql: the
NSEED older leads, vacuumed); the order of the tables rotates between
runs.  The time is the INSERT statement on the server (bench.seconds).

Single rows: pgbench -n with pgbench_insert.sql (one lead with random
attributes per transaction) for SECONDS s, 1 and 2 clients, into
scoring.lead as 'draft' (scored) and as 'new' (scored and routed to 8
managers), and into the plain twin (b); runs interleaved, each starting
from the same NSEED + NLEADS scored leads, vacuumed (pgbench_reset.sql).

Instructions per single-row insert: tps on a shared 2-core machine moves
by a third from one run to the next, so the same single-row inserts are
also counted in instructions, which do not: with the server stopped,
postgres --single runs 1 and then 1 + NI statements of one 'draft' lead
each (insert_statements.sql, drawn like pgbench_insert.sql) under
valgrind's callgrind, from the pgbench_reset.sql state each time; the
difference over NI is what one more insert costs the backend, parsing,
planning and commit included.  Needs valgrind and BENCH_DATA (run.sh);
skipped without them.
"""
import collections
import os
import re
import shlex
import shutil
import subprocess
import tempfile

import benchlib as B

NCLIENTS = 14000
NSEED = max(int(50000 * B.SCALE), 1000)
NLEADS = max(int(200000 * B.SCALE), 1000)
SECONDS = max(int(round(20 * B.SCALE)), 2)
PGBENCH = os.environ.get("PGBENCH", "pgbench")
NI = max(int(1000 * B.SCALE), 100)

COLS = ("created_at, client_id, shop, channel, category, brand, budget, "
        "features, status, closed_at, won_profit")

BULK = [
    ("(a) scoring.lead, C trigger", "scoring.lead"),
    ("(b) plain twin: LIKE … INCLUDING ALL", "bench.twin_plain"),
    ("(c) twin + PL/pgSQL trigger", "bench.twin_plpgsql"),
]
# (name, table, status: 1 'draft', 2 'new')
SINGLE = [
    ("scoring.lead, 'draft': scored", "scoring.lead", 1),
    ("scoring.lead, 'new': scored + routed", "scoring.lead", 2),
    ("(b) plain twin", "bench.twin_plain", 2),
]


def bulk_run(tbl):
    B.psql(file=os.path.join(B.BENCH_DIR, "insert_reset.sql"),
           variables={"tbl": tbl})
    return B.timed_sql("INSERT INTO %s (%s) SELECT %s FROM bench.src_main"
                       % (tbl, COLS, COLS))


def pgbench(tbl, st, clients):
    cmd = [PGBENCH, "-n", "-f", os.path.join(B.BENCH_DIR, "pgbench_insert.sql"),
           "-D", "tbl=" + tbl, "-D", "st=%d" % st,
           "-c", str(clients), "-j", str(clients),
           "-T", str(SECONDS)]
    res = subprocess.run(cmd, capture_output=True, text=True)
    m = re.search(r"tps = ([0-9.]+) \(without initial connection time\)",
                  res.stdout)
    failed = re.search(r"number of failed transactions: (\d+)", res.stdout)
    if res.returncode != 0 or not m or (failed and int(failed.group(1))):
        raise SystemExit("pgbench failed:\n" + res.stdout + res.stderr)
    return float(m.group(1))


def check_same_scores():
    """The PL/pgSQL twin must compute what the C trigger computes."""
    out = B.psql(
        "SELECT count(*), count(*) FILTER (WHERE abs(a.p_win - b.p_win) > 1e-12"
        " OR a.expected_profit IS DISTINCT FROM b.expected_profit"
        " OR a.potential_profit IS DISTINCT FROM b.potential_profit"
        " OR a.forecast_profit IS DISTINCT FROM b.forecast_profit"
        " OR a.ltv_uplift IS DISTINCT FROM b.ltv_uplift"
        " OR a.priority IS DISTINCT FROM b.priority"
        " OR a.score_flags IS DISTINCT FROM b.score_flags"
        " OR a.model_id IS DISTINCT FROM b.model_id)"
        " FROM scoring.lead a JOIN bench.twin_plpgsql b USING (lead_id)")
    n, diff = [int(x) for x in out.split("|")]
    B.log("PL/pgSQL twin vs C trigger: %d leads compared, %d differ" % (n, diff))
    if diff:
        raise SystemExit("the PL/pgSQL twin does not score like the C trigger")
    return n


def main():
    B.log("insert: %d clients, %d seed leads, %d leads per bulk run, "
          "pgbench %d s" % (NCLIENTS, NSEED, NLEADS, SECONDS))
    B.psql(file=os.path.join(B.BENCH_DIR, "gen.sql"))
    B.psql(file=os.path.join(B.BENCH_DIR, "insert_setup.sql"),
           variables={"nclients": NCLIENTS, "nseed": NSEED, "nleads": NLEADS})
    model = B.psql("SELECT format('model %s: %s leads, %s coefficients, "
                   "holdout AUC %s', model_id, n_rows,"
                   " (SELECT count(*) FROM jsonb_object_keys(weights)),"
                   " round((metrics->'holdout'->>'auc')::numeric, 3))"
                   " FROM scoring.model WHERE active")

    # bulk INSERT ... SELECT
    times = {t: [] for _, t in BULK}
    for r in range(B.RUNS):
        order = BULK[r % len(BULK):] + BULK[:r % len(BULK)]
        for name, tbl in order:
            s = bulk_run(tbl)
            times[tbl].append(s)
            B.log("run %d %s: %.3f s" % (r + 1, tbl, s))
    compared = check_same_scores()

    med = {t: B.median(v) for t, v in times.items()}
    plain = med["bench.twin_plain"]
    rows = []
    for name, tbl in BULK:
        m = med[tbl]
        rows.append([name, m, NLEADS / m, 1e6 * m / NLEADS, plain / m,
                     B.spread(times[tbl])])
    c, pl = med["scoring.lead"], med["bench.twin_plpgsql"]
    B.table(
        "Insert: one INSERT … SELECT of %s closed leads (median of %d runs)"
        % (B.fmt(NLEADS), B.RUNS),
        ["table", "s", "rows/s", "µs/row", "speed vs (b)", "runs min..max s"],
        rows,
        notes=[
            "%s; %s clients; every run starts from %s older leads.  The "
            "PL/pgSQL trigger's output equals the C trigger's on all %s "
            "leads of the last run (p_win, profits, priority, flags, model)."
            % (model, B.fmt(NCLIENTS), B.fmt(NSEED), B.fmt(compared)),
            "Scoring cost per lead (a - b): C %.1f µs, PL/pgSQL (c - b) "
            "%.1f µs." % (1e6 * (c - plain) / NLEADS,
                          1e6 * (pl - plain) / NLEADS),
            "Targets: C >= 0.5x the plain twin (b): %s (%.2fx); C >= 5x "
            "PL/pgSQL: %s (%.2fx)." % (
                B.verdict(plain / c >= 0.5), plain / c,
                B.verdict(pl / c >= 5), pl / c)])

    # single-row inserts with pgbench, each run from the same state
    B.psql("CREATE TABLE bench.lead_state AS SELECT * FROM scoring.lead")
    tps = {(n, c): [] for n, _, _ in SINGLE for c in (1, 2)}
    n_state = int(B.psql_value("SELECT max(lead_id) FROM bench.lead_state"))
    routed = collections.Counter()
    for r in range(B.RUNS):
        for clients in (1, 2):
            order = SINGLE[r % len(SINGLE):] + SINGLE[:r % len(SINGLE)]
            for name, tbl, st in order:
                B.psql(file=os.path.join(B.BENCH_DIR, "pgbench_reset.sql"),
                       variables={"tbl": tbl})
                v = pgbench(tbl, st, clients)
                tps[(name, clients)].append(v)
                if tbl == "scoring.lead" and st == 2:
                    for line in B.psql(
                            "SELECT status, count(*) FROM scoring.lead"
                            " WHERE lead_id > %d GROUP BY status" % n_state
                            ).splitlines():
                        k, n = line.split("|")
                        routed[k] += int(n)
                B.log("run %d, %d client(s), %s: %.0f tps" % (
                    r + 1, clients, name, v))
    rows = []
    verdicts = []
    for clients in (1, 2):
        base_runs = tps[(SINGLE[2][0], clients)]
        base = B.median(base_runs)
        for name, tbl, st in SINGLE:
            v = tps[(name, clients)]
            paired = [a / b for a, b in zip(v, base_runs)]
            rows.append([clients, name, B.median(v), B.median(v) / base,
                         B.median(paired), 1e6 / B.median(v) * clients,
                         B.spread(v)])
        draft = B.median(tps[(SINGLE[0][0], clients)])
        new = B.median(tps[(SINGLE[1][0], clients)])
        verdicts.append("%d client%s: %s (%.2fx; 'new' with routing %.2fx)" % (
            clients, "" if clients == 1 else "s",
            B.verdict(draft / base >= 0.8), draft / base, new / base))
    B.table(
        "Single-row inserts: pgbench -n, %d s per run, median of %d runs"
        % (SECONDS, B.RUNS),
        ["clients", "table", "tps", "vs (b)", "vs (b), paired runs",
         "µs/insert", "runs min..max"],
        rows,
        notes=["One lead per transaction (pgbench_insert.sql); 'draft' "
               "leads are scored only, 'new' ones are also routed to the 8 "
               "managers on duty (%s).  Every run starts from the same %s "
               "leads (pgbench_reset.sql).  synchronous_commit = off: the "
               "figures are CPU cost, not fsync; µs/insert is clients / tps; "
               "'paired runs' is the median of the ratios of runs made one "
               "after the other." % (
                   ", ".join("%s %s" % (k, B.fmt(v))
                             for k, v in sorted(routed.items())),
                   B.fmt(n_state)),
               "Target: scoring.lead >= 0.8x the plain twin's tps (the "
               "scoring alone, 'draft'): " + "; ".join(verdicts) + "."])
    instruction_counts()


def server(action):
    """Stops or starts the benchmark's server (run.sh's data directory)."""
    cmd = shlex.split(os.environ.get("AS_PG", "")) + [
        os.path.join(os.environ["PG_BINDIR"], "pg_ctl"), "-D",
        os.environ["BENCH_DATA"], "-w", "-t", "60"]
    if action == "start":
        cmd += ["-l", os.path.join(os.environ["BENCH_DATA"], "..", "server.log")]
    subprocess.run(cmd + [action], check=True, stdout=subprocess.DEVNULL, cwd="/")


def instructions(tbl, n):
    """Instructions postgres --single runs for n single-row inserts into
    tbl, from the pgbench_reset.sql state; the server is left running."""
    B.psql(file=os.path.join(B.BENCH_DIR, "pgbench_reset.sql"),
           variables={"tbl": tbl})
    with tempfile.TemporaryFile("w+") as stmts:
        stmts.write(B.psql(file=os.path.join(B.BENCH_DIR, "insert_statements.sql"),
                           variables={"tbl": tbl, "n": n, "seed": 0.5}))
        stmts.write("\n")
        stmts.seek(0)
        server("stop")
        try:
            res = subprocess.run(
                shlex.split(os.environ.get("AS_PG", "")) +
                ["valgrind", "--tool=callgrind", "--callgrind-out-file=/dev/null",
                 os.path.join(os.environ["PG_BINDIR"], "postgres"), "--single",
                 "-D", os.environ["BENCH_DATA"], os.environ["PGDATABASE"]],
                stdin=stmts, capture_output=True, text=True, cwd="/")
        finally:
            server("start")
    m = re.search(r"refs:\s+([\d,]+)", res.stderr)
    if res.returncode != 0 or not m or "ERROR:" in res.stdout + res.stderr:
        raise SystemExit("postgres --single failed:\n" + res.stdout[-2000:]
                         + res.stderr[-2000:])
    return int(m.group(1).replace(",", ""))


def instruction_counts():
    """The instructions table, or a log line saying why there is none."""
    if not shutil.which("valgrind") or "BENCH_DATA" not in os.environ:
        B.log("instructions per insert: skipped (needs valgrind and run.sh)")
        return
    tables = [("(b) plain twin", "bench.twin_plain"),
              ("scoring.lead, 'draft': scored", "scoring.lead")]
    per = {}
    for name, tbl in tables:
        first = instructions(tbl, 1)
        per[tbl] = (instructions(tbl, 1 + NI) - first) / NI
        B.log("instructions, %s: %.0f per insert" % (tbl, per[tbl]))
    base = per["bench.twin_plain"]
    B.table(
        "Single-row inserts: instructions per insert (callgrind, %s "
        "statements)" % B.fmt(NI),
        ["table", "instructions", "vs (b)", "(b) / this"],
        [[name, per[tbl], per[tbl] / base, base / per[tbl]]
         for name, tbl in tables],
        notes=["postgres --single, one 'draft' lead per statement "
               "(insert_statements.sql), from the same state as the pgbench "
               "runs; the count of 1 + %d statements less that of 1 "
               "statement, over %d: parsing, planning, the triggers and the "
               "commit of one more insert, without the client and its round "
               "trip.  '(b) / this' is the tps ratio the same work would "
               "give if the backend's CPU were all of a transaction's time."
               % (NI, NI)])


if __name__ == "__main__":
    main()
