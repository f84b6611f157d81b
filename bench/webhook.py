"""Webhook throughput and latency in safe mode: our app vs our echo vs a WeRoBot echo bot.

    .venv/bin/python bench/webhook.py [--seconds 10] [--clients 16] [--open-rate 100]

Runs, each on a fresh gunicorn (same settings for all: -w 2 -k gthread --threads 4, bound to
127.0.0.1 on a free port, no access log), loaded by a closed-loop generator of N keep-alive
clients for --seconds:

  (a) full   our real app (create_app, default router) on a genpack.generate(2000) pack,
             SQLite in a temp dir, real Redis (--redis, flushed first); questions from
             tests/eval/questions.toml; the answer cache off (BENCH_ANSWER_CACHE=0), since
             those questions repeat: every request runs the whole query;
  (a') full-cached  the same with the answer cache on (the figure for repeated questions);
  (b) echo   our webhook with a trivial echo router, same settings;
  (c) werobot a WeRoBot 1.13 echo bot in Flask (werobot.contrib.flask.make_view), session
             storage off (`--only ...,werobot-session` adds WeRoBot's stock SQLite
             sessions, which are not thread-safe under gthread).

All get the same stream: text messages in safe mode (encrypt_type=aes, msg_signature,
encrypted replies), one unique MsgId per request, signed and encrypted before timing by
the generator processes, exactly as WeChat builds them (bot.wechat.inbound). A sample of
replies is decrypted and checked (text answers; for echo bots the sent content).
Then an open-loop run of (a) at --open-rate requests/s (latency measured from each
request's scheduled send time, so queueing is counted). Aims (reported, not asserted):
(b) >= 1.0x (c), (a) >= 0.5x (c), open-loop p99 < 50 ms.
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import re
import resource
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import tomllib
from array import array
from pathlib import Path
from urllib.parse import urlencode

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench import genpack  # noqa: E402
from bot.webhook import APOLOGY  # noqa: E402
from bot.wechat.crypto import MessageCrypto  # noqa: E402
from bot.wechat.inbound import message_xml, open_reply, signed_request  # noqa: E402

QUESTIONS = ROOT / "tests" / "eval" / "questions.toml"
VENV_BIN = Path(sys.executable).parent
APP_ID = "wx2c2769f8efd9abc2"
AES_KEY = "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG"
TOKEN = "qzbotbenchtoken"
ACCOUNT = "gh_qzjtys000000"
SERVER_ARGS = ["-w", "2", "-k", "gthread", "--threads", "4", "--timeout", "120",
               "--log-level", "warning"]  # no --access-logfile: access log off
FACTORIES = {"full": "bench.webhook_apps:full()", "full-cached": "bench.webhook_apps:full()",
             "echo": "bench.webhook_apps:echo()",
             "werobot": "bench.webhook_apps:werobot()",
             "werobot-session": "bench.webhook_apps:werobot()"}
SAMPLE_EVERY = 20  # keep every 20th reply for checking
SAMPLE_CAP = 400  # per generator process

CONFIG = """\
[wechat]
app_id = "{app_id}"
app_secret = "bench-secret"
token = "{token}"
encoding_aes_key = "{key}"
account_id = "{account}"

[database]
url = "sqlite:///{db}"

[redis]
url = "{redis}"

[security]
secret_key = "bench-secret-key"

[log]
level = "WARNING"
"""


# --- a minimal keep-alive HTTP/1.1 client (cheap, so the generator stays out of the way) ---
_CONTENT_LENGTH = re.compile(rb"(?im)^content-length:[ \t]*(\d+)")
_CLOSE = re.compile(rb"(?im)^connection:[ \t]*close")


class Conn:
    """A keep-alive connection: exchange(request bytes) -> (status, body)."""

    def __init__(self, port: int, timeout: float = 30.0):
        self.port, self.timeout = port, timeout
        self.sock: socket.socket | None = None
        self.buf = b""
        self.used = False

    def close(self) -> None:
        if self.sock is not None:
            self.sock.close()
        self.sock, self.buf, self.used = None, b"", False

    def _connect(self) -> None:
        self.sock = socket.create_connection(("127.0.0.1", self.port), timeout=self.timeout)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def exchange(self, request: bytes) -> tuple[int, bytes]:
        try:
            return self._exchange(request)
        except ConnectionError:
            if not self.used:
                raise
            self.close()  # a reused connection the server had closed: retry once, fresh
            return self._exchange(request)
        except Exception:
            self.close()
            raise

    def _exchange(self, request: bytes) -> tuple[int, bytes]:
        if self.sock is None:
            self._connect()
        sock = self.sock
        sock.sendall(request)
        buf = self.buf
        while (end := buf.find(b"\r\n\r\n")) < 0:
            chunk = sock.recv(65536)
            if not chunk:
                raise ConnectionError("closed before response")
            buf += chunk
        head, rest = buf[:end], buf[end + 4:]
        m = _CONTENT_LENGTH.search(head)
        length = int(m.group(1)) if m else 0
        while len(rest) < length:
            chunk = sock.recv(65536)
            if not chunk:
                raise ConnectionError("closed in body")
            rest += chunk
        self.buf, self.used = rest[length:], True
        if _CLOSE.search(head):
            self.close()
        return int(head[9:12]), rest[:length]


def http_request(path: str, body: bytes = b"", method: str = "POST") -> bytes:
    head = (f"{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            f"Content-Type: text/xml\r\nContent-Length: {len(body)}\r\n\r\n")
    return head.encode("ascii") + body


# --- the message stream --------------------------------------------------------------------
def load_texts() -> list[str]:
    data = tomllib.loads(QUESTIONS.read_text(encoding="utf-8"))
    return [q["text"] for q in (*data.get("q", []), *data.get("unanswerable", []))]


def build_stream(crypto: MessageCrypto, texts: list[str], proc: int, count: int,
                 id_base: int, users: int = 400) -> list[tuple[bytes, str]]:
    """Prebuilt (request bytes, sent content) for one generator process. The content and
    sender sequence depends only on (proc, i), so every server gets the same stream;
    MsgIds are unique (id_base differs per run)."""
    out = []
    for i in range(count):
        content = texts[(proc * 131 + i) % len(texts)]
        openid = f"oBench{(proc * 1009 + i * 7) % users:022d}"
        msg_id = id_base + proc * 10**8 + i
        xml = message_xml(ACCOUNT, openid, "text", msg_id=msg_id, Content=content)
        # a unique nonce: the stream is built in a second or two, so random nonces under one
        # timestamp can collide, and the replay guard rightly refuses a re-used pair (403)
        args, body = signed_request(xml, crypto.token, crypto, nonce=str(msg_id))
        out.append((http_request("/wechat?" + urlencode(args), body.encode("utf-8")), content))
    return out


# --- load generator processes ------------------------------------------------------------
def _cpu_self() -> float:
    ru = resource.getrusage(resource.RUSAGE_SELF)
    return ru.ru_utime + ru.ru_stime


def gen_proc(mode: str, port: int, proc: int, threads: int, count: int, id_base: int,
             texts: list[str], ready, go, start_at, seconds: float, rate: float,
             out) -> None:
    """A load-generator process: build `count` requests, wait for `go`, run, report.

    closed: `threads` clients take the next prebuilt request as soon as their previous one
    is answered; open: request i is due at start + i/rate, sent by the next free client,
    and its latency counts from that due time (queueing included)."""
    signal.signal(signal.SIGTERM, signal.SIG_DFL)  # the parent handles Ctrl-C and ends us
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    crypto = MessageCrypto(TOKEN, [AES_KEY], APP_ID)
    stream = build_stream(crypto, texts, proc, count, id_base)
    conns = [Conn(port) for _ in range(threads)]
    ready.put(proc)
    go.wait()
    t0 = start_at.value
    stop = t0 + seconds
    lat = [array("d") for _ in range(threads)]
    errs = [0] * threads
    codes: dict[int, int] = {}
    samples: list[tuple[str, int, bytes]] = []
    exhausted = [False]
    lock = threading.Lock()
    slots = iter(range(len(stream)))

    def take() -> int | None:
        with lock:
            i = next(slots, None)
        if i is None:
            exhausted[0] = True
        return i

    def closed(t: int) -> None:
        conn, mine = conns[t], lat[t]
        while time.perf_counter() < t0:
            time.sleep(0.0005)
        while (start := time.perf_counter()) < stop and (i := take()) is not None:
            record(t, i, conn, start, mine)

    def open_loop(t: int) -> None:
        conn, mine = conns[t], lat[t]
        while (i := take()) is not None:
            due = t0 + i / rate
            if due >= stop:
                break
            delay = due - time.perf_counter()
            if delay > 0:
                time.sleep(delay)
            record(t, i, conn, due, mine)

    def record(t: int, i: int, conn: Conn, start: float, mine: array) -> None:
        req, content = stream[i]
        try:
            status, body = conn.exchange(req)
        except OSError:
            errs[t] += 1
            codes[-1] = codes.get(-1, 0) + 1
            return
        mine.append(time.perf_counter() - start)
        if status != 200:
            errs[t] += 1
            codes[status] = codes.get(status, 0) + 1
        if i % SAMPLE_EVERY == 0 and len(samples) < SAMPLE_CAP:
            samples.append((content, status, body))

    cpu0 = _cpu_self()
    target = closed if mode == "closed" else open_loop
    workers = [threading.Thread(target=target, args=(t,)) for t in range(threads)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    cpu = _cpu_self() - cpu0
    for c in conns:
        c.close()
    out.put({"lat": [a.tobytes() for a in lat], "errors": sum(errs), "codes": codes,
             "samples": samples, "exhausted": int(exhausted[0] and mode == "closed"),
             "cpu": cpu})


def run_load(mode: str, port: int, procs: int, clients: int, seconds: float, per_proc: int,
             id_base: int, texts: list[str], rate: float = 0.0, server_pid: int = 0) -> dict:
    """Fork the generator processes, wait until their requests are built, run, merge."""
    ctx = mp.get_context("fork")
    ready, out, go = ctx.Queue(), ctx.Queue(), ctx.Event()
    start_at = ctx.Value("d", 0.0)
    split = [clients // procs + (i < clients % procs) for i in range(procs)]
    workers = [ctx.Process(target=gen_proc, daemon=True,
                           args=(mode, port, i, n, per_proc, id_base, texts, ready, go,
                                 start_at, seconds, rate, out))
               for i, n in enumerate(split) if n]
    for w in workers:
        w.start()
    try:
        for _ in workers:
            ready.get(timeout=120)
        cpu = CpuMeter(server_pid)
        start_at.value = time.perf_counter() + 0.05
        go.set()
        time.sleep(max(0.0, start_at.value - time.perf_counter()))
        cpu.start()
        time.sleep(seconds)
        cpu.stop()
        results = [out.get(timeout=seconds + 60) for _ in workers]
        for w in workers:
            w.join(10)
    finally:
        for w in workers:
            if w.is_alive():
                w.terminate()
    lat = array("d")
    for r in results:
        for raw in r["lat"]:
            part = array("d")
            part.frombytes(raw)
            lat.extend(part)
    codes: dict[int, int] = {}
    for r in results:
        for k, v in r["codes"].items():
            codes[k] = codes.get(k, 0) + v
    return {"lat": sorted(lat), "errors": sum(r["errors"] for r in results), "codes": codes,
            "samples": [s for r in results for s in r["samples"]], "seconds": seconds,
            "exhausted": sum(r["exhausted"] for r in results),
            "gen_cpu": sum(r["cpu"] for r in results), "server_cpu": cpu.server,
            "redis_cpu": cpu.redis,
            "idle": cpu.idle, "cores": os.cpu_count() or 1}


class CpuMeter:
    """CPU seconds of the server's process tree and of redis-server; the machine's idle share."""

    redis_pid = 0  # set by main when Redis is local

    def __init__(self, pid: int):
        import psutil

        self.psutil = psutil
        self.proc = psutil.Process(pid) if pid else None
        self.server = self.redis = self.idle = float("nan")

    def _cpu(self, procs) -> float:
        total = 0.0
        for p in procs:
            try:
                t = p.cpu_times()
                total += t.user + t.system
            except self.psutil.Error:
                pass
        return total

    def _tree(self) -> float:
        if self.proc is None:
            return 0.0
        return self._cpu([self.proc, *self.proc.children(recursive=True)])

    def _redis(self) -> float:
        if not self.redis_pid:
            return 0.0
        try:
            return self._cpu([self.psutil.Process(self.redis_pid)])
        except self.psutil.Error:
            return 0.0

    def start(self) -> None:
        self._t0, self._r0, self._sys0 = self._tree(), self._redis(), self.psutil.cpu_times()

    def stop(self) -> None:
        sys1 = self.psutil.cpu_times()
        self.server = self._tree() - self._t0
        self.redis = self._redis() - self._r0
        busy = sum(sys1) - sum(self._sys0)
        self.idle = (sys1.idle - self._sys0.idle) / busy if busy else float("nan")


# --- servers -------------------------------------------------------------------------------
def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Server:
    """A fresh gunicorn subprocess (own process group) serving one factory."""

    def __init__(self, name: str, factory: str, workdir: Path, env: dict[str, str]):
        self.name, self.workdir = name, workdir
        self.port = free_port()
        self.ready_dir = workdir / f"ready-{name}-{self.port}"
        self.ready_dir.mkdir()
        self.log = workdir / f"server-{name}.log"
        env = dict(env, BENCH_READY_DIR=str(self.ready_dir))
        if factory == "werobot-session":
            env["BENCH_WEROBOT_SESSION"] = "1"
        # the headline (a) and the open loop run with the answer cache off; full-cached on
        env["BENCH_ANSWER_CACHE"] = "1" if factory == "full-cached" else "0"
        cwd = workdir / f"cwd-{name}"  # WeRoBot's stock session file lands here
        cwd.mkdir(exist_ok=True)
        with open(self.log, "wb") as log:
            self.proc = subprocess.Popen(
                [str(VENV_BIN / "gunicorn"), *SERVER_ARGS, "--bind", f"127.0.0.1:{self.port}",
                 FACTORIES[factory]],
                cwd=cwd, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)

    def wait_ready(self, workers: int = 2, timeout: float = 60.0) -> None:
        """Every worker has built its app (factories touch a file) and the handshake works."""
        deadline = time.monotonic() + timeout
        while len(list(self.ready_dir.iterdir())) < workers:
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"{self.name} server did not start; log:\n{self.tail()}")
            time.sleep(0.05)
        from bot.wechat.signature import make_signature

        ts, nonce, echostr = str(int(time.time())), "12345", "bench-echo"
        query = urlencode({"signature": make_signature(TOKEN, ts, nonce), "timestamp": ts,
                           "nonce": nonce, "echostr": echostr})
        conn = Conn(self.port, timeout=10)
        while True:
            try:
                status, body = conn.exchange(http_request("/wechat?" + query, method="GET"))
                if status == 200 and body == echostr.encode():
                    break
            except OSError:
                pass
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"{self.name}: handshake failed; log:\n{self.tail()}")
            time.sleep(0.1)
        conn.close()

    def log_summary(self) -> dict[str, int]:
        """Counts of tracebacks and of the last line of each (the exception) in the log."""
        try:
            lines = self.log.read_text(errors="replace").splitlines()
        except OSError:
            return {}
        counts: dict[str, int] = {}
        failed = sum(1 for line in lines if re.search(r"handler failed|webhook failed", line))
        if failed:
            counts["log lines 'handler/webhook failed' (citizen got the apology)"] = failed
        for i, line in enumerate(lines):
            if line.startswith("Traceback"):
                j = i + 1
                while j < len(lines) and (lines[j].startswith(" ") or not lines[j].strip()):
                    j += 1
                follow = " ".join(lines[j + 1:j + 3])
                if "The above exception" in follow or "During handling" in follow:
                    continue  # count a chained traceback once, by its final exception
                key = lines[j][:160] if j < len(lines) else "?"
                counts[key] = counts.get(key, 0) + 1
        return counts

    def tail(self, n: int = 30) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-n:])
        except OSError:
            return ""

    def stop(self) -> None:
        if self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signal.SIGTERM)
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(5)
            except ProcessLookupError:
                pass


def warm_up(port: int, seconds: float, clients: int, texts: list[str], id_base: int) -> int:
    """Closed-loop warm-up with freshly built requests (not measured); returns the count."""
    crypto = MessageCrypto(TOKEN, [AES_KEY], APP_ID)
    stop = time.monotonic() + seconds
    done = [0] * clients

    def client(t: int) -> None:
        conn = Conn(port)
        i = 0
        while time.monotonic() < stop:
            (req, _), = build_stream(crypto, texts, 90 + t, 1, id_base + i)
            try:
                conn.exchange(req)
            except OSError:
                conn.close()
            i += 1
        done[t] = i
        conn.close()

    threads = [threading.Thread(target=client, args=(t,)) for t in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return sum(done)


def flush_redis(url: str) -> int:
    """FLUSHDB; returns redis-server's pid when it runs on this machine (for CPU figures)."""
    import redis

    client = redis.Redis.from_url(url, socket_connect_timeout=2)
    client.flushdb()
    pid = int(client.info("server").get("process_id", 0))
    client.close()
    host = client.connection_pool.connection_kwargs.get("host", "")
    return pid if host in ("127.0.0.1", "localhost", "::1") or not host else 0


# --- checks and figures ---------------------------------------------------------------------
def check_samples(name: str, samples: list[tuple[str, int, bytes]],
                  echo: bool) -> tuple[int, int, list[str]]:
    """(checked, bad, examples of problems): decrypt, expect text; echo bots: the content."""
    crypto = MessageCrypto(TOKEN, [AES_KEY], APP_ID)
    bad, problems = 0, []
    for content, status, body in samples:
        problem = ""
        if status != 200:
            problem = f"HTTP {status}"
        else:
            try:
                reply = open_reply(body.decode("utf-8"), crypto)
            except Exception as exc:  # noqa: BLE001 - reported
                reply, problem = None, f"{type(exc).__name__}: {exc}"
            if not problem:
                if reply is None:
                    problem = "success/empty reply"
                elif reply.get("MsgType") != "text" or not str(reply.get("Content", "")).strip():
                    problem = f"not a text answer: MsgType={reply.get('MsgType')}"
                elif reply.get("Content") == APOLOGY:
                    problem = "apology (handler failed, see the server log)"
                elif echo and reply.get("Content") != content:
                    problem = f"echo mismatch: {content!r} -> {str(reply.get('Content'))[:40]!r}"
        if problem:
            bad += 1
            if len(problems) < 3:
                problems.append(f"{name}: {problem}")
    return len(samples), bad, problems


def cpu_per_request(r: dict) -> float:
    """Server plus redis-server CPU milliseconds per answered request (what a request costs
    the machine; steadier than req/s when other processes share the cores)."""
    return (r["server_cpu"] + r["redis_cpu"]) * 1000 / max(1, len(r["lat"]))


def report_rounds(rounds: dict[str, list[dict]]) -> None:
    """Per-round req/s and the ratios to (c) of the same round (neighbours in time)."""
    print("rounds (req/s):")
    for name, done in rounds.items():
        print(f"  {name:16}" + " ".join(f"{len(r['lat']) / r['seconds']:7.0f}" for r in done))
    base = rounds.get("werobot")
    if not base:
        return
    for name in ("echo", "full", "full-cached"):
        if name not in rounds:
            continue
        ratios = sorted(len(a["lat"]) / max(1, len(b["lat"]))
                        for a, b in zip(rounds[name], base, strict=False))
        costs = sorted(cpu_per_request(b) / cpu_per_request(a)
                       for a, b in zip(rounds[name], base, strict=False))
        print(f"  {name}/(c) per round: " + ", ".join(f"{x:.2f}x" for x in ratios)
              + f"; median {ratios[(len(ratios) - 1) // 2]:.2f}x; by cpu per request: median "
              f"{costs[(len(costs) - 1) // 2]:.2f}x")


def median_round(done: list[dict]) -> dict:
    """The round with the median throughput (the open loop: the median p99), so one noisy
    round on a shared machine does not decide a ratio."""
    def key(r: dict) -> float:
        return pct(r["lat"], .99) if r.get("open") else len(r["lat"])

    return sorted(done, key=key)[(len(done) - 1) // 2]


def pct(sorted_values, q: float) -> float:
    if not sorted_values:
        return float("nan")
    return sorted_values[min(len(sorted_values) - 1, int(q * len(sorted_values)))] * 1000


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=10.0, help="closed-loop run length")
    parser.add_argument("--warmup", type=float, default=2.0)
    parser.add_argument("--clients", type=int, default=16, help="concurrent keep-alive clients")
    parser.add_argument("--procs", type=int, default=2, help="load-generator processes")
    parser.add_argument("--max-rps", type=float, default=6000.0,
                        help="prebuild 1.2 x seconds x this requests per run (raise it if "
                             "a generator runs out)")
    parser.add_argument("--records", type=int, default=2000, help="generated pack size")
    parser.add_argument("--redis", default="redis://127.0.0.1:6379/14")
    parser.add_argument("--open-rate", type=float, default=100.0, help="open-loop requests/s")
    parser.add_argument("--open-seconds", type=float, default=10.0)
    parser.add_argument("--open-clients", type=int, default=32)
    parser.add_argument("--only", default="full,full-cached,echo,werobot,open",
                        help="comma-separated runs out of full,full-cached,echo,werobot,open and "
                             "werobot-session (WeRoBot's stock SQLite sessions: not "
                             "thread-safe under gthread, most replies fail)")
    parser.add_argument("--rounds", type=int, default=1,
                        help="run the whole sequence N times, interleaved, and report each "
                             "run's median round (steadier ratios on a shared machine)")
    parser.add_argument("--keep", action="store_true", help="keep the temp dir (logs, db)")
    args = parser.parse_args(argv)
    runs = [r.strip() for r in args.only.split(",") if r.strip()]

    def on_term(_sig, _frame):
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, on_term)
    signal.signal(signal.SIGINT, signal.default_int_handler)  # even if started with it ignored
    workdir = Path(tempfile.mkdtemp(prefix="qzbot-bench-webhook-"))
    servers: list[Server] = []
    results: dict[str, dict] = {}
    try:
        t_setup = time.perf_counter()
        config = workdir / "config.toml"
        config.write_text(CONFIG.format(app_id=APP_ID, token=TOKEN, key=AES_KEY, account=ACCOUNT,
                                        db=workdir / "qzbot.sqlite3", redis=args.redis),
                          encoding="utf-8")
        pack = workdir / "pack.toml"
        pack.write_text(genpack.generate(args.records), encoding="utf-8")
        env = {k: v for k, v in os.environ.items() if not k.startswith("QZBOT_")}
        env.update(QZBOT_CONFIG=str(config), QZBOT_LOG__LEVEL="WARNING",
                   PYTHONPATH=os.pathsep.join(filter(None, [str(ROOT),
                                                            env.get("PYTHONPATH", "")])))
        qzbot = [str(VENV_BIN / "qzbot"), "--config", str(config)]
        for cmd in (["db", "upgrade"], ["content", "import", str(pack)]):
            done = subprocess.run(qzbot + cmd, env=env, capture_output=True, text=True,
                                  cwd=workdir)
            if done.returncode:
                raise SystemExit(f"qzbot {' '.join(cmd[:2])} failed:\n{done.stdout}{done.stderr}")
        texts = load_texts()
        print(f"setup {time.perf_counter() - t_setup:.1f} s: {args.records}-record pack, "
              f"{len(texts)} distinct texts, workdir {workdir}", flush=True)
        per_proc = int(1.2 * args.seconds * args.max_rps / args.procs) + 200
        id_base = secrets.randbits(40) << 20

        rounds: dict[str, list[dict]] = {}
        schedule = [name for _ in range(args.rounds) for name in runs]  # interleaved
        for n, name in enumerate(schedule):
            if name not in FACTORIES and name != "open":
                raise SystemExit(f"unknown run {name}")
            CpuMeter.redis_pid = flush_redis(args.redis)
            server = Server(name, "full" if name == "open" else name, workdir, env)
            servers.append(server)
            started = time.perf_counter()
            server.wait_ready()
            boot = time.perf_counter() - started
            warm = warm_up(server.port, args.warmup, args.clients, texts,
                           id_base + (n + 1) * 10**11)  # MsgIds unique across all runs
            base = id_base + n * 10**9
            if name == "open":
                total = int(args.open_rate * args.open_seconds) + 10
                res = run_load("open", server.port, 1, args.open_clients, args.open_seconds,
                               total, base, texts, rate=args.open_rate, server_pid=server.proc.pid)
                res["open"] = True
            else:
                res = run_load("closed", server.port, args.procs, args.clients, args.seconds,
                               per_proc, base, texts, server_pid=server.proc.pid)
            server.stop()
            res["check"] = check_samples(name, res["samples"],
                                         echo=name not in ("full", "full-cached", "open"))
            res["boot"], res["warm"], res["log"] = boot, warm, server.log_summary()
            rounds.setdefault(name, []).append(res)
            results[name] = median_round(rounds[name])
            r = res
            print(f"  {name:16} boot {boot:4.1f} s, warm-up {warm} req, "
                  f"{len(r['lat'])} req in {r['seconds']:.0f} s, errors {r['errors']}, "
                  f"checked {r['check'][0]} replies ({r['check'][1]} bad)", flush=True)
            if r["exhausted"]:
                print(f"    WARNING: {r['exhausted']} generator(s) ran out of prebuilt requests; "
                      f"raise --max-rps", flush=True)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    finally:
        for s in servers:
            s.stop()
        if args.keep:
            print(f"kept {workdir}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)
        signal.signal(signal.SIGTERM, signal.SIG_DFL)

    report(results, args)
    if args.rounds > 1:
        report_rounds(rounds)
    return 0


def report(results: dict[str, dict], args) -> None:
    labels = {"full": "(a) full answer", "full-cached": "(a') full, cached",
              "echo": "(b) our echo", "werobot": "(c) WeRoBot echo",
              "werobot-session": "(c*) WeRoBot+sess"}
    print()
    print(f"safe mode (AES), gunicorn {' '.join(SERVER_ARGS[:6])}, {args.clients} keep-alive "
          f"clients, {args.procs} generator procs, {args.seconds:.0f} s each, "
          f"{os.cpu_count()} cores")
    print(f"{'':20}{'req/s':>8}{'p50 ms':>9}{'p99 ms':>9}{'errors':>8}{'bad replies':>13}"
          f"   cpu: server redis  gen other  idle   cpu ms/req")
    rps = {}
    for name, label in labels.items():
        r = results.get(name)
        if not r:
            continue
        rps[name] = len(r["lat"]) / r["seconds"]
        wall = r["seconds"] * r["cores"]
        used = r["server_cpu"] + r["redis_cpu"] + r["gen_cpu"]
        print(f"{label:20}{rps[name]:8.0f}{pct(r['lat'], .5):9.1f}{pct(r['lat'], .99):9.1f}"
              f"{r['errors']:8d}{r['check'][1]:>7}/{r['check'][0]:<5}"
              f"     {r['server_cpu'] / wall:5.0%} {r['redis_cpu'] / wall:5.0%} "
              f"{r['gen_cpu'] / wall:4.0%} {1 - r['idle'] - used / wall:5.0%} {r['idle']:5.0%}"
              f"   {cpu_per_request(r):6.3f}")
    if "werobot" in rps:
        for name, aim in (("echo", 1.0), ("full", 0.5), ("full-cached", 0.5)):
            if name in rps:
                ratio = rps[name] / rps["werobot"]
                print(f"ratio {labels[name].split()[0]}/(c): {ratio:.2f}x  (aim >= {aim}x: "
                      f"{'met' if ratio >= aim else 'NOT met'})")
    o = results.get("open")
    if o:
        lat = o["lat"]
        p99 = pct(lat, .99)
        print(f"open loop (a) at {args.open_rate:.0f} req/s for {args.open_seconds:.0f} s: "
              f"{len(lat)} done ({len(lat) / o['seconds']:.0f}/s), p50 {pct(lat, .5):.1f} ms, "
              f"p90 {pct(lat, .9):.1f} ms, p99 {p99:.1f} ms, "
              f"max {lat[-1] * 1000 if lat else 0:.1f} ms, "
              f"errors {o['errors']}, bad replies {o['check'][1]}/{o['check'][0]}  "
              f"(aim p99 < 50 ms: {'met' if p99 < 50 else 'NOT met'})")
        wall = o["seconds"] * o["cores"]
        used = o["server_cpu"] + o["redis_cpu"] + o["gen_cpu"]
        print(f"  cpu during the open loop: server {o['server_cpu'] / wall:.0%}, other processes "
              f"{1 - o['idle'] - used / wall:.0%}, idle {o['idle']:.0%}")
    problems = [p for r in results.values() for p in r["check"][2]]
    problems += [f"{n}: server log: {c} x {exc}" for n, r in results.items()
                 for exc, c in sorted(r["log"].items(), key=lambda kv: -kv[1])[:3]]
    codes = {n: r["codes"] for n, r in results.items() if r["codes"]}
    if problems or codes:
        print("problems:", *problems, *(f"{n}: status counts {c}" for n, c in codes.items()),
              sep="\n  ")


if __name__ == "__main__":
    raise SystemExit(main())
