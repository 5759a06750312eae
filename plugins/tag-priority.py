#!/usr/bin/env python3
"""tag-priority.py — a stream-mode stage in Python 3 (standard library only).

Reads one event per line and answers each with exactly one line, in order: alerts get
`data.priority` (P1..P4 from `data.severity`), other events come back unchanged. An alert
with an unknown severity is answered with {"answer_to": ID, "error": "..."}: that event fails
(dead letter) and the process goes on with the next one. Every answer names the event it answers
(its "id", or "answer_to"), so Lymph can tell when a plugin's lines fall out of step.

Flush after every answer: Lymph waits for it (up to `timeout`) before counting it late.

Try it by hand:
  echo '{"id":"a","type":"alert.triggered","data":{"severity":"high"}}' | python3 plugins/tag-priority.py
"""
import json
import sys

PRIORITY = {"critical": "P1", "high": "P2", "medium": "P3", "low": "P4"}


def answer(line: str) -> str:
    event = json.loads(line)
    if event.get("type") != "alert.triggered":
        return line
    severity = event.get("data", {}).get("severity")
    if severity not in PRIORITY:
        return json.dumps({"answer_to": event["id"], "error": f"unknown severity {severity!r}; expected one of {sorted(PRIORITY)}"})
    event["data"]["priority"] = PRIORITY[severity]
    return json.dumps(event, separators=(",", ":"))


for raw in sys.stdin:
    try:
        out = answer(raw.rstrip("\n"))
    except ValueError as error:  # Lymph writes JSON; an answer that names no event fails the events in flight
        out = json.dumps({"error": f"not JSON: {error}"})
    sys.stdout.write(out + "\n")
    sys.stdout.flush()
