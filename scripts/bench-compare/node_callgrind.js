'use strict'
// One build of the Node package, a fixed number of keyring.authenticate
// calls, for counting instructions (and simulated cache misses) with
// callgrind, which counts the same on a loaded machine as on a quiet one
// (docs/performance.md, "Bindings: 7aa1ce6 vs f5ccbb6"). The keyring and the
// workloads are those of node-side-by-side.js (100,000 keys), shuffled by a
// fixed seed so that every run makes the same calls.
//   RUSTFLAGS="--cfg rustix_use_libc" npx napi build --platform --release ...  # valgrind cannot follow rustix's vDSO parsing otherwise
//   valgrind --tool=callgrind --cache-sim=yes --callgrind-out-file=OUT \
//       node --jitless scripts/bench-compare/node_callgrind.js DIR WORKLOAD CALLS [KEYS]
// Run each workload at two call counts: (total at the larger - total at the
// smaller) / (difference in calls) is the cost of one call. WORKLOAD is
// `accepted` (every live key, shuffled, GET), `mixed` (every key, 1 in 8
// POST), `limited` (accepted, with rate limits) or `active` (accepted, 1,024
// active keys). KEYS: 100,000 unless given (fewer make the run shorter; the
// instructions of a call over 1,024 active keys hardly depend on it).
// `--jitless`: valgrind runs V8's interpreter without trouble;
// the JavaScript costs more than with the JIT, alike for every build.
const path = require('node:path')
const [dir, workload, callsArg] = process.argv.slice(2)
const CALLS = Number(callsArg)
const KEYS = Number(process.argv[5] ?? 100_000)
const { Keyring } = require(path.resolve(dir, 'index.js'))
const admin = { account: 'acme', user: 'PADMIN1', role: 'admin' }
const readOnly = (i) => i % 3 === 0
const disabled = (i) => i % 16 === 5
const options = workload === 'limited'
  ? { auditCapacity: 1, rateLimits: { generalKey: { requests: 1_000_000, windowMs: 60_000 } } }
  : { auditCapacity: 1 }
const k = new Keyring(options)
const tokens = new Array(KEYS)
for (let i = 0; i < KEYS; i++) {
  const issued = k.createGeneralKey(admin, `key ${i}`, { readOnly: readOnly(i) })
  tokens[i] = issued.secret
  if (disabled(i)) k.disable(admin, issued.record.id)
}
let seed = 7
function rand(n) {
  seed = (seed * 1103515245 + 12345) % 2147483648
  return seed % n
}
function shuffled(list) {
  const a = Uint32Array.from(list)
  for (let i = a.length - 1; i > 0; i--) {
    const j = rand(i + 1)
    ;[a[i], a[j]] = [a[j], a[i]]
  }
  return a
}
const GET = { api: 'rest', method: 'GET' }
const POST = { api: 'rest', method: 'POST' }
const all = Array.from({ length: KEYS }, (_, i) => i)
const live = all.filter((i) => !disabled(i))
const w = {
  accepted: { order: () => shuffled(live), request: () => GET },
  mixed: { order: () => shuffled(all), request: (n) => (n % 8 === 7 ? POST : GET) },
  limited: { order: () => shuffled(live), request: () => GET },
  active: { order: () => Uint32Array.from({ length: 1024 }, (_, j) => live[(j * 977) % live.length]), request: () => GET },
}[workload]
const order = w.order()
const reqs = Array.from({ length: order.length }, (_, n) => w.request(n))
let pos = 0
function run(calls) {
  let ok = 0
  for (let n = 0; n < calls; n++) {
    const j = pos++ % order.length
    try {
      k.authenticate(tokens[order[j]], reqs[j])
      ok++
    } catch {}
  }
  return ok
}
run(Math.max(order.length, 20_000)) // warm-up: every key once (first uses write the last use)
pos = 0
run(CALLS)
