"""Benchmark the web API (``decidua serve``, one worker) against the floor of a bare FastAPI app serving the same
JSON bytes, measured side by side in the same run with the same client.

    python benchmarks/api.py --cases 200 --large 2000

For each database (a SQLite file; PostgreSQL at ``--postgres`` when reachable, in a schema of its own that is
dropped afterwards) it starts ``decidua serve`` as a process of its own, pinned to one core, logs a clinician in
and creates ``--cases`` cases through the API (the shipped examples, each under a new case id). The load client
(this process, pinned to the other core) drives each endpoint for ``--seconds`` with ``--concurrency`` threads,
each an ``httpx`` client with a kept-alive connection:

* ``get_case``: ``GET /api/cases/{case_id}`` (the case of example 01: its version, assessment and versions);
* ``get_assessment``: ``GET /api/cases/{case_id}/assessment``;
* ``list_<cases>``: ``GET /api/cases`` (the first page, 100 cases) with ``--cases`` stored;
* ``post_case``: ``POST /api/cases`` (a new case each time, with its CSRF token);
* ``list_<large>``: the list again once the API has stored ``--large`` cases (the list's cost should not grow).

The floor is a FastAPI app with nothing else (no middleware, no database, no login), served by the same server
code with the same settings, one worker, pinned to the same core: each of its routes answers with the bytes
``decidua`` answered the same request with (a POST route parses its JSON body first, as any JSON endpoint does).
Each endpoint and its floor run ``--repeat`` times (3), alternated so that the machine's load touches both alike.

Figures per endpoint: requests per second, p50 and p99 latency (ms, at the client), and CPU ms per request of the
server process (user + system, from ``/proc``: robust to other load on the machine, unlike rps). On PostgreSQL the
database's own backends are separate processes: their CPU per request is shown apart (``db_cpu_ms``). The ratio of
an endpoint is the floor's CPU per request divided by decidua's (median of the repeats; 1.0 would be as cheap as
the floor); ``rps_ratio`` compares requests per second. The last line printed is JSON with the ratios.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import functools
import json
import os
import secrets
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = sorted((ROOT / "examples").glob("*.yaml"))
TICKS = os.sysconf("SC_CLK_TCK")
EMAIL = "bench@clinic.test"
PASSWORD = secrets.token_urlsafe(16)
CASE_ID_SLOT = "@@CASE_ID@@"


# --- processes -------------------------------------------------------------------------------------------------


def cpus() -> tuple[int | None, int | None]:
    """The core for the server and the one for the client (None: leave unpinned, e.g. on one core)."""
    mine = sorted(os.sched_getaffinity(0))
    return (mine[0], mine[1]) if len(mine) >= 2 else (None, None)


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of a process (all its threads), from ``/proc/<pid>/stat``."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def start(argv: list[str], log: Path, core: int | None) -> subprocess.Popen[bytes]:
    """A server process of its own (and its own process group, so that its helpers stop with it), pinned."""

    def pin() -> None:
        if core is not None:
            os.sched_setaffinity(0, {core})

    with log.open("ab") as out:
        return subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT, preexec_fn=pin, start_new_session=True)


def stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGINT)
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


def wait_until_up(proc: subprocess.Popen[bytes], url: str, log: Path) -> None:
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"the server stopped (exit {proc.returncode}):\n{log.read_text()[-3000:]}")
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(url, timeout=2).status_code == 200:
                return
        time.sleep(0.2)
    raise SystemExit(f"the server did not answer {url} within 120 s:\n{log.read_text()[-3000:]}")


FLOOR_APP = '''
"""The floor: a FastAPI app answering with payloads it is given, served like ``decidua serve``."""
import sys
from typing import Any

from fastapi import FastAPI, Request, Response

app = FastAPI()
payloads: dict[str, bytes] = {}


@app.get("/health")
def health() -> dict[str, str]:
    return {"status": "ok"}


@app.put("/_payload/{name}", status_code=204)
async def set_payload(name: str, request: Request) -> Response:
    payloads[name] = await request.body()
    return Response(status_code=204)


@app.get("/floor/{name}")
def get(name: str) -> Response:
    return Response(payloads[name], media_type="application/json")


@app.post("/floor/{name}", status_code=201)
def post(name: str, body: dict[str, Any]) -> Response:
    return Response(payloads[name], status_code=201, media_type="application/json")


port = int(sys.argv[1])
options = {"access_log": False, "log_config": None, "server_header": False}
try:  # the server code and settings of ``decidua serve``
    from decidua.entrypoints.http.server import ServerLimits, serve
    from decidua.entrypoints.http.settings import Settings

    s = Settings(database_url="sqlite://")
    limits = ServerLimits(s.max_connections, s.header_timeout_seconds, s.keep_alive_seconds)
except (ImportError, AttributeError):  # a decidua without it: plain uvicorn, as ``decidua serve`` ran it then
    import uvicorn

    uvicorn.run(app, host="127.0.0.1", port=port, **options)
else:
    serve(app, "127.0.0.1", port, limits, **options)
'''


# --- the database ----------------------------------------------------------------------------------------------


@dataclass
class Database:
    name: str
    url: str
    app_name: str | None = None  # PostgreSQL: the server's connections carry it (their backends' CPU is measured)
    schema: str | None = None  # PostgreSQL: the benchmark's own schema

    def analyze(self, admin_url: str) -> None:
        """PostgreSQL: refresh the planner's statistics after many cases were added at once, as autovacuum does
        within a minute or so (until then the planner still sees the empty tables of the start and joins every
        case of the list instead of walking the indexes)."""
        if self.schema is None:
            return
        import psycopg

        with psycopg.connect(admin_url, autocommit=True) as conn:
            conn.execute(f'SET search_path TO "{self.schema}"')
            conn.execute("ANALYZE")

    def backend_pids(self, admin_url: str) -> list[int]:
        if self.app_name is None:
            return []
        import psycopg

        with psycopg.connect(admin_url, autocommit=True) as conn:
            rows = conn.execute("SELECT pid FROM pg_stat_activity WHERE application_name = %s", [self.app_name])
            return [int(r[0]) for r in rows]


def postgres_reason(admin_url: str) -> str | None:
    try:
        import psycopg
    except ImportError:
        return "psycopg is not installed"
    try:
        with psycopg.connect(admin_url, connect_timeout=2):
            return None
    except psycopg.Error as exc:
        return f"not reachable ({type(exc).__name__})"


@contextlib.contextmanager
def database(kind: str, tmp: Path, admin_url: str) -> Iterator[Database]:
    if kind == "sqlite":
        yield Database("sqlite", f"sqlite:///{tmp / 'bench.sqlite3'}")
        return
    import psycopg

    tag = secrets.token_hex(4)
    schema, app_name = f"decidua_bench_{tag}", f"decidua_bench_{tag}"
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(f'CREATE SCHEMA "{schema}"')
    rest = admin_url.split("://", 1)[1]
    url = f"postgresql+psycopg://{rest}?application_name={app_name}&options=-csearch_path%3D{schema}"
    try:
        yield Database("postgresql", url, app_name, schema)
    finally:
        with psycopg.connect(admin_url, autocommit=True) as conn:
            conn.execute(f'DROP SCHEMA "{schema}" CASCADE')


def add_clinician(url: str) -> None:
    """The benchmark's user, stored directly (the API has no user yet to log in with)."""
    from decidua.adapters.store import Role, open_store
    from decidua.app.accounts import Passwords

    store = open_store(url)
    try:
        store.add_user(EMAIL, Passwords().hash(PASSWORD), Role.CLINICIAN)
    finally:
        store.engine.dispose()


def case_bodies() -> list[str]:
    """The shipped examples as ``POST /api/cases`` bodies, their case id replaced by :data:`CASE_ID_SLOT`."""
    from decidua.app.casefile import case_to_data, load_text, parse_case

    bodies = []
    for path in EXAMPLES:
        data = case_to_data(parse_case(load_text(path.read_text(), "yaml", path.name)))
        data["case_id"] = CASE_ID_SLOT
        bodies.append(json.dumps({"case": data}))
    return bodies


# --- the client --------------------------------------------------------------------------------------------------


@dataclass
class Target:
    """What one measurement sends: ``method`` to ``path``; a POST body made per request by ``body(i)``."""

    method: str
    path: str
    status: int = 200
    body: Callable[[int], bytes] | None = None


@dataclass
class Login:
    cookies: dict[str, str]
    csrf: str

    def client(self, base: str) -> httpx.Client:
        return httpx.Client(
            base_url=base,
            cookies=self.cookies,
            headers={"X-CSRF-Token": self.csrf, "Content-Type": "application/json"},
            timeout=120,
        )


def log_in(base: str) -> Login:
    r = httpx.post(f"{base}/api/session", json={"email": EMAIL, "password": PASSWORD}, timeout=60)
    r.raise_for_status()
    return Login(dict(r.cookies), r.json()["csrf_token"])


@dataclass
class Run:
    requests: int
    seconds: float
    cpu_s: float
    latencies: list[float] = field(repr=False)
    db_cpu_s: float | None = None

    @property
    def rps(self) -> float:
        return self.requests / self.seconds

    @property
    def cpu_ms(self) -> float:
        return 1000 * self.cpu_s / self.requests

    def quantile(self, q: float) -> float:
        ordered = sorted(self.latencies)
        return 1000 * ordered[min(len(ordered) - 1, int(q * len(ordered)))]


class Counter:
    def __init__(self, start: int = 0) -> None:
        self._next = start
        self._lock = threading.Lock()

    def __call__(self) -> int:
        with self._lock:
            self._next += 1
            return self._next


def drive(
    base: str,
    login: Login,
    target: Target,
    seconds: float,
    concurrency: int,
    server_pid: int,
    db_pids: Callable[[], list[int]] = list,
    numbers: Counter | None = None,
) -> Run:
    """``concurrency`` threads, each with a kept-alive client, send ``target`` for ``seconds``; the server's CPU
    is read before the first and after the last request."""
    numbers = numbers or Counter()
    ready, go = threading.Barrier(concurrency + 1), threading.Barrier(concurrency + 1)
    latencies: list[list[float]] = [[] for _ in range(concurrency)]
    failures: list[str] = []
    deadline = [0.0]

    def send(client: httpx.Client) -> httpx.Response:
        content = target.body(numbers()) if target.body else None
        return client.request(target.method, target.path, content=content)

    def worker(k: int) -> None:
        with login.client(base) as client:
            try:
                send(client)  # opens the connection
            finally:
                ready.wait()
            go.wait()  # the server's CPU has been read and the deadline set
            mine = latencies[k]
            while time.perf_counter() < deadline[0] and not failures:
                t0 = time.perf_counter()
                r = send(client)
                mine.append(time.perf_counter() - t0)
                if r.status_code != target.status:
                    failures.append(f"{target.method} {target.path}: {r.status_code} {r.text[:300]}")

    threads = [threading.Thread(target=worker, args=(k,)) for k in range(concurrency)]
    for t in threads:
        t.start()
    ready.wait()
    pids = db_pids()
    db0 = {p: cpu_seconds(p) for p in pids}
    cpu0 = cpu_seconds(server_pid)
    t0 = time.perf_counter()
    deadline[0] = t0 + seconds
    go.wait()
    for t in threads:
        t.join()
    wall = time.perf_counter() - t0
    cpu = cpu_seconds(server_pid) - cpu0
    db = None
    if pids:
        db = sum(cpu_seconds(p) - db0.get(p, 0.0) for p in db_pids() if _alive(p))
    if failures:
        raise SystemExit(failures[0])
    flat = [x for xs in latencies for x in xs]
    return Run(len(flat), wall, cpu, flat, db)


def _alive(pid: int) -> bool:
    return Path(f"/proc/{pid}").exists()


def create_cases(base: str, login: Login, bodies: list[str], start: int, stop: int, concurrency: int) -> None:
    """Cases ``start`` .. ``stop - 1`` (case ids ``BENCH-00000`` ...), through the API, several at a time."""
    numbers = Counter(start - 1)
    failures: list[str] = []

    def worker() -> None:
        with login.client(base) as client:
            while (i := numbers()) < stop and not failures:
                body = bodies[i % len(bodies)].replace(CASE_ID_SLOT, f"BENCH-{i:05d}")
                r = client.post("/api/cases", content=body)
                if r.status_code != 201:
                    failures.append(f"creating case {i}: {r.status_code} {r.text[:300]}")

    threads = [threading.Thread(target=worker) for _ in range(concurrency)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if failures:
        raise SystemExit(failures[0])


# --- one database ------------------------------------------------------------------------------------------------


def quotient(a: float | None, b: float | None) -> float:
    """``a / b`` of two figures :func:`summary` always fills (only the database CPU may be missing)."""
    assert a is not None
    assert b is not None
    return a / b


def summary(runs: list[Run]) -> dict[str, float | None]:
    def mm(values: list[float]) -> tuple[float, float]:
        return min(values), statistics.median(values)

    rps = [r.rps for r in runs]
    cpu_min, cpu_median = mm([r.cpu_ms for r in runs])
    p50 = statistics.median(r.quantile(0.5) for r in runs)
    p99 = statistics.median(r.quantile(0.99) for r in runs)
    db = [r.db_cpu_s / r.requests * 1000 for r in runs if r.db_cpu_s is not None]
    return {
        "rps_max": max(rps),
        "rps_median": statistics.median(rps),
        "p50_ms": p50,
        "p99_ms": p99,
        "cpu_ms_min": cpu_min,
        "cpu_ms_median": cpu_median,
        "db_cpu_ms_median": statistics.median(db) if db else None,
        "requests": sum(r.requests for r in runs),
    }


def bench_database(db: Database, args: argparse.Namespace, tmp: Path, admin_url: str) -> dict[str, Any]:
    server_core, _ = cpus()
    add_clinician(db.url)
    port, floor_port = free_port(), free_port()
    base, floor = f"http://127.0.0.1:{port}", f"http://127.0.0.1:{floor_port}"
    log = tmp / f"{db.name}-server.log"
    decidua = [sys.executable, "-m", "decidua.entrypoints.cli.main", "serve", "--host", "127.0.0.1"]
    server = start([*decidua, "--port", str(port), "--database-url", db.url], log, server_core)
    floor_script = tmp / "floor.py"
    floor_script.write_text(FLOOR_APP)
    floor_proc = start([sys.executable, str(floor_script), str(floor_port)], tmp / "floor.log", server_core)
    try:
        wait_until_up(server, f"{base}/api/health", log)
        wait_until_up(floor_proc, f"{floor}/health", tmp / "floor.log")
        login = log_in(base)
        bodies = case_bodies()
        t0 = time.perf_counter()
        create_cases(base, login, bodies, 0, args.cases, args.concurrency)
        print(f"[{db.name}] created {args.cases} cases in {time.perf_counter() - t0:.1f} s", flush=True)
        db.analyze(admin_url)

        reference = "BENCH-00000"  # example 01
        fresh = Counter(10_000_000)
        targets = {
            "get_case": Target("GET", f"/api/cases/{reference}"),
            "get_assessment": Target("GET", f"/api/cases/{reference}/assessment"),
            f"list_{args.cases}": Target("GET", "/api/cases"),
            "post_case": Target(
                "POST",
                "/api/cases",
                201,
                lambda i: bodies[0].replace(CASE_ID_SLOT, f"POST-{i:08d}").encode(),
            ),
        }
        results: dict[str, Any] = {}

        def measure(name: str, target: Target) -> None:
            with login.client(base) as client:  # the floor answers with decidua's bytes for the same request
                content = target.body(fresh()) if target.body else None
                answer = client.request(target.method, target.path, content=content)
                if answer.status_code != target.status:
                    raise SystemExit(f"{name}: {answer.status_code} {answer.text[:300]}")
                httpx.put(f"{floor}/_payload/{name}", content=answer.content).raise_for_status()
            floor_target = Target(target.method, f"/floor/{name}", target.status, target.body)
            mine, base_runs = [], []
            for _ in range(args.repeat):
                base_runs.append(drive(floor, login, floor_target, args.seconds, args.concurrency, floor_proc.pid))
                pids = functools.partial(db.backend_pids, admin_url)
                mine.append(drive(base, login, target, args.seconds, args.concurrency, server.pid, pids, fresh))
            ours, theirs = summary(mine), summary(base_runs)
            ratio = quotient(theirs["cpu_ms_median"], ours["cpu_ms_median"])
            rps_ratio = quotient(ours["rps_median"], theirs["rps_median"])
            results[name] = {
                "bytes": len(answer.content),
                "decidua": ours,
                "floor": theirs,
                "ratio": ratio,
                "ratio_best": quotient(theirs["cpu_ms_min"], ours["cpu_ms_min"]),
                "rps_ratio": rps_ratio,
            }
            db_cpu = f", database {ours['db_cpu_ms_median']:.2f} ms" if ours["db_cpu_ms_median"] is not None else ""
            print(
                f"[{db.name}] {name} ({len(answer.content):,} bytes): {ours['rps_median']:.0f} rps, "
                f"p50 {ours['p50_ms']:.1f} ms, p99 {ours['p99_ms']:.1f} ms, CPU {ours['cpu_ms_min']:.2f}/"
                f"{ours['cpu_ms_median']:.2f} ms per request (min/median of {args.repeat}){db_cpu}; floor "
                f"{theirs['rps_median']:.0f} rps, CPU {theirs['cpu_ms_min']:.2f}/{theirs['cpu_ms_median']:.2f} ms; "
                f"ratio {ratio:.3f} (rps {rps_ratio:.3f})",
                flush=True,
            )

        for name, target in targets.items():
            if args.only is None or name.split("_")[0] in args.only or name in args.only:
                measure(name, target)
        if args.large > args.cases and (args.only is None or "list" in args.only):
            t0 = time.perf_counter()
            create_cases(base, login, bodies, args.cases, args.large, args.concurrency)
            print(f"[{db.name}] created cases up to {args.large} in {time.perf_counter() - t0:.1f} s", flush=True)
            db.analyze(admin_url)
            measure(f"list_{args.large}", Target("GET", "/api/cases"))
            if f"list_{args.cases}" in results:
                small, large = results[f"list_{args.cases}"], results[f"list_{args.large}"]
                results["list_growth"] = large["decidua"]["cpu_ms_median"] / small["decidua"]["cpu_ms_median"]
        return results
    finally:
        stop(server)
        stop(floor_proc)


def rounded(value: Any) -> Any:
    if isinstance(value, float):
        return round(value, 3)
    if isinstance(value, dict):
        return {k: rounded(v) for k, v in value.items()}
    return value


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cases", type=int, default=200, help="cases stored before measuring")
    parser.add_argument("--large", type=int, default=2000, help="cases stored for the second list measurement")
    parser.add_argument("--seconds", type=float, default=3.0, help="length of each measurement")
    parser.add_argument("--repeat", type=int, default=3, help="runs of each endpoint and its floor (min/median)")
    parser.add_argument("--concurrency", type=int, default=4, help="client threads, each with one connection")
    parser.add_argument("--databases", default="sqlite,postgresql")
    parser.add_argument(
        "--only", type=lambda x: x.split(","), help="measure only these (get_case, get_assessment, get, post, list)"
    )
    parser.add_argument("--postgres", default="postgresql://postgres@127.0.0.1:5432/test", help="for a schema")
    args = parser.parse_args()
    _, client_core = cpus()
    if client_core is not None:
        os.sched_setaffinity(0, {client_core})
    print(f"{dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M} UTC, load average {os.getloadavg()[0]:.2f}", flush=True)
    ratios: dict[str, dict[str, float]] = {}
    report: dict[str, Any] = {}
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        for kind in args.databases.split(","):
            if kind == "postgresql" and (reason := postgres_reason(args.postgres)):
                print(f"[postgresql] skipped: {reason}", flush=True)
                continue
            with database(kind, tmp, args.postgres) as db:
                results = bench_database(db, args, tmp, args.postgres)
            report[kind] = results
            ratios[kind] = {
                name: round(r["ratio"], 3) for name, r in results.items() if isinstance(r, dict) and "ratio" in r
            }
            if "list_growth" in results:
                ratios[kind]["list_growth"] = round(results["list_growth"], 3)
    load = os.getloadavg()[0]
    print(json.dumps(rounded({"load_average_end": load, "results": report})), flush=True)
    print(json.dumps({"cases": args.cases, "large": args.large, "repeat": args.repeat, "ratios": ratios}))


if __name__ == "__main__":
    main()
