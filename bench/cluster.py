#!/usr/bin/env python3
"""Cluster benchmark (issue 4): Peedy as separate services on one PostgreSQL.

Starts its own PostgreSQL (temp dir, free port, pg_stat_statements loaded),
then for 1 and then 2 worker processes, each next to one web process, on a
fresh database: uploads the shared corpus COPIES times from CLIENTS
concurrent clients (3 files per request, callbacks to a local receiver) and
measures
  - documents per second end to end (first upload to last callback);
  - CPU per document: all peedy processes summed, and PostgreSQL's;
  - database round trips per document: pg_stat_statements `calls` (BEGIN and
    COMMIT included) and pg_stat_database `xact_commit`, with the top
    statements by calls per document;
  - WAL written and database growth per document.
If the binary has `--blob-store`, every run is done with `database` and with
`dir` (all nodes share one --data-dir either way). A pgbench run on the same
PostgreSQL at the end gives a reference statement rate for this machine.

Run from the repository root:   python3 bench/cluster.py
Environment: PEEDY_BIN (default: builds target/release/peedy), COPIES
(default 40), CLIENTS (default 8), WORKERS (default "1,2").
Only the Python standard library is used. Results go to stdout and to
bench/out/cluster-results.md. Everything started is stopped and its temp
dirs removed at the end, also on failure.
"""

import json
import os
import pwd
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import service as S  # noqa: E402  (the upload client and callback receiver)

PG_BIN = "/usr/lib/postgresql/15/bin"
TOP_STATEMENTS = 12


def pg_tool(name):
    path = os.path.join(PG_BIN, name)
    return path if os.path.exists(path) else shutil.which(name) or name


def as_postgres(cmd):
    """PostgreSQL refuses to run as root: drop to the postgres user then."""
    return ["runuser", "-u", "postgres", "--", *cmd] if os.geteuid() == 0 else cmd


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Postgres:
    def __init__(self):
        self.dir = tempfile.mkdtemp(prefix="peedy-cluster-pg-")
        if os.geteuid() == 0:
            pw = pwd.getpwnam("postgres")
            os.chown(self.dir, pw.pw_uid, pw.pw_gid)
        self.data = os.path.join(self.dir, "data")
        self.port = free_port()
        self.started = False

    def start(self):
        subprocess.run(as_postgres([pg_tool("initdb"), "-D", self.data, "-U", "postgres", "--auth=trust", "-E", "UTF8"]),
                       check=True, stdout=subprocess.DEVNULL)
        opts = (f"-p {self.port} -k {self.dir} -c listen_addresses=127.0.0.1 -c max_connections=200 "
                "-c shared_preload_libraries=pg_stat_statements -c pg_stat_statements.track_utility=on")
        subprocess.run(as_postgres([pg_tool("pg_ctl"), "-D", self.data, "-l", os.path.join(self.dir, "log"), "-w",
                                    "-o", opts, "start"]), check=True, stdout=subprocess.DEVNULL)
        self.started = True
        self.sql("postgres", "CREATE EXTENSION pg_stat_statements")

    def stop(self):
        if self.started:
            subprocess.run(as_postgres([pg_tool("pg_ctl"), "-D", self.data, "-m", "fast", "-w", "stop"]),
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        shutil.rmtree(self.dir, ignore_errors=True)

    def url(self, db):
        return f"postgres://postgres@127.0.0.1:{self.port}/{db}"

    def sql(self, db, query):
        """Rows of one statement, as lists of strings (psql unaligned)."""
        out = subprocess.run(["psql", "-h", "127.0.0.1", "-p", str(self.port), "-U", "postgres", "-d", db,
                              "-XAtq", "-F", "\t", "-c", query], check=True, capture_output=True, text=True).stdout
        return [line.split("\t") for line in out.splitlines() if line]

    def one(self, db, query):
        return self.sql(db, query)[0][0]

    def cpu_secs(self):
        """CPU of the postmaster, its live children, and children that exited."""
        pid = int(open(os.path.join(self.data, "postmaster.pid")).readline())
        f = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
        own = sum(int(x) for x in f[11:15]) / os.sysconf("SC_CLK_TCK")  # utime stime cutime cstime
        return own + sum(S.cpu_secs(c) for c in children_of(pid))


def children_of(pid):
    found = []
    for entry in os.listdir("/proc"):
        try:
            if entry.isdigit() and int(open(f"/proc/{entry}/stat").read().rsplit(")", 1)[1].split()[1]) == pid:
                found.append(int(entry))
        except (OSError, IndexError, ValueError):
            pass
    return found


class Node:
    def __init__(self, bin_, role, pg, db, data_dir, blob_store, log):
        cmd = [bin_, "serve", "--roles", role, "--listen", "127.0.0.1:0", "--database-url", pg.url(db),
               "--data-dir", data_dir, "--allow-private-callbacks"]
        if blob_store:
            cmd += ["--blob-store", blob_store]
        self.log = log
        self.proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=open(log, "w"), text=True)
        line = self.proc.stdout.readline()
        m = re.search(r"http://(\S+)", line)
        if not m:
            raise SystemExit(f"peedy {role} did not start: {line!r}; see {open(log).read()[-2000:]}")
        self.base = "http://" + m.group(1)

    def stop(self):
        self.proc.terminate()
        try:
            self.proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            self.proc.kill()


def dir_bytes(path):
    return sum(os.path.getsize(os.path.join(d, f)) for d, _, fs in os.walk(path) for f in fs)


def cluster_view(base):
    with urllib.request.urlopen(base + "/api/v1/cluster", timeout=10) as r:
        return json.load(r)


def wait_until(what, check, timeout=60):
    deadline = time.time() + timeout
    while not check():
        if time.time() > deadline:
            raise SystemExit(f"timed out waiting for {what}")
        time.sleep(0.2)


def drained(base):
    return all(q["queued"] == 0 and q["running"] == 0 for q in cluster_view(base)["queues"].values())


def run(bin_, pg, workers, blob_store, files, clients, work, receiver, callback):
    db = f"peedy_{workers}w_{blob_store or 'default'}"
    pg.sql("postgres", f"CREATE DATABASE {db}")
    data_dir = os.path.join(work, db)
    nodes = []
    try:
        web = Node(bin_, "web", pg, db, data_dir, blob_store, os.path.join(work, f"{db}-web.log"))
        nodes.append(web)
        for k in range(workers):
            nodes.append(Node(bin_, "worker", pg, db, data_dir, blob_store, os.path.join(work, f"{db}-worker{k}.log")))
        wait_until("the workers to join the cluster",
                   lambda: sum("worker" in n["roles"] for n in cluster_view(web.base)["nodes"]) == workers)
        # Warm-up: connections opened, statements prepared.
        S.wait_for(receiver, S.upload(web.base, files[:3], callback), time.time() + 60)
        wait_until("the warm-up to drain", lambda: drained(web.base))
        # Backends flush their transaction counts to pg_stat_database when
        # idle for up to 10 s: let the warm-up's land before the baseline.
        time.sleep(11)

        pg.sql("postgres", "SELECT pg_stat_statements_reset()")
        xacts_sql = f"SELECT xact_commit, xact_rollback FROM pg_stat_database WHERE datname = '{db}'"
        xact0 = [int(x) for x in pg.sql("postgres", xacts_sql)[0]]
        lsn0 = pg.one("postgres", "SELECT pg_current_wal_lsn()")
        size0 = int(pg.one("postgres", f"SELECT pg_database_size('{db}')"))
        blobs0 = dir_bytes(data_dir)
        cpu0 = [S.cpu_secs(n.proc.pid) for n in nodes]
        pg_cpu0 = pg.cpu_secs()

        batches = [files[i : i + 3] for i in range(0, len(files), 3)]
        t0 = time.perf_counter()
        with ThreadPoolExecutor(clients) as pool:
            ids = [i for r in pool.map(lambda b: S.upload(web.base, b, callback), batches) for i in r]
        S.wait_for(receiver, ids, time.time() + 900)
        seconds = max(receiver.arrivals[i] for i in ids) - t0
        cpu = [S.cpu_secs(n.proc.pid) - c for n, c in zip(nodes, cpu0)]
        pg_cpu = pg.cpu_secs() - pg_cpu0
        # The callback jobs complete just after their callbacks arrive.
        wait_until("the queues to drain", lambda: drained(web.base))
        wal = int(pg.one("postgres", f"SELECT pg_wal_lsn_diff(pg_current_wal_lsn(), '{lsn0}')"))
        size = int(pg.one("postgres", f"SELECT pg_database_size('{db}')")) - size0
        blobs = dir_bytes(data_dir) - blobs0
        time.sleep(11)  # the run's transaction counts, as before the baseline
        commits, rollbacks = [int(x) - x0 for x, x0 in zip(pg.sql("postgres", xacts_sql)[0], xact0)]
        sizes = [float(x) for x in pg.sql(db, "SELECT avg(input_size), avg(output_size) FROM documents")[0]]
        statements = [(int(calls), float(ms), q) for calls, ms, q in pg.sql("postgres", f"""
            SELECT calls, total_exec_time, regexp_replace(query, '\\s+', ' ', 'g') FROM pg_stat_statements
            WHERE dbid = (SELECT oid FROM pg_database WHERE datname = '{db}') ORDER BY calls DESC""")]
    finally:
        for n in nodes:
            n.stop()
    problems = [line.strip() for n in nodes for line in open(n.log) if re.search(r"\b(WARN|ERROR)\b", line)]
    return {
        "workers": workers, "blob_store": blob_store or "dir (no --blob-store in this build)",
        "docs": len(ids), "seconds": seconds,
        "web_cpu": cpu[0], "worker_cpu": sum(cpu[1:]), "pg_cpu": pg_cpu,
        "calls": sum(c for c, _, _ in statements), "commits": commits, "rollbacks": rollbacks, "wal": wal, "size": size, "blobs": blobs,
        "statements": statements, "input_kb": sizes[0] / 1024, "output_kb": sizes[1] / 1024, "problems": problems,
    }


def pgbench(pg):
    """Reference rates on the same PostgreSQL: TPC-B-like (7 statements per
    transaction: BEGIN, 3 UPDATEs, SELECT, INSERT, END) and select-only."""
    pg.sql("postgres", "CREATE DATABASE pgbench")
    base = ["pgbench", "-h", "127.0.0.1", "-p", str(pg.port), "-U", "postgres"]
    subprocess.run([*base, "-i", "-q", "-s", "8", "pgbench"], check=True, capture_output=True)
    rates = {}
    for label, extra in (("tpcb", []), ("select", ["-S"])):
        out = subprocess.run([*base, "-n", "-c", "8", "-j", "2", "-T", "10", *extra, "pgbench"],
                             check=True, capture_output=True, text=True).stdout
        rates[label] = float(re.search(r"tps = ([\d.]+)", out).group(1))
    return rates


def report(results, bench, corpus_bytes, clients):
    cpu = "unknown"
    try:
        cpu = re.search(r"model name\s*:\s*(.*)", open("/proc/cpuinfo").read()).group(1)
    except (OSError, AttributeError):
        pass
    n_files = results[0]["docs"]
    lines = [
        "# Cluster benchmark results",
        "",
        f"- date: {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}",
        f"- machine: {os.cpu_count()} cores, {cpu}, Linux {os.uname().release}; PostgreSQL, every peedy process, "
        "the Python upload clients and the callback receiver all share these cores",
        f"- PostgreSQL {bench['version']}, fsync and synchronous_commit at their defaults (on)",
        f"- load: {n_files} documents (mean {corpus_bytes / 1024:.0f} KB), {clients} concurrent clients, 3 files per "
        "request, callbacks to a local receiver; one web process plus N worker processes, fresh database per row",
        "",
        "## Throughput and cost per document",
        "",
        "| workers | blob store | docs/s | peedy CPU ms/doc (web + workers) | PostgreSQL CPU ms/doc | statements/doc | commits/doc | rollbacks/doc | WAL KB/doc | database growth KB/doc | --data-dir growth KB/doc | input + output KB/doc |",
        "|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in results:
        n = r["docs"]
        lines.append(
            f"| {r['workers']} | {r['blob_store']} | {n / r['seconds']:.0f} | "
            f"{1000 * (r['web_cpu'] + r['worker_cpu']) / n:.2f} ({1000 * r['web_cpu'] / n:.2f} + {1000 * r['worker_cpu'] / n:.2f}) | "
            f"{1000 * r['pg_cpu'] / n:.2f} | {r['calls'] / n:.1f} | {r['commits'] / n:.1f} | {r['rollbacks'] / n:.2f} | "
            f"{r['wal'] / 1024 / n:.1f} | {r['size'] / 1024 / n:.1f} | {r['blobs'] / 1024 / n:.1f} | {r['input_kb']:.0f} + {r['output_kb']:.0f} |")
    lines += ["", "statements/doc is pg_stat_statements `calls` (BEGIN, COMMIT and the LISTEN/NOTIFY included); "
              "commits and rollbacks/doc are pg_stat_database `xact_commit` and `xact_rollback`. Both include the nodes' heartbeats during the run.",
              ""]
    for r in results:
        n = r["docs"]
        lines += [f"## Where the statements go: {r['workers']} worker(s), blob store {r['blob_store']}", "",
                  "| calls/doc | mean ms | statement |", "|---:|---:|---|"]
        for calls, ms, q in r["statements"][:TOP_STATEMENTS]:
            q = (q if len(q) <= 160 else q[:157] + "...").replace("|", "\\|")
            lines.append(f"| {calls / n:.2f} | {ms / calls:.3f} | `{q}` |")
        rest = r["statements"][TOP_STATEMENTS:]
        if rest:
            lines.append(f"| {sum(c for c, _, _ in rest) / n:.2f} | | {len(rest)} other statements |")
        lines.append("")
    lines += [
        "## Reference: pgbench on the same PostgreSQL (scale 8, 8 clients, 10 s)",
        "",
        "| workload | transactions/s | statements/s |",
        "|---|---:|---:|",
        f"| TPC-B-like (BEGIN, 3 UPDATEs, SELECT, INSERT, END) | {bench['tpcb']:.0f} | {7 * bench['tpcb']:.0f} |",
        f"| select-only (one SELECT by primary key) | {bench['select']:.0f} | {bench['select']:.0f} |",
        "",
    ]
    problems = [p for r in results for p in r["problems"]]
    lines.append(f"## Server log warnings and errors: {len(problems)}")
    lines += ["", *[f"- `{p[:300]}`" for p in problems[:20]]] if problems else []
    return "\n".join(lines) + "\n"


def main():
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(1))  # run the clean-up below
    bin_ = os.environ.get("PEEDY_BIN")
    if not bin_:
        subprocess.run(["cargo", "build", "--release", "-p", "peedy"], cwd=S.ROOT, check=True)
        bin_ = os.path.join(S.ROOT, "target", "release", "peedy")
    copies = int(os.environ.get("COPIES", "40"))
    clients = int(os.environ.get("CLIENTS", "8"))
    worker_counts = [int(w) for w in os.environ.get("WORKERS", "1,2").split(",")]
    has_blob_store = "--blob-store" in subprocess.run([bin_, "serve", "--help"], capture_output=True, text=True).stdout
    blob_stores = ["database", "dir"] if has_blob_store else [None]

    corpus = sorted(f for f in os.listdir(S.CORPUS) if f.endswith(".pdf") and not f.startswith("005-"))
    files = [(f, open(os.path.join(S.CORPUS, f), "rb").read()) for f in corpus] * copies
    corpus_bytes = sum(len(d) for _, d in files) / len(files)

    receiver = S.Receiver()
    threading.Thread(target=receiver.serve_forever, daemon=True).start()
    callback = f"http://127.0.0.1:{receiver.server_address[1]}/hook"
    work = tempfile.mkdtemp(prefix="peedy-cluster-")
    pg = Postgres()
    try:
        pg.start()
        results = [run(bin_, pg, w, b, files, clients, work, receiver, callback)
                   for b in blob_stores for w in worker_counts]
        bench = pgbench(pg)
        bench["version"] = pg.one("postgres", "SHOW server_version")
    finally:
        pg.stop()
        shutil.rmtree(work, ignore_errors=True)
        receiver.shutdown()

    text = report(results, bench, corpus_bytes, clients)
    print(text)
    os.makedirs(os.path.join(S.ROOT, "bench", "out"), exist_ok=True)
    with open(os.path.join(S.ROOT, "bench", "out", "cluster-results.md"), "w") as f:
        f.write(text)


if __name__ == "__main__":
    sys.exit(main())
