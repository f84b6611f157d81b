"""Load the WeChat simulator with N concurrent keep-alive clients; print requests/s, p50, p99.

    .venv/bin/python bench/simulator_load.py --clients 64 --latency-ms 20 --duration 10

Without --url it serves the simulator itself (serve_simulator in a child process on
127.0.0.1) so the figure says whether the simulator could hold up a 1 000 sends/s push
benchmark. The clients are plain http.client connections spread over --procs processes,
so the load generator costs as little CPU as it can.
"""

from __future__ import annotations

import argparse
import http.client
import json
import multiprocessing as mp
import socket
import statistics
import sys
import time
from pathlib import Path
from urllib.parse import urlsplit

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from wechatsim import SimConfig, serve_simulator  # noqa: E402

API = "/cgi-bin/message/custom/send"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _serve(port: int, latency_ms: float, server: str, threads: int) -> None:
    serve_simulator("127.0.0.1", port, SimConfig(latency_ms=latency_ms), server=server,
                    threads=threads)


def _call(conn: http.client.HTTPConnection, method: str, path: str, body: dict | None) -> dict:
    data = json.dumps(body).encode() if body is not None else None
    conn.request(method, path, body=data, headers={"Content-Type": "application/json"})
    return json.loads(conn.getresponse().read())


def _wait_ready(host: str, port: int, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            conn = http.client.HTTPConnection(host, port, timeout=2)
            _call(conn, "GET", "/_sim/health", None)
            conn.close()
            return
        except OSError:
            time.sleep(0.1)
    raise SystemExit(f"simulator on {host}:{port} did not come up")


def _token(host: str, port: int) -> str:
    conn = http.client.HTTPConnection(host, port, timeout=10)
    cfg = SimConfig()
    body = {"grant_type": "client_credential", "appid": cfg.app_id, "secret": cfg.app_secret}
    token = _call(conn, "POST", "/cgi-bin/stable_token", body)["access_token"]
    conn.close()
    return token


def _client_proc(host: str, port: int, token: str, clients: int, proc: int,
                 start_at: float, stop_at: float, out: mp.Queue) -> None:
    import threading

    latencies: list[float] = []
    errors = [0]
    lock = threading.Lock()

    def worker(idx: int) -> None:
        conn = http.client.HTTPConnection(host, port, timeout=30)
        path = f"{API}?access_token={token}"
        mine: list[float] = []
        bad = 0
        n = 0
        while True:
            now = time.monotonic()
            if now >= stop_at:
                break
            n += 1
            body = {"touser": f"o{proc:03d}{idx:05d}{n:019d}", "msgtype": "text",
                    "text": {"content": "bench cid=load"}}
            t0 = time.monotonic()
            try:
                ok = _call(conn, "POST", path, body).get("errcode") == 0
            except (OSError, http.client.HTTPException, ValueError):
                ok = False
                conn.close()
                conn = http.client.HTTPConnection(host, port, timeout=30)
            t1 = time.monotonic()
            if t0 >= start_at:
                mine.append(t1 - t0)
                bad += not ok
        conn.close()
        with lock:
            latencies.extend(mine)
            errors[0] += bad

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    out.put((latencies, errors[0]))


def main(argv: list[str] | None = None) -> int:
    """Run the load and print the figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", help="an already running simulator (default: start one)")
    parser.add_argument("--server", choices=["asyncio", "gunicorn", "werkzeug"],
                        default="asyncio")
    parser.add_argument("--threads", type=int, default=128, help="gunicorn worker threads")
    parser.add_argument("--clients", type=int, default=64)
    parser.add_argument("--procs", type=int, default=1, help="client processes")
    parser.add_argument("--latency-ms", type=float, default=20.0)
    parser.add_argument("--duration", type=float, default=10.0)
    parser.add_argument("--warmup", type=float, default=1.0)
    args = parser.parse_args(argv)

    ctx = mp.get_context("spawn")
    server = None
    if args.url:
        parts = urlsplit(args.url)
        host, port = parts.hostname or "127.0.0.1", parts.port or 80
    else:
        host, port = "127.0.0.1", _free_port()
        server = ctx.Process(target=_serve, args=(port, args.latency_ms, args.server,
                                                   args.threads), daemon=True)
        server.start()
    try:
        _wait_ready(host, port)
        token = _token(host, port)
        out: mp.Queue = ctx.Queue()
        start_at = time.monotonic() + 1.0 + args.warmup  # time for the processes to start
        stop_at = start_at + args.duration
        per_proc = [args.clients // args.procs + (i < args.clients % args.procs)
                    for i in range(args.procs)]
        procs = [ctx.Process(target=_client_proc,
                             args=(host, port, token, n, i, start_at, stop_at, out))
                 for i, n in enumerate(per_proc)]
        for p in procs:
            p.start()
        results = [out.get() for _ in procs]
        for p in procs:
            p.join()
    finally:
        if server is not None:
            server.terminate()
            server.join(10)
    latencies = sorted(x for lat, _ in results for x in lat)
    errors = sum(e for _, e in results)
    if not latencies:
        print("no requests completed")
        return 1
    q = statistics.quantiles(latencies, n=100)
    print(f"server={'external' if args.url else args.server} clients={args.clients} "
          f"procs={args.procs} latency_ms={args.latency_ms} duration={args.duration}s")
    print(f"requests={len(latencies)} errors={errors} "
          f"rps={len(latencies) / args.duration:.0f} "
          f"p50={q[49] * 1000:.1f}ms p99={q[98] * 1000:.1f}ms")
    return 0 if errors == 0 else 1


if __name__ == "__main__":
    raise SystemExit(main())
