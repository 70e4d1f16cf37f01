'use strict';
// Bull's own rate limiter, for bench/rate_limit.py: JOBS no-op jobs on a queue with
// limiter {max: MAX, duration: DURATION_MS}, processed at CONCURRENCY; prints each job's start time
// (ms since epoch) as JSON. Runs inside a temporary copy of the seed system (its node_modules).
const Queue = require('bull');

const JOBS = Number(process.env.JOBS || 300);
const MAX = Number(process.env.MAX || 14);
const DURATION_MS = Number(process.env.DURATION_MS || 1000);
const CONCURRENCY = Number(process.env.CONCURRENCY || 5);
const redis = { host: '127.0.0.1', port: Number(process.env.REDIS_PORT || 6391) };

async function main() {
  const queue = new Queue(`limited-${Date.now()}`, { redis, limiter: { max: MAX, duration: DURATION_MS } });
  await queue.addBulk(Array.from({ length: JOBS }, (_, i) => ({ data: { i } })));
  const starts = [];
  const done = new Promise((resolve) => {
    queue.process(CONCURRENCY, async () => {
      starts.push(Date.now());
      if (starts.length === JOBS) resolve();
    });
  });
  await done;
  process.stdout.write(JSON.stringify({ starts }));
  await queue.close();
}

main().catch((err) => { console.error(err); process.exit(1); });
