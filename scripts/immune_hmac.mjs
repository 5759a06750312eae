#!/usr/bin/env node
// IMMUNE webhook signatures, as Lymph's `verify` stage checks them (node 20, no npm packages).
//
//   SECRET=... node immune_hmac.mjs sign [--prefix] < body
//       prints `x-immune-signature: <64 lowercase hex>` (HMAC-SHA256 of the exact stdin bytes).
//       IMMUNE sends the bare hex (see examples/deliveries.ndjson); --prefix prints `sha256=<hex>`,
//       which Lymph also accepts.
//   SECRET=... node immune_hmac.mjs verify '<header value>' < body
//       exit 0 if the value (bare hex or `sha256=<hex>`, 64 hex digits, any case; a full
//       `x-immune-signature: ...` line is also accepted) matches the body, 1 if not, 2 on usage.
//
// The body is read as raw bytes (no newline is added or stripped): sign exactly what is sent.
import { createHmac, timingSafeEqual } from 'node:crypto';
import { readFileSync } from 'node:fs';

const HEADER = 'x-immune-signature';

function usage(msg) {
  if (msg) process.stderr.write(`immune_hmac: ${msg}\n`);
  process.stderr.write('usage: SECRET=... node immune_hmac.mjs sign [--prefix] < body\n' +
    "       SECRET=... node immune_hmac.mjs verify '<header value>' < body\n");
  process.exit(2);
}

const secret = process.env.SECRET;
if (secret === undefined || secret === '') usage('set SECRET');

const [mode, arg] = process.argv.slice(2);
const body = readFileSync(0); // Buffer with stdin's exact bytes
const mac = createHmac('sha256', secret).update(body).digest();

if (mode === 'sign') {
  if (arg !== undefined && arg !== '--prefix') usage(`unknown option ${arg}`);
  const hex = mac.toString('hex');
  process.stdout.write(`${HEADER}: ${arg === '--prefix' ? 'sha256=' : ''}${hex}\n`);
  process.exit(0);
} else if (mode === 'verify') {
  if (arg === undefined) usage('verify needs the header value');
  let value = arg.trim();
  const lower = value.toLowerCase();
  if (lower.startsWith(`${HEADER}:`)) value = value.slice(HEADER.length + 1).trim();
  if (value.startsWith('sha256=')) value = value.slice('sha256='.length);
  if (!/^[0-9a-fA-F]{64}$/.test(value)) {
    process.stderr.write('malformed_signature\n');
    process.exit(1);
  }
  const provided = Buffer.from(value, 'hex'); // 32 bytes, same length as mac
  const ok = timingSafeEqual(provided, mac);
  process.stderr.write(ok ? 'ok\n' : 'bad_signature\n');
  process.exit(ok ? 0 : 1);
} else {
  usage(mode === undefined ? undefined : `unknown mode ${mode}`);
}
