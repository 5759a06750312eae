#!/usr/bin/env python3
"""A webhook receiver that fails on purpose, for the http stage's tests and benchmark.

  http_receiver.py [--port 0] [--log FILE] [--fail-every N] [--status PREFIX=CODE]...
                   [--flaky PREFIX=K]... [--hang PREFIX]... [--drip PREFIX]...
                   [--hostile PREFIX]... [--echo PREFIX]... [--retry-after SECONDS]

Prints "listening PORT" once it listens. Answers 200 {"ok":true}, except:
  --fail-every N      503 to every Nth request (counted over all requests);
  --status PREFIX=C   status C to every request whose Idempotency-Key starts with PREFIX;
  --flaky PREFIX=K    503 to the first K attempts of each key starting with PREFIX;
  --hang PREFIX       no answer: holds the request 30 s, then closes the connection;
  --drip PREFIX       answers 200 with a body of 100 bytes sent a byte every 0.2 s (each
                      byte within a read timeout of a second, the whole 20 s later);
  --hostile PREFIX    400 with a body that tries to forge a log line and send a terminal
                      escape (a line break, ESC[31m, a NUL);
  --echo PREFIX       401 with a body that repeats the request line, the Authorization header,
                      its token alone and the body, as some APIs do.
With --log, one JSON line per request: its Idempotency-Key, the status answered, the headers
and the body.
"""
import argparse
import collections
import http.server
import json
import sys
import threading
import time

ap = argparse.ArgumentParser()
ap.add_argument("--port", type=int, default=0)
ap.add_argument("--log")
ap.add_argument("--fail-every", type=int, default=0)
ap.add_argument("--status", action="append", default=[])
ap.add_argument("--flaky", action="append", default=[])
ap.add_argument("--hang", action="append", default=[])
ap.add_argument("--drip", action="append", default=[])
ap.add_argument("--hostile", action="append", default=[])
ap.add_argument("--echo", action="append", default=[])
ap.add_argument("--retry-after")
args = ap.parse_args()
statuses = [(p, int(c)) for p, c in (s.split("=", 1) for s in args.status)]
flaky = [(p, int(k)) for p, k in (s.split("=", 1) for s in args.flaky)]
lock = threading.Lock()
attempts = collections.Counter()
total = [0]
log = open(args.log, "a", buffering=1) if args.log else None


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("content-length", 0)))
        key = self.headers.get("idempotency-key", "")
        with lock:
            total[0] += 1
            attempts[key] += 1
            n, attempt = total[0], attempts[key]
        if any(key.startswith(p) for p in args.hang):
            time.sleep(30)
            self.close_connection = True
            return
        if any(key.startswith(p) for p in args.drip):
            if log:
                with lock:
                    log.write(json.dumps({"key": key, "status": 200, "headers": dict(self.headers), "body": body.decode("utf-8", "replace")}) + "\n")
            self.send_response(200)
            self.send_header("content-length", "100")
            self.end_headers()
            self.wfile.flush()
            try:
                for _ in range(100):
                    time.sleep(0.2)
                    self.wfile.write(b" ")
                    self.wfile.flush()
            except OSError:
                pass
            self.close_connection = True
            return
        status = 200
        for prefix, code in statuses:
            if key.startswith(prefix):
                status = code
        for prefix, k in flaky:
            if key.startswith(prefix) and attempt <= k:
                status = 503
        if args.fail_every and n % args.fail_every == 0:
            status = 503
        out = b'{"ok":true}' if status < 300 else json.dumps({"error": f"answered {status} on purpose"}).encode()
        if any(key.startswith(p) for p in args.hostile):
            status = 400
            out = b"no\n2026-12-04T00:00:00Z info forged line \x1b[31mred\x00"
        if any(key.startswith(p) for p in args.echo):
            status = 401
            auth = self.headers.get("authorization", "")
            token = auth.split(" ")[-1]
            out = f"invalid token for {self.command} {self.path}: {auth!r}, token {token}, body {body.decode('utf-8', 'replace')}".encode()
        self.send_response(status)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(out)))
        if status == 503 and args.retry_after:
            self.send_header("retry-after", args.retry_after)
        self.end_headers()
        self.wfile.write(out)
        if log:
            with lock:
                log.write(json.dumps({"key": key, "status": status, "headers": dict(self.headers), "body": body.decode("utf-8", "replace")}) + "\n")

    def log_message(self, *a):
        pass


class Server(http.server.ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 256


server = Server(("127.0.0.1", args.port), Handler)
print(f"listening {server.server_address[1]}", flush=True)
server.serve_forever()
