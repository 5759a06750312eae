#!/usr/bin/env python3
"""Signs and verifies webhooks in each scheme Lymph supports, with code Lymph did not write:
Standard Webhooks through the `standardwebhooks` package (PyPI), GitHub, Stripe and the generic
HMAC with Python's hmac, written from each sender's documentation. The end-to-end tests
(SignatureConformanceTests) run it in a venv they make, against `lymph sign`, `lymph run` and
`lymph serve`.

  signature_conformance.py sign SCHEME           bodies (one per line) in, deliveries out
  signature_conformance.py verify SCHEME         deliveries in, "ok" or "fail: why" per line out

The secret is read from the environment variable CONFORMANCE_SECRET; the timestamp signed is
now, or CONFORMANCE_TIMESTAMP. The generic scheme is HMAC-SHA512, base64, in X-Signature with
the prefix "sha512=".
"""
import base64
import hashlib
import hmac
import json
import os
import sys
import time
import uuid


def timestamp():
    return int(os.environ.get("CONFORMANCE_TIMESTAMP") or time.time())


def sign(scheme, secret, body):
    ts = timestamp()
    if scheme == "standard_webhooks":
        from standardwebhooks.webhooks import Webhook
        from datetime import datetime, timezone
        msg_id = "msg_" + uuid.uuid4().hex
        signature = Webhook(secret).sign(msg_id=msg_id, timestamp=datetime.fromtimestamp(ts, tz=timezone.utc), data=body)
        return {"webhook-id": msg_id, "webhook-timestamp": str(ts), "webhook-signature": signature}
    if scheme == "github":
        # docs.github.com, "Validating webhook deliveries": sha256= and the hex HMAC of the payload.
        return {"X-Hub-Signature-256": "sha256=" + hmac.new(secret.encode(), body.encode(), hashlib.sha256).hexdigest()}
    if scheme == "stripe":
        # docs.stripe.com, "Verify webhook signatures manually": HMAC-SHA256 of "{t}.{payload}".
        mac = hmac.new(secret.encode(), f"{ts}.{body}".encode(), hashlib.sha256).hexdigest()
        return {"Stripe-Signature": f"t={ts},v1={mac}"}
    if scheme == "hmac":
        mac = base64.b64encode(hmac.new(secret.encode(), body.encode(), hashlib.sha512).digest()).decode()
        return {"X-Signature": "sha512=" + mac}
    raise SystemExit(f"unknown scheme {scheme}")


def verify(scheme, secret, headers, body):
    headers = {k.lower(): v for k, v in headers.items()}
    if scheme == "standard_webhooks":
        from standardwebhooks.webhooks import Webhook
        try:
            Webhook(secret).verify(body, headers, json_parse=False)
            return "ok"
        except Exception as e:  # the package's WebhookVerificationError, or a malformed header
            return f"fail: {e}"
    if scheme == "github":
        expected = "sha256=" + hmac.new(secret.encode(), body.encode(), hashlib.sha256).hexdigest()
        return "ok" if hmac.compare_digest(expected, headers.get("x-hub-signature-256", "")) else "fail: signature"
    if scheme == "stripe":
        parts = [p.split("=", 1) for p in headers.get("stripe-signature", "").split(",") if "=" in p]
        ts = next((v for k, v in parts if k == "t"), None)
        if ts is None:
            return "fail: no timestamp"
        expected = hmac.new(secret.encode(), f"{ts}.{body}".encode(), hashlib.sha256).hexdigest()
        if not any(k == "v1" and hmac.compare_digest(expected, v) for k, v in parts):
            return "fail: signature"
        return "ok" if abs(time.time() - int(ts)) <= 300 else "fail: timestamp"
    if scheme == "hmac":
        expected = "sha512=" + base64.b64encode(hmac.new(secret.encode(), body.encode(), hashlib.sha512).digest()).decode()
        return "ok" if hmac.compare_digest(expected, headers.get("x-signature", "")) else "fail: signature"
    raise SystemExit(f"unknown scheme {scheme}")


def main():
    command, scheme = sys.argv[1], sys.argv[2]
    secret = os.environ["CONFORMANCE_SECRET"]
    for line in sys.stdin:
        line = line.rstrip("\n")
        if not line:
            continue
        if command == "sign":
            print(json.dumps({"headers": sign(scheme, secret, line), "body": line}))
        else:
            delivery = json.loads(line)
            print(verify(scheme, secret, delivery["headers"], delivery["body"]))


if __name__ == "__main__":
    main()
