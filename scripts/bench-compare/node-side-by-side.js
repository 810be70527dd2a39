'use strict'
// Builds of the Node package loaded side by side in one process,
// keyring.authenticate timed in rotating short samples (process CPU time), so
// that all see the same machine load: for comparing builds of two commits on a
// shared machine (docs/performance.md, "Bindings: 7aa1ce6 vs f5ccbb6").
// Each build is a directory with its index.js (and what it requires) and its
// built addon; the first is the one the others are compared with.
//   node scripts/bench-compare/node-side-by-side.js old=DIR new=DIR [fix=DIR] \
//       [--keys 100000] [--samples 151] [--calls 4000]
const crypto = require('node:crypto')
function arg(name, dflt) {
  const i = process.argv.indexOf(`--${name}`)
  return i > 0 ? process.argv[i + 1] : dflt
}
const KEYS = Number(arg('keys', 100_000))
const SAMPLES = Number(arg('samples', 151))
const CALLS = Number(arg('calls', 4000))
const DIRS = Object.fromEntries(process.argv.slice(2).filter((a) => /^[a-z]\w*=/.test(a)).map((a) => a.split(/=(.*)/s).slice(0, 2)))
const SIDES = Object.keys(DIRS)
if (SIDES.length < 2) throw new Error('name at least two builds: old=DIR new=DIR')
const admin = { account: 'acme', user: 'PADMIN1', role: 'admin' }
const readOnly = (i) => i % 3 === 0
const disabled = (i) => i % 16 === 5
const sides = {}
for (const s of SIDES) {
  const { Keyring } = require(require('node:path').resolve(DIRS[s], 'index.js'))
  const make = (options) => {
    const k = new Keyring(options)
    const tokens = new Array(KEYS)
    for (let i = 0; i < KEYS; i++) {
      const issued = k.createGeneralKey(admin, `key ${i}`, { readOnly: readOnly(i) })
      tokens[i] = issued.secret
      if (disabled(i)) k.disable(admin, issued.record.id)
    }
    return { k, tokens }
  }
  sides[s] = { plain: make({ auditCapacity: 1 }), limited: make({ auditCapacity: 1, rateLimits: { generalKey: { requests: 1_000_000, windowMs: 60_000 } } }) }
  console.log(`${s}: ${require('node:path').resolve(DIRS[s], 'index.js')}`)
}
function shuffled(list) {
  const a = Uint32Array.from(list)
  for (let i = a.length - 1; i > 0; i--) {
    const j = crypto.randomInt(i + 1)
    ;[a[i], a[j]] = [a[j], a[i]]
  }
  return a
}
const GET = { api: 'rest', method: 'GET' }
const POST = { api: 'rest', method: 'POST' }
const all = Array.from({ length: KEYS }, (_, i) => i)
const live = all.filter((i) => !disabled(i))
const workloads = {
  'accepted (every live key, shuffled, GET)': { order: shuffled(live), request: () => GET, ring: 'plain' },
  'mixed (every key, 1 in 8 POST)': { order: shuffled(all), request: (n) => (n % 8 === 7 ? POST : GET), ring: 'plain' },
  'accepted, rate limits': { order: shuffled(live), request: () => GET, ring: 'limited' },
  'accepted, 1,024 active keys': { order: Uint32Array.from({ length: 1024 }, (_, j) => live[(j * 977) % live.length]), request: () => GET, ring: 'plain' },
}
function runner(side, w) {
  const { k, tokens } = sides[side][w.ring]
  const len = w.order.length
  const reqs = Array.from({ length: len }, (_, n) => w.request(n))
  let pos = 0
  return () => {
    let ok = 0
    const c0 = process.cpuUsage()
    for (let n = 0; n < CALLS; n++) {
      const j = pos++ % len
      try {
        k.authenticate(tokens[w.order[j]], reqs[j])
        ok++
      } catch {}
    }
    const c = process.cpuUsage(c0)
    return ((c.user + c.system) * 1e3) / CALLS
  }
}
const median = (xs) => [...xs].sort((x, y) => x - y)[Math.floor(xs.length / 2)]
const q = (xs, f) => [...xs].sort((x, y) => x - y)[Math.floor(xs.length * f)]
console.log(`${KEYS} keys per keyring, ${SAMPLES} rotating samples of ${CALLS} calls per side, process CPU time`)
for (const [name, w] of Object.entries(workloads)) {
  const runs = Object.fromEntries(SIDES.map((s) => [s, runner(s, w)]))
  for (let i = 0; i < Math.ceil(w.order.length / CALLS) + 2; i++) for (const s of SIDES) runs[s]()
  const t = Object.fromEntries(SIDES.map((s) => [s, []]))
  const ratio = Object.fromEntries(SIDES.slice(1).map((s) => [s, []]))
  for (let r = 0; r < SAMPLES; r++) {
    const got = {}
    for (let i = 0; i < SIDES.length; i++) {
      const s = SIDES[(i + r) % SIDES.length]
      got[s] = runs[s]()
    }
    for (const s of SIDES) t[s].push(got[s])
    for (const s of SIDES.slice(1)) ratio[s].push(got[SIDES[0]] / got[s])
  }
  const parts = SIDES.map((s) => `${s} ${median(t[s]).toFixed(0)} ns`).join('  ')
  const rs = SIDES.slice(1).map((s) => `${SIDES[0]}/${s} ${median(ratio[s]).toFixed(3)} (${q(ratio[s], 0.25).toFixed(3)}–${q(ratio[s], 0.75).toFixed(3)})`).join('  ')
  console.log(`${name.padEnd(42)} ${parts}  ${rs}`)
}
