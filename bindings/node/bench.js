'use strict'
// Times keyring.authenticate against a pure-Node baseline, in the same run,
// over the same 100,000 keys:
//
//   baseline: a Map keyed by the hex SHA-256 of the key (node:crypto), then
//             crypto.timingSafeEqual on the digests, then the same disabled
//             and read-only checks, answering a principal object kept per key.
//   package:  keyring.authenticate(token, { api: 'rest', method }) — which also
//             checks the key's format, its API, expiry, the account's plan, and
//             notes last use.
//
// Two workloads, each the same request sequence for both, in alternating
// rounds (package, then baseline, right after each other, so that a burst of
// load on the machine hits both); the figures are the median round of each and
// the median of the per-round ratios:
//   accepted — the hot path: every live key in a shuffled order, each with a GET;
//   mixed    — every key, 1 in 8 requests a POST, so disabled keys (1 in 16)
//              and POSTs with read-only keys (1 in 3 keys) are refused; both
//              sides then pay for creating and throwing an Error.
// Then rate limits: the accepted workload on a keyring with rate limits (every
// call answers a new principal carrying `rateLimit`) against the same on the
// keyring without (the kept principal), alternating rounds again.
// Then a request's place: the accepted workload with `remoteAddress` and
// `path` in each request (what apikeys/express passes) against the same
// without, on one keyring, alternating rounds.
// Run: `npm run bench` (after `npm run build`). `--check` exits non-zero if the
// package is not at least 3× faster than the baseline on accepted requests.
//
// Options: --keys N (default 100000), --rounds N (default 15), --calls N per round (default 400000).

const crypto = require('node:crypto')
const { Keyring } = require('./index.js')

function arg(name, dflt) {
  const i = process.argv.indexOf(`--${name}`)
  return i > 0 ? Number(process.argv[i + 1]) : dflt
}
const KEYS = arg('keys', 100_000)
const ROUNDS = arg('rounds', 15)
const CALLS = arg('calls', 400_000)
const CHECK = process.argv.includes('--check')

// ---- the keys, made by the package ----
const keyring = new Keyring({ auditCapacity: 1 })
const admin = { account: 'acme', user: 'PADMIN1', role: 'admin' }
const tokens = new Array(KEYS)
const ids = new Array(KEYS)
const readOnly = new Array(KEYS)
let t0 = process.hrtime.bigint()
for (let i = 0; i < KEYS; i++) {
  readOnly[i] = i % 3 === 0
  const k = keyring.createGeneralKey(admin, `key ${i}`, { readOnly: readOnly[i] })
  tokens[i] = k.secret
  ids[i] = k.record.id
}
const disabled = new Array(KEYS).fill(false)
for (let i = 5; i < KEYS; i += 16) {
  keyring.disable(admin, ids[i])
  disabled[i] = true
}
const made = Number(process.hrtime.bigint() - t0) / 1e9

// ---- the baseline ----
class Unauthorized extends Error {}
class Forbidden extends Error {}
const baseline = new Map()
for (let i = 0; i < KEYS; i++) {
  const hex = crypto.createHash('sha256').update(tokens[i]).digest('hex')
  baseline.set(hex, {
    digest: Buffer.from(hex, 'hex'),
    disabled: disabled[i],
    readOnly: readOnly[i],
    principal: Object.freeze({ keyId: ids[i], kind: 'general', account: 'acme', access: readOnly[i] ? 'read_only' : 'full_access' }),
  })
}
function baselineAuthenticate(token, request) {
  const { api = 'rest', method = 'GET' } = request
  if (api !== 'rest') throw new Unauthorized('wrong API')
  const digest = crypto.createHash('sha256').update(token).digest()
  const rec = baseline.get(digest.toString('hex'))
  if (rec === undefined || !crypto.timingSafeEqual(rec.digest, digest)) throw new Unauthorized('unauthorized')
  if (rec.disabled) throw new Unauthorized('unauthorized')
  if (rec.readOnly && method !== 'GET' && method !== 'HEAD') throw new Forbidden('forbidden')
  return rec.principal
}

// ---- the workloads: the same for both ----
// accepted: every live key, shuffled, each with a request it may make (GET).
// mixed:    every key, shuffled, 1 in 8 a POST: disabled keys (1 in 16) and
//           POSTs with read-only keys (1 in 3 keys) are refused, with an Error.
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
const workloads = {
  accepted: { order: shuffled(all.filter((i) => !disabled[i])), request: () => GET },
  mixed: { order: shuffled(all), request: (n) => (n % 8 === 7 ? POST : GET) },
}

function run(authenticate, { order, request }, calls, keys = tokens) {
  let ok = 0
  let refused = 0
  const len = order.length
  const reqs = Array.from({ length: len }, (_, n) => request(n))
  const start = process.hrtime.bigint()
  for (let n = 0; n < calls; n++) {
    const k = n % len
    try {
      authenticate(keys[order[k]], reqs[k])
      ok++
    } catch {
      refused++
    }
  }
  const ns = Number(process.hrtime.bigint() - start)
  return { nsPerCall: ns / calls, ok, refused }
}

const pkg = (token, request) => keyring.authenticate(token, request)

// The two must agree on every answer before they are timed.
for (const w of Object.values(workloads)) {
  for (let n = 0; n < w.order.length; n++) {
    const i = w.order[n]
    const outcome = (f) => {
      try {
        return f(tokens[i], w.request(n)).keyId
      } catch (e) {
        return e.code === 'ERR_FORBIDDEN' || e instanceof Forbidden ? 'forbidden' : 'unauthorized'
      }
    }
    const a = outcome(pkg)
    const b = outcome(baselineAuthenticate)
    if (a !== b) throw new Error(`the package and the baseline disagree on key ${i}: ${a} vs ${b}`)
  }
}

const median = (xs) => [...xs].sort((x, y) => x - y)[Math.floor(xs.length / 2)]
console.log(`apikeys Node bench — node ${process.version}, ${process.platform}-${process.arch}, ${require('node:os').cpus().length} CPUs`)
console.log(`${KEYS} keys (made in ${made.toFixed(1)} s), ${ROUNDS} alternating rounds of ${CALLS} calls per workload, median round`)
const ratios = {}
for (const [name, w] of Object.entries(workloads)) {
  run(pkg, w, Math.min(CALLS, 200_000))
  run(baselineAuthenticate, w, Math.min(CALLS, 200_000))
  const times = { package: [], baseline: [], ratio: [] }
  let counts
  for (let r = 0; r < ROUNDS; r++) {
    const p = run(pkg, w, CALLS)
    const b = run(baselineAuthenticate, w, CALLS)
    if (p.ok !== b.ok || p.refused !== b.refused) throw new Error('the two runs answered differently')
    counts = p
    times.package.push(p.nsPerCall)
    times.baseline.push(b.nsPerCall)
    times.ratio.push(b.nsPerCall / p.nsPerCall)
  }
  const p = median(times.package)
  const b = median(times.baseline)
  const ratio = median(times.ratio)
  ratios[name] = ratio
  console.log(`${name}: ${counts.ok} accepted, ${counts.refused} refused per round`)
  console.log(`  package  keyring.authenticate   ${p.toFixed(0).padStart(6)} ns/call  ${(1e3 / p).toFixed(2)} M calls/s`)
  console.log(`  baseline Map + node:crypto      ${b.toFixed(0).padStart(6)} ns/call  ${(1e3 / b).toFixed(2)} M calls/s`)
  console.log(`  the package is ${ratio.toFixed(2)}× the baseline's speed (median of the rounds' ratios)`)
}
// ---- rate limits: the same keys' shape on a keyring that enforces a limit ----
// (a limit no workload reaches: every call is accepted and carries its status)
const limitedKeyring = new Keyring({ auditCapacity: 1, rateLimits: { generalKey: { requests: 1_000_000, windowMs: 60_000 } } })
const limitedTokens = new Array(KEYS)
for (let i = 0; i < KEYS; i++) {
  if (disabled[i]) continue
  limitedTokens[i] = limitedKeyring.createGeneralKey(admin, `key ${i}`, { readOnly: readOnly[i] }).secret
}
const limitedPkg = (token, request) => limitedKeyring.authenticate(token, request)
// The addon's call alone (no principal object): what the limiter costs in Rust.
const statusOut = new Float64Array(4)
const limitedRaw = (token) => limitedKeyring._authenticateLimited(token, 1, undefined, statusOut)
{
  const w = workloads.accepted
  const p0 = limitedPkg(limitedTokens[w.order[0]], GET)
  if (p0.rateLimit === null || p0.rateLimit.limit !== 1_000_000) throw new Error('the limited keyring reports no status')
  if (pkg(tokens[w.order[0]], GET).rateLimit !== null) throw new Error('the keyring without limits reports a status')
  run(pkg, w, Math.min(CALLS, 200_000))
  run(limitedPkg, w, Math.min(CALLS, 200_000), limitedTokens)
  const without = []
  const withLimits = []
  const raw = []
  const extra = []
  for (let r = 0; r < ROUNDS; r++) {
    const a = run(pkg, w, CALLS)
    const b = run(limitedPkg, w, CALLS, limitedTokens)
    const c = run(limitedRaw, w, CALLS, limitedTokens)
    if (b.refused !== 0 || c.refused !== 0) throw new Error('the limited keyring refused a call')
    without.push(a.nsPerCall)
    withLimits.push(b.nsPerCall)
    raw.push(b.nsPerCall - c.nsPerCall)
    extra.push(b.nsPerCall - a.nsPerCall)
  }
  const a = median(without)
  const b = median(withLimits)
  console.log('rate limits: accepted workload, a limit of 1,000,000 a minute per key (never reached)')
  console.log(`  without limits (kept principal)        ${a.toFixed(0).padStart(6)} ns/call  ${(1e3 / a).toFixed(2)} M calls/s`)
  console.log(`  with limits (principal + rateLimit)    ${b.toFixed(0).padStart(6)} ns/call  ${(1e3 / b).toFixed(2)} M calls/s`)
  console.log(`  limits cost ${median(extra).toFixed(0)} ns/call (median of the rounds' differences), ${((b / a - 1) * 100).toFixed(0)} %;`)
  console.log(`  of which the per-call principal object (JavaScript) ${median(raw).toFixed(0)} ns, the rest the limiter (Rust)`)
}

// ---- a request's place: remoteAddress and path, kept with the key's last use ----
{
  const w = workloads.accepted
  const PLACED = { api: 'rest', method: 'GET', remoteAddress: '192.0.2.7', path: '/incidents?statuses[]=triggered' }
  const placed = { ...w, request: () => PLACED }
  run(pkg, w, Math.min(CALLS, 200_000))
  run(pkg, placed, Math.min(CALLS, 200_000))
  const without = []
  const withPlace = []
  const extra = []
  for (let r = 0; r < ROUNDS; r++) {
    const a = run(pkg, w, CALLS)
    const b = run(pkg, placed, CALLS)
    if (b.refused !== 0) throw new Error('a request with a place was refused')
    without.push(a.nsPerCall)
    withPlace.push(b.nsPerCall)
    extra.push(b.nsPerCall - a.nsPerCall)
  }
  const a = median(without)
  const b = median(withPlace)
  console.log("a request's place: accepted workload, { api, method } against { api, method, remoteAddress, path }")
  console.log(`  without a place   ${a.toFixed(0).padStart(6)} ns/call  ${(1e3 / a).toFixed(2)} M calls/s`)
  console.log(`  with a place      ${b.toFixed(0).padStart(6)} ns/call  ${(1e3 / b).toFixed(2)} M calls/s`)
  console.log(`  the place costs ${median(extra).toFixed(0)} ns/call (median of the rounds' differences)`)
}

if (CHECK && ratios.accepted < 3) {
  console.error(`bench: ${ratios.accepted.toFixed(2)}× on accepted requests, below the 3× target`)
  process.exit(1)
}
