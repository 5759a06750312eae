#!/usr/bin/env python3
"""Python reference implementation of benchmark case 2 (see scripts/bench).

Does the same work as scripts/bench_case2.yaml run by `lymph run`:

  parse    each line is a signed delivery {"headers": {...}, "body": "<event JSON>"}
  verify   x-immune-signature header (case-insensitive name, optional "sha256="
           prefix) must equal HMAC-SHA256(secret, UTF-8 body), checked with
           hmac.compare_digest; then the body is parsed and must be an event
           object with id, type, created_at (strings) and data (object)
  dedup    by "id": an in-memory set catches in-run duplicates, then a SQLite
           lookup (WAL, synchronous=NORMAL) within the window, then an insert;
           one transaction per 1,000 events. With --dedup memory the set is all
           there is (the "forgetful" reference: keys die with the process, as in
           Vector's in-memory dedupe), and --db is not used
  filter   keep only --types (default prediction.created, alert.triggered)
  log      append the event (the body string, one line) to --log
  output   write the event (the body string, one line) to stdout

A summary object like lymph's (`--summary json`) is printed to stderr.
Exit status: 0, or 1 if there were dead letters (same as lymph).

Usage:
  python3 scripts/bench_reference.py --json-lib json|orjson [--dedup sqlite|memory] \\
      --secret-env NAME [--db PATH] --log PATH INPUT > OUTPUT

Standard library only, plus orjson for --json-lib orjson.
"""

import argparse
import hashlib
import hmac
import json
import os
import re
import sqlite3
import sys
import time

REQUIRED_STRING_FIELDS = ("id", "type", "created_at")
SIGNATURE_HEADER = "x-immune-signature"
BUF = 1 << 20


def parse_window(text):
    """'7d', '12h', '30m', '45s' or plain seconds -> seconds (float)."""
    m = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([smhdw]?)\s*", text)
    if not m:
        raise argparse.ArgumentTypeError(f"bad window {text!r} (use e.g. 7d, 12h, 30m, 45s)")
    unit = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}[m.group(2)]
    return float(m.group(1)) * unit


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--json-lib", choices=("json", "orjson"), default="json")
    ap.add_argument("--secret-env", action="append", required=True, metavar="NAME",
                    help="environment variable holding an HMAC secret (repeatable: any secret may match)")
    ap.add_argument("--dedup", choices=("sqlite", "memory"), default="sqlite",
                    help="where dedup keys live: a SQLite file (--db), or only an in-memory set")
    ap.add_argument("--db", help="SQLite dedup state file (--dedup sqlite)")
    ap.add_argument("--log", required=True, help="log file (events appended, one JSON line each)")
    ap.add_argument("--dead-letter", help="optional file for rejected lines (reason + raw line)")
    ap.add_argument("--types", default="prediction.created,alert.triggered",
                    help="comma-separated event types to keep")
    ap.add_argument("--window", type=parse_window, default=parse_window("7d"),
                    help="dedup window (default 7d)")
    ap.add_argument("--batch", type=int, default=1000, help="events per SQLite transaction")
    ap.add_argument("input")
    args = ap.parse_args(argv)

    if args.json_lib == "orjson":
        import orjson
        loads = orjson.loads
        decode_error = orjson.JSONDecodeError
    else:
        loads = json.loads
        decode_error = ValueError  # json.JSONDecodeError and UnicodeDecodeError

    secrets = []
    for name in args.secret_env:
        value = os.environ.get(name)
        if value is None:
            ap.error(f"environment variable {name} is not set")
        secrets.append(value.encode("utf-8"))

    if args.dedup == "sqlite" and not args.db:
        ap.error("--dedup sqlite needs --db")
    forgetful = args.dedup == "memory"

    keep_types = frozenset(t.strip() for t in args.types.split(",") if t.strip())
    window = args.window
    batch = max(1, args.batch)

    db = None
    lookup_sql = insert_sql = None
    db_execute = None
    if not forgetful:
        db = sqlite3.connect(args.db, isolation_level=None)
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA synchronous=NORMAL")
        # The same table shape and cache settings as Lymph's store, so the comparison is about the
        # code, not the schema: a rowid table with a TEXT primary key keeps two B-trees.
        db.execute("PRAGMA cache_size=-65536")
        db.execute("PRAGMA mmap_size=268435456")
        db.execute("CREATE TABLE IF NOT EXISTS dedup (key TEXT PRIMARY KEY, seen_at REAL NOT NULL) WITHOUT ROWID")
        lookup_sql = "SELECT seen_at FROM dedup WHERE key = ?"
        insert_sql = "INSERT OR REPLACE INTO dedup (key, seen_at) VALUES (?, ?)"
        db_execute = db.execute

    seen_in_run = set()
    compare_digest = hmac.compare_digest
    hmac_digest = hmac.digest
    sha256 = hashlib.sha256

    events_read = passed = duplicates = filtered = dead_letters = 0
    start = time.perf_counter()

    out = open(sys.stdout.fileno(), "wb", buffering=BUF, closefd=False)
    log = open(args.log, "ab", buffering=BUF)
    dead = open(args.dead_letter, "ab", buffering=BUF) if args.dead_letter else None

    def reject(reason, raw):
        nonlocal dead_letters
        dead_letters += 1
        if dead is not None:
            dead.write(json.dumps({"reason": reason, "line": events_read,
                                   "raw": raw.decode("utf-8", "replace").rstrip("\n")}).encode() + b"\n")

    if not forgetful:
        db_execute("BEGIN")
    in_txn = 0
    with open(args.input, "rb", buffering=BUF) as infile:
        for raw in infile:
            if not raw.strip():
                continue
            events_read += 1
            in_txn += 1
            if in_txn >= batch and not forgetful:
                db_execute("COMMIT")
                db_execute("BEGIN")
                in_txn = 0

            # parse (delivery envelope)
            try:
                delivery = loads(raw)
            except decode_error:
                reject("parse: invalid JSON", raw)
                continue
            if not isinstance(delivery, dict):
                reject("parse: delivery is not an object", raw)
                continue
            headers = delivery.get("headers")
            body = delivery.get("body")
            if not isinstance(headers, dict) or not isinstance(body, str):
                reject("parse: delivery needs headers object and body string", raw)
                continue

            # verify
            signature = headers.get(SIGNATURE_HEADER)
            if signature is None:
                for name, value in headers.items():
                    if name.lower() == SIGNATURE_HEADER:
                        signature = value
                        break
            if not isinstance(signature, str):
                reject("verify: missing x-immune-signature", raw)
                continue
            signature = signature.strip()
            if signature[:7].lower() == "sha256=":
                signature = signature[7:]
            try:
                given = bytes.fromhex(signature)
            except ValueError:
                reject("verify: signature is not hex", raw)
                continue
            body_bytes = body.encode("utf-8")
            for secret in secrets:
                if compare_digest(hmac_digest(secret, body_bytes, sha256), given):
                    break
            else:
                reject("verify: signature mismatch", raw)
                continue

            # parse (event body) + required fields
            try:
                event = loads(body)
            except decode_error:
                reject("parse: body is not valid JSON", raw)
                continue
            if not isinstance(event, dict):
                reject("parse: event is not an object", raw)
                continue
            bad = False
            for field in REQUIRED_STRING_FIELDS:
                value = event.get(field)
                if not isinstance(value, str) or not value:
                    bad = True
                    break
            if bad or not isinstance(event.get("data"), dict):
                reject("parse: event needs id, type, created_at (strings) and data (object)", raw)
                continue

            # dedup
            key = event["id"]
            if key in seen_in_run:
                duplicates += 1
                continue
            if not forgetful:
                now = time.time()
                row = db_execute(lookup_sql, (key,)).fetchone()
                if row is not None and now - row[0] < window:
                    duplicates += 1
                    seen_in_run.add(key)
                    continue
                db_execute(insert_sql, (key, now))
            seen_in_run.add(key)

            # filter
            if event["type"] not in keep_types:
                filtered += 1
                continue

            # log + output
            line = body_bytes + b"\n"
            log.write(line)
            out.write(line)
            passed += 1

    if not forgetful:
        db_execute("COMMIT")
        db.close()
    log.close()
    if dead is not None:
        dead.close()
    out.flush()

    seconds = time.perf_counter() - start
    summary = {
        "events_read": events_read,
        "passed": passed,
        "duplicates": duplicates,
        "filtered": filtered,
        "dead_letters": dead_letters,
        "seconds": round(seconds, 6),
        "events_per_second": round(events_read / seconds, 1) if seconds > 0 else None,
        "json_lib": args.json_lib,
    }
    sys.stderr.write(json.dumps(summary) + "\n")
    return 1 if dead_letters else 0


if __name__ == "__main__":
    sys.exit(main())
