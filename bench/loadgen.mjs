// Load generator for fila's ack path: Node's built-in fetch (undici, keep-alive), no dependencies.
// Sends unique Stripe-signed events (routed types, so every one is stored and enqueued), each with the
// customer's email and name, so that the jobs the stack runs meanwhile succeed as a real customer's do.
//
//   node bench/loadgen.mjs closed URL CONCURRENCY REQUESTS MAX_SECONDS   closed loop, N in flight
//   node bench/loadgen.mjs open URL RATE SECONDS MAX_IN_FLIGHT           open loop at RATE req/s
//
// Prints one JSON object. Talks only to the URL given (the bench passes 127.0.0.1).
import crypto from 'node:crypto';
import { performance } from 'node:perf_hooks';

const SECRET = process.env.STRIPE_WEBHOOK_SECRET || 'whsec_fila_local_stripe';
const TYPES = ['payment_intent.succeeded', 'invoice.paid', 'customer.created', 'customer.updated'];
const tag = crypto.randomBytes(4).toString('hex');
let seq = 0;

function signedEvent() {
  const i = seq++;
  const body = JSON.stringify({
    id: `evt_${tag}_${String(i).padStart(7, '0')}`, object: 'event', type: TYPES[i % TYPES.length],
    created: Math.floor(Date.now() / 1000), api_version: '2024-06-20', livemode: false,
    data: { object: { id: `pi_${tag}${i}`, object: 'payment_intent', amount: 1000 + (i % 9000),
      currency: 'usd', customer: `cus_${(i * 7919) % 100000}`, status: 'succeeded',
      receipt_email: `customer${i % 1000}@example.com`,
      metadata: { customer_name: 'Ada Lovelace', order_id: `ord_${i}`, source: 'bench' } } },
  });
  const t = Math.floor(Date.now() / 1000);
  const v1 = crypto.createHmac('sha256', SECRET).update(`${t}.${body}`).digest('hex');
  return { body, headers: { 'content-type': 'application/json', 'stripe-signature': `t=${t},v1=${v1}` } };
}

function stats(values) {
  if (!values.length) return null;
  const a = Float64Array.from(values).sort();
  const q = (p) => a[Math.min(a.length - 1, Math.max(0, Math.ceil(p * a.length) - 1))];
  const r = (x) => Number(x.toFixed(3));
  return { n: a.length, p50: r(q(0.5)), p95: r(q(0.95)), p99: r(q(0.99)), max: r(a[a.length - 1]) };
}

async function post(url, latencies, errors) {
  const { body, headers } = signedEvent();
  const start = performance.now();
  try {
    const res = await fetch(url, { method: 'POST', headers, body });
    const text = await res.text();
    latencies.push(performance.now() - start);
    if (res.status !== 200) errors.push(`${res.status} ${text.slice(0, 100)}`);
  } catch (err) {
    errors.push(String(err && err.message));
  }
}

async function closed(url, concurrency, requests, maxSeconds) {
  const latencies = [], errors = [];
  let sent = 0;
  const t0 = performance.now(), deadline = t0 + maxSeconds * 1000;
  async function user() {
    while (sent < requests && performance.now() < deadline) { sent++; await post(url, latencies, errors); }
  }
  await Promise.all(Array.from({ length: concurrency }, user));
  const wall = (performance.now() - t0) / 1000;
  return { mode: 'closed', concurrency, sent, ok: latencies.length - errors.length, errors: errors.length,
    error_samples: errors.slice(0, 3), seconds: wall, rps: latencies.length / wall, latency_ms: stats(latencies) };
}

async function open(url, rate, seconds, maxInFlight) {
  const latencies = [], errors = [];
  let sent = 0, inFlight = 0, dropped = 0;
  const t0 = performance.now(), pending = [];
  while (performance.now() - t0 < seconds * 1000) {
    const due = Math.floor(((performance.now() - t0) / 1000) * rate);
    while (sent + dropped < due) {
      if (inFlight >= maxInFlight) { dropped++; continue; }
      sent++; inFlight++;
      pending.push(post(url, latencies, errors).finally(() => { inFlight--; }));
    }
    await new Promise((r) => setTimeout(r, 2));
  }
  await Promise.all(pending);
  const wall = (performance.now() - t0) / 1000;
  return { mode: 'open', target_rps: rate, sent, not_sent_over_in_flight_cap: dropped,
    ok: latencies.length - errors.length, errors: errors.length, error_samples: errors.slice(0, 3),
    seconds: wall, rps: (latencies.length - errors.length) / wall, latency_ms: stats(latencies) };
}

const [mode, url, a, b, c] = process.argv.slice(2);
const result = mode === 'closed' ? await closed(url, +a, +b, +c) : await open(url, +a, +b, +c);
console.log(JSON.stringify(result));
