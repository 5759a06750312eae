#!/usr/bin/env python3
"""Reference IMMUNE webhook receiver for benchmarking `lymph serve`.

Flask app served by gunicorn (pre-fork, several worker processes). Per request:

  1. read the raw body, at most 1 MiB: a larger Content-Length is answered 413 before the body is
     read (Werkzeug's MAX_CONTENT_LENGTH check); a chunked body is read up to 1 MiB + 1 byte and
     answered 413 if it goes past 1 MiB
  2. verify header `x-immune-signature` (any case): lowercase hex HMAC-SHA256 of the raw body
     under the secret, with an optional `sha256=` prefix -- exactly what Lymph's VerifyStage
     accepts (64 hex digits, either case; compared in constant time with hmac.compare_digest)
  3. parse the body as JSON; it must be an object with a non-empty string `id`
  4. INSERT OR IGNORE the id into SQLite (WAL, synchronous=FULL: durable before the answer, the
     guarantee `lymph serve` gives with its spool) and commit
  5. answer 202 {"accepted": "<id>"}

Errors: 401 {"error": "missing_signature" | "malformed_signature" | "bad_signature"},
400 {"error": "invalid_json" | "missing_id"}, 413 (body over 1 MiB), 405/404 from Flask.

Environment:
  IMMUNE_WEBHOOK_SECRET   the HMAC secret (required); several secrets separated by "," are all
                          accepted (rotation), like Lymph's `secrets:` list
  RECEIVER_DB             SQLite file (default ./bench_serve_reference.sqlite)

Run (pip install flask gunicorn):
  IMMUNE_WEBHOOK_SECRET=whsec_lymph_example_only \\
    gunicorn -w 4 -k gthread --threads 2 -b 127.0.0.1:8099 bench_serve_reference:app
or simply `python3 scripts/bench_serve_reference.py [--port 8099] [--workers 4] [--threads 2]`, which execs
gunicorn with those settings. gthread workers keep connections alive (the default `sync` worker
closes the connection after every response, which would make a keep-alive load generator
measure TCP handshakes instead of the receiver).
"""

import hashlib
import hmac
import json
import os
import re
import sqlite3
import sys
import threading
import time

from flask import Flask, Response, request

SIGNATURE_HEADER = "x-immune-signature"
MAX_BODY = 1 << 20
HEX64 = re.compile(rb"[0-9a-fA-F]{64}")


def _load_secrets():
    raw = os.environ.get("IMMUNE_WEBHOOK_SECRET")
    if not raw:
        sys.exit("reference_receiver: set IMMUNE_WEBHOOK_SECRET")
    return [s.encode("utf-8") for s in raw.split(",") if s]


SECRETS = _load_secrets()
# Keyed HMAC states built once; .copy() per request skips the key schedule (as Lymph does).
KEYED = [hmac.new(s, digestmod=hashlib.sha256) for s in SECRETS]
DB_PATH = os.environ.get("RECEIVER_DB", "bench_serve_reference.sqlite")

app = Flask(__name__)
# One byte more than the limit: Werkzeug answers 413 up front for a larger Content-Length, but for
# a chunked body it silently stops reading AT the limit (LimitedStream.readall), so a body of
# exactly the limit and a longer one would look the same. Reading up to MAX_BODY + 1 lets
# webhooks() tell them apart.
app.config["MAX_CONTENT_LENGTH"] = MAX_BODY + 1

# One connection per thread (gunicorn forks workers first, connections are opened lazily after the
# fork, so no connection is ever shared between processes).
_local = threading.local()


def _db():
    conn = getattr(_local, "conn", None)
    if conn is None:
        conn = sqlite3.connect(DB_PATH, timeout=5.0, isolation_level=None, check_same_thread=True)
        conn.execute("PRAGMA busy_timeout = 5000")
        conn.execute("PRAGMA journal_mode = WAL")
        conn.execute("PRAGMA synchronous = FULL")
        conn.execute(
            "CREATE TABLE IF NOT EXISTS events (id TEXT PRIMARY KEY, received_at REAL NOT NULL) WITHOUT ROWID"
        )
        _local.conn = conn
    return conn


def _json(status, obj):
    return Response(json.dumps(obj, separators=(",", ":")), status=status, mimetype="application/json")


def _signature_ok(header_value, body):
    """Returns None if valid, else the error reason (Lymph's reason names)."""
    if header_value is None:
        return "missing_signature"
    sig = header_value.encode("latin-1", "replace")
    if sig.startswith(b"sha256="):
        sig = sig[len(b"sha256="):]
    if not HEX64.fullmatch(sig):
        return "malformed_signature"
    provided = bytes.fromhex(sig.decode("ascii"))
    ok = False
    for keyed in KEYED:  # every secret is tried: no early exit that would leak which one matched
        h = keyed.copy()
        h.update(body)
        ok |= hmac.compare_digest(h.digest(), provided)
    return None if ok else "bad_signature"


@app.post("/webhooks")
def webhooks():
    body = request.get_data(cache=False)  # raw bytes; 413 raised by Werkzeug past MAX_CONTENT_LENGTH
    if len(body) > MAX_BODY:  # chunked body over the limit (see MAX_CONTENT_LENGTH above)
        return _json(413, {"error": "too_large"})
    reason = _signature_ok(request.headers.get(SIGNATURE_HEADER), body)
    if reason:
        return _json(401, {"error": reason})
    try:
        event = json.loads(body)
    except ValueError:
        return _json(400, {"error": "invalid_json"})
    event_id = event.get("id") if isinstance(event, dict) else None
    if not isinstance(event_id, str) or not event_id:
        return _json(400, {"error": "missing_id"})
    conn = _db()
    conn.execute("BEGIN IMMEDIATE")
    try:
        conn.execute("INSERT OR IGNORE INTO events (id, received_at) VALUES (?, ?)", (event_id, time.time()))
        conn.execute("COMMIT")
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    return _json(202, {"accepted": event_id})


@app.errorhandler(413)
def too_large(_error):
    return _json(413, {"error": "too_large"})


@app.get("/healthz")
def healthz():
    return _json(200, {"ok": True})


def main(argv):
    import argparse

    ap = argparse.ArgumentParser(description="run the reference receiver under gunicorn")
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=8099)
    ap.add_argument("--workers", type=int, default=2 * (os.cpu_count() or 1))
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--worker-class", default="gthread", choices=("gthread", "sync"))
    args = ap.parse_args(argv)
    here = os.path.dirname(os.path.abspath(__file__))
    cmd = [
        sys.executable, "-m", "gunicorn",
        "--chdir", here,
        "-w", str(args.workers),
        "-k", args.worker_class,
        "--threads", str(args.threads),
        "--keep-alive", "5",
        "--access-logfile", "-" if os.environ.get("RECEIVER_ACCESS_LOG") else "/dev/null",
        "--error-logfile", "-",
        "-b", f"{args.host}:{args.port}",
        "bench_serve_reference:app",
    ]
    os.execv(sys.executable, cmd)


if __name__ == "__main__":
    main(sys.argv[1:])
