'use strict'
// What apikeys/express adds to a request, next to what a no-op middleware
// adds and what keyring.authenticate costs, all in one run, with no socket:
// each request is a real http.IncomingMessage (its rawHeaders as node's
// parser fills them; an Events body pushed into the stream) and a real
// http.ServerResponse (with no socket, so what it writes is kept in memory),
// handed to the Express app as node's http server hands them: `app(req, res)`.
// Everything Express and the middleware do runs as in a server; the parser
// and the socket writes do not (the same in every case).
//
//   node bench-adapters.js              # the figures in docs/performance.md ("Adapters")
//   node bench-adapters.js --quick      # a smoke run (scripts/test-node.sh); or APIKEYS_BENCH_QUICK=1
//   node bench-adapters.js --loop NAME [--calls N]   # one case only, for `node --cpu-prof`
//   node bench-adapters.js --before REV  # adds the middleware of git revision REV (cases *-before)
//   node bench-adapters.js --evict BYTES # caches made cold before every request (below)
//
// Options: --calls N requests per case per round (default 200), --rounds N (default 151),
// --only a,b (cases whose names contain one of these).
//
// Cases (the same handler in every case of a table):
//   REST (`GET /incidents`, the route needing incidents.read; the handler answers res.json):
//     rest-bare     app.get('/incidents', handler)
//     rest-noop     app.get('/incidents', (req, res, next) => next(), handler)
//     rest-apikeys  app.get('/incidents', auth.rest('incidents.read'), handler)
//   Events (`POST /v2/enqueue`, a 1 KiB JSON event; the handler reads req.body and answers 202):
//     events-bare           express.json(), handler
//     events-noop           express.json(), a no-op, handler
//     events-apikeys        auth.events(), handler (the middleware reads and parses the body)
//     events-json-apikeys   express.json(), auth.events(), handler (the parsed body judged again)
//   The REST middleware function alone (mw-noop, mw-apikeys): called in a loop
//   on one request, `next` doing nothing.
//   The binding alone: keyring.authenticate (REST with the scope; Events),
//   eventRoutingKey on the 1 KiB body, tokenFromAuthorization.
//
// Each case runs in a worker thread of its own (one Express app per V8
// isolate, as in a server); each round runs every case in turn, the order
// rotating each round, the main thread saying when; a case's
// figure is its fastest round and its median round, in µs of process CPU time
// per request (process.cpuUsage: user + system, the load of other processes
// does not count), and the fastest round by the wall clock.
//
// --evict BYTES walks a buffer of BYTES (one load per 64-byte line, the same
// walk in every case) before every request, so that each request starts with
// the caches as a server leaves them between requests (its parser, event
// loop and kernel having run in between); each request is then timed alone
// by the process's CPU time (the walk outside the clock, the clock's own
// read in every case alike), and a round's figure is the sum of its
// requests' times. With --loop the walk runs between the requests too.

const http = require('node:http')
const os = require('node:os')
const { Worker, isMainThread, parentPort, workerData } = require('node:worker_threads')
const express = require(require.resolve('express', { paths: [__dirname] }))
const { Keyring, eventRoutingKey } = require('./index.js')
const { apikeys, tokenFromAuthorization } = require('./express.js')

// The middleware as it was at another git revision (--before REV), loaded
// beside the current one so that one run times both.
function loadBefore(rev) {
  const { execFileSync } = require('node:child_process')
  const Module = require('node:module')
  const path = require('node:path')
  const src = execFileSync('git', ['show', `${rev}:bindings/node/express.js`], { cwd: __dirname, encoding: 'utf8' })
  const filename = path.join(__dirname, `express.${rev.replace(/[^A-Za-z0-9]/g, '_')}.js`)
  const m = new Module(filename, module)
  m.filename = filename
  m.paths = Module._nodeModulePaths(__dirname)
  m._compile(src, filename)
  return m.exports.apikeys
}

function arg(name, dflt) {
  const i = process.argv.indexOf(`--${name}`)
  return i > 0 ? process.argv[i + 1] : dflt
}
const QUICK = process.argv.includes('--quick') || process.env.APIKEYS_BENCH_QUICK === '1'
// Many short rounds: the fastest is the one least disturbed by other processes.
const CALLS = Number(arg('calls', QUICK ? 100 : 200))
const ROUNDS = Number(arg('rounds', QUICK ? 2 : 151))
const ONLY = arg('only', '')
const LOOP = arg('loop', '')
const BEFORE = arg('before', '')
const apikeysBefore = BEFORE ? loadBefore(BEFORE) : null
const EVICT_BYTES = Number(arg('evict', 0))
if (process.argv.includes('--evict') && !(EVICT_BYTES >= 64)) {
  console.error('--evict BYTES: a number of bytes, at least 64')
  process.exit(2)
}
const EVICT = EVICT_BYTES ? new Uint8Array(EVICT_BYTES).map((_, i) => i & 0xff) : null
let evictSink = 0
// One load per 64-byte line of EVICT.
function evict() {
  let sum = 0
  for (let i = 0; i < EVICT.length; i += 64) sum += EVICT[i]
  evictSink += sum
}
// With --evict: `one()` n times, each after a walk and timed alone (CPU µs, summed).
async function evicted(n, one) {
  let spent = 0
  for (let i = 0; i < n; i++) {
    evict()
    const c0 = cpuNow()
    const p = one()
    if (p !== undefined) await p
    spent += cpuNow() - c0
  }
  return spent
}

const keyring = new Keyring()
const admin = { account: 'acme', user: 'PADMIN1', role: 'admin' }
const restKey = keyring.createGeneralKey(admin, 'bench').secret
const eventsKey = keyring.createIntegrationKey(admin, 'PSERVICE', 'bench').secret

// A PagerDuty Events v2 trigger of exactly 1 KiB.
function eventBody(key, size = 1024) {
  const event = { routing_key: key, event_action: 'trigger', payload: { summary: '', source: 'bench.example', severity: 'critical' } }
  event.payload.summary = 'x'.repeat(size - Buffer.byteLength(JSON.stringify(event)))
  const body = Buffer.from(JSON.stringify(event))
  if (body.length !== size) throw new Error(`event of ${body.length} bytes`)
  return body
}
const EVENT = eventBody(eventsKey)

const REST_RAW = ['Host', '127.0.0.1:18182', 'User-Agent', 'wrk', 'Authorization', `Token token=${restKey}`]
const EVENTS_RAW = [
  'Host', '127.0.0.1:18182',
  'User-Agent', 'wrk',
  'Content-Type', 'application/json',
  'Content-Length', String(EVENT.length),
]

// The socket stand-in the request's stream consults: open and readable (as
// on a kept-alive connection; body parsers look), its resume() a no-op (the
// body, if any, is pushed into the request whole before the app runs).
const SOCKET = {
  readable: true,
  writable: true,
  destroyed: false,
  _paused: false,
  remoteAddress: '127.0.0.1',
  encrypted: false,
  resume() {},
  pause() {},
}

function request(method, url, rawHeaders, body) {
  const req = new http.IncomingMessage(SOCKET)
  req.method = method
  req.url = url
  req.httpVersionMajor = 1
  req.httpVersionMinor = 1
  req.httpVersion = '1.1'
  // What node's parser does: req.headers is then built from these on first use.
  req._addHeaderLines(rawHeaders, rawHeaders.length)
  if (body !== undefined) req.push(body)
  req.push(null)
  req.complete = true
  return req
}

// ---- the apps ----
// Every answer ends with res.end (Express's res.json and send, the
// middleware's refusals): counted there, and the request in flight resolved.
let answered = 0
let lastStatus = 0
let wake = null
const end = http.ServerResponse.prototype.end
http.ServerResponse.prototype.end = function benchEnd(...args) {
  const r = end.apply(this, args)
  answered++
  lastStatus = this.statusCode
  if (wake !== null) {
    const w = wake
    wake = null
    w()
  }
  return r
}
const REST_ANSWER = { incidents: [], limit: 25, offset: 0, more: false }
const ACK = { status: 'success', message: 'Event processed' }
let seen // the principal the last REST handler took
const restHandler = (req, res) => {
  seen = req.apikey // what a handler does to take the principal
  res.json(REST_ANSWER)
}
const eventsHandler = (req, res) => {
  res.status(typeof req.body?.routing_key === 'string' ? 202 : 400).json(ACK)
}
const noop = (req, res, next) => next()

function app(kind) {
  const a = express()
  const auth = (kind.endsWith('-before') ? apikeysBefore : apikeys)(keyring)
  if (kind === 'rest-bare') a.get('/incidents', restHandler)
  else if (kind === 'rest-noop') a.get('/incidents', noop, restHandler)
  else if (kind === 'rest-apikeys' || kind === 'rest-before') a.get('/incidents', auth.rest('incidents.read'), restHandler)
  else if (kind === 'events-bare') a.post('/v2/enqueue', express.json(), eventsHandler)
  else if (kind === 'events-noop') a.post('/v2/enqueue', express.json(), noop, eventsHandler)
  else if (kind === 'events-apikeys' || kind === 'events-before') a.post('/v2/enqueue', auth.events(), eventsHandler)
  else if (kind === 'events-json-apikeys') a.post('/v2/enqueue', express.json(), auth.events(), eventsHandler)
  else throw new Error(kind)
  return a
}

// One request through an app; resolves when it is answered (REST: at once).
function once(a, method, url, raw, body) {
  const req = request(method, url, raw, body)
  const res = new http.ServerResponse(req)
  return new Promise((resolve) => {
    wake = resolve
    a(req, res)
  })
}

// After each request, one turn of the event loop (as a server takes one per
// request read): what the request left queued (its stream's end, timers)
// runs within the case that queued it.
const turn = () => new Promise(setImmediate)

function restCase(kind) {
  const a = app(kind)
  const run = async (n) => {
    const before = answered
    let spent
    if (EVICT) {
      spent = await evicted(n, () => {
        const req = request('GET', '/incidents', REST_RAW)
        a(req, new http.ServerResponse(req))
        return turn()
      })
    } else {
      for (let i = 0; i < n; i++) {
        const req = request('GET', '/incidents', REST_RAW)
        a(req, new http.ServerResponse(req)) // answered before it returns: nothing to wait for
        await turn()
      }
    }
    if (answered - before !== n) throw new Error(`${kind}: ${answered - before} of ${n} requests answered`)
    return spent
  }
  const check = async () => {
    await once(a, 'GET', '/incidents', REST_RAW)
    if (lastStatus !== 200) throw new Error(`${kind} answered ${lastStatus}`)
    if (kind === 'rest-apikeys' || kind === 'rest-before') {
      if (seen?.account !== 'acme') throw new Error(`${kind}: the handler got no principal`)
      await once(a, 'GET', '/incidents', REST_RAW.slice(0, 4))
      if (lastStatus !== 401) throw new Error(`${kind} answered ${lastStatus} without a key`)
    }
  }
  return { table: 'Express, REST', run, check }
}

function eventsCase(kind) {
  const a = app(kind)
  const run = async (n) => {
    if (EVICT) return evicted(n, () => once(a, 'POST', '/v2/enqueue', EVENTS_RAW, EVENT).then(turn))
    for (let i = 0; i < n; i++) {
      await once(a, 'POST', '/v2/enqueue', EVENTS_RAW, EVENT)
      await turn()
    }
  }
  const check = async () => {
    await once(a, 'POST', '/v2/enqueue', EVENTS_RAW, EVENT)
    if (lastStatus !== 202) throw new Error(`${kind} answered ${lastStatus}`)
    if (kind.includes('apikeys') || kind.includes('before')) {
      await once(a, 'POST', '/v2/enqueue', EVENTS_RAW, Buffer.from(EVENT.toString().replace(eventsKey, 'R'.repeat(32))))
      if (lastStatus < 400) throw new Error(`${kind} answered ${lastStatus} to an unknown key`)
    }
  }
  return { table: 'Express, Events 1 KiB', run, check }
}

// The REST middleware function alone, called as Express calls it, on one
// request that has been through Express's prototypes; `next` does nothing.
function middlewareCase(kind) {
  const a = express()
  const req = request('GET', '/incidents', REST_RAW)
  const res = new http.ServerResponse(req)
  Object.setPrototypeOf(req, a.request)
  Object.setPrototypeOf(res, a.response)
  req.res = res
  res.req = req
  res.locals = Object.create(null) // as app.handle does
  let nexts = 0
  const next = () => {
    nexts++
  }
  const mw = kind === 'noop' ? noop : (kind === 'before' ? apikeysBefore : apikeys)(keyring).rest('incidents.read')
  const run = (n) => {
    const before = nexts
    if (EVICT) {
      return evicted(n, () => {
        mw(req, res, next)
      }).then((spent) => {
        if (nexts - before !== n) throw new Error(`middleware ${kind}: next() called ${nexts - before} times of ${n}`)
        return spent
      })
    }
    for (let i = 0; i < n; i++) mw(req, res, next)
    if (nexts - before !== n) throw new Error(`middleware ${kind}: next() called ${nexts - before} times of ${n}`)
  }
  return { table: 'the REST middleware function alone', run, check: async () => run(1) }
}

function coreCase(fn) {
  const run = (n) => {
    if (EVICT) return evicted(n, () => { fn() })
    for (let i = 0; i < n; i++) fn()
  }
  return { table: 'the binding alone', run, check: async () => fn() }
}

const restRequest = { api: 'rest', method: 'GET', scope: 'incidents.read' }
const eventsRequest = { api: 'events' }
const header = `Token token=${restKey}`
// Factories: a case is built only where it runs.
const all = {
  'rest-bare': () => restCase('rest-bare'),
  'rest-noop': () => restCase('rest-noop'),
  'rest-apikeys': () => restCase('rest-apikeys'),
  'events-bare': () => eventsCase('events-bare'),
  'events-noop': () => eventsCase('events-noop'),
  'events-apikeys': () => eventsCase('events-apikeys'),
  'events-json-apikeys': () => eventsCase('events-json-apikeys'),
  'mw-noop': () => middlewareCase('noop'),
  'mw-apikeys': () => middlewareCase('apikeys'),
  ...(BEFORE
    ? {
        'rest-before': () => restCase('rest-before'),
        'events-before': () => eventsCase('events-before'),
        'mw-before': () => middlewareCase('before'),
      }
    : {}),
  'authenticate-rest': () => coreCase(() => keyring.authenticate(restKey, restRequest)),
  'authenticate-events': () => coreCase(() => keyring.authenticate(eventsKey, eventsRequest)),
  'eventRoutingKey-1KiB': () => coreCase(() => eventRoutingKey(EVENT)),
  tokenFromAuthorization: () => coreCase(() => tokenFromAuthorization(header)),
}
const TABLES = {
  rest: 'Express, REST',
  events: 'Express, Events 1 KiB',
  mw: 'the REST middleware function alone',
}
const tableOf = (name) => TABLES[name.split('-')[0]] ?? 'the binding alone'
const names = Object.keys(all).filter((name) => !ONLY || ONLY.split(',').some((w) => name.includes(w)))

const load = () => `load average ${os.loadavg().map((x) => x.toFixed(2)).join(' ')}`
const cpuNow = () => {
  const u = process.cpuUsage()
  return u.user + u.system // µs
}
const median = (v) => {
  const s = [...v].sort((a, b) => a - b)
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2
}

// Each case runs in a worker thread of its own: its own V8 isolate, so one
// Express app per isolate, as in a server (seven apps in one isolate would
// share Express's inline caches across seven request shapes, and each
// case's speed would depend on the others). The main thread only says when.
async function worker() {
  const c = all[workerData]()
  await c.check()
  parentPort.on('message', async (n) => {
    const c0 = cpuNow()
    const t0 = process.hrtime.bigint()
    const spent = await c.run(n)
    if (EVICT) parentPort.postMessage({ wall: spent / n, cpu: spent / n }) // the requests alone
    else parentPort.postMessage({ wall: Number(process.hrtime.bigint() - t0) / 1000 / n, cpu: (cpuNow() - c0) / n })
  })
  parentPort.postMessage('ready')
}

function start(name) {
  const w = new Worker(__filename, { workerData: name, argv: process.argv.slice(2) })
  let pending = null
  w.on('message', (m) => {
    const p = pending
    pending = null
    p.resolve(m)
  })
  w.on('error', (e) => {
    if (pending) pending.reject(new Error(`${name}: ${e.message}`))
    else throw e
  })
  const ask = (n) =>
    new Promise((resolve, reject) => {
      pending = { resolve, reject }
      if (n !== undefined) w.postMessage(n)
    })
  return { ready: ask(), run: ask, stop: () => w.terminate() }
}

async function main() {
  if (LOOP) {
    const c = all[LOOP]?.()
    if (!c) throw new Error(`no case ${LOOP}`)
    await c.check()
    await c.run(500)
    await c.run(Number(arg('calls', 200000)))
    return
  }
  const workers = Object.fromEntries(names.map((n) => [n, start(n)]))
  for (const n of names) await workers[n].ready
  const cpu = Object.fromEntries(names.map((n) => [n, []]))
  const wall = Object.fromEntries(names.map((n) => [n, []]))
  console.log(
    `apikeys/express on Node ${process.version}, Express ${require(require.resolve('express/package.json', { paths: [__dirname] })).version}; ` +
      `${CALLS} requests per case per round, ${ROUNDS} rounds in rotating order, each case in a worker thread of its own; ${load()} before`,
  )
  if (EVICT) console.log(`--evict: ${EVICT_BYTES} bytes walked before every request; figures: the requests alone, by the process's CPU time`)
  for (const n of names) await workers[n].run(Math.max(50, CALLS / 10)) // warm-up: JIT, caches
  for (let r = 0; r < ROUNDS; r++) {
    for (let i = 0; i < names.length; i++) {
      const name = names[(i + r) % names.length]
      const m = await workers[name].run(CALLS)
      wall[name].push(m.wall)
      cpu[name].push(m.cpu)
    }
  }
  await Promise.all(names.map((n) => workers[n].stop()))
  const best = Object.fromEntries(names.map((n) => [n, Math.min(...cpu[n])]))
  const med = Object.fromEntries(names.map((n) => [n, median(cpu[n])]))
  const bestWall = Object.fromEntries(names.map((n) => [n, Math.min(...wall[n])]))
  const tables = {}
  for (const n of names) (tables[tableOf(n)] ??= []).push(n)
  const f = (x) => x.toFixed(2).padStart(7)
  for (const [table, ns] of Object.entries(tables)) {
    console.log(`\n${table}  (µs per request, CPU: fastest round, median round; wall: fastest; + over the no-op, CPU fastest and median)`)
    const floor = ns.find((n) => n.endsWith('-noop'))
    for (const n of ns) {
      const over = floor && n !== floor && !n.endsWith('-bare') ? `  +${f(best[n] - best[floor])} +${f(med[n] - med[floor])}` : ''
      console.log(`  ${n.padEnd(26)} ${f(best[n])} ${f(med[n])}   ${f(bestWall[n])}${over}`)
    }
  }
  console.log('\nsummary: added over the no-op (CPU fastest, median), authenticate alone, target (authenticate + 2), gap (µs)')
  const row = (label, n, floor, core) => {
    if (!(n in best && floor in best && core in best)) return
    const added = best[n] - best[floor]
    const target = best[core] + 2
    console.log(
      `  ${label.padEnd(44)} ${f(added)} (${f(med[n] - med[floor])}) ${f(best[core])} ${f(target)} ${f(Math.max(0, added - target))}`,
    )
  }
  row('apikeys/express auth.rest(scope)', 'rest-apikeys', 'rest-noop', 'authenticate-rest')
  row('apikeys/express auth.events() (vs express.json)', 'events-apikeys', 'events-noop', 'authenticate-events')
  row('express.json() + auth.events()', 'events-json-apikeys', 'events-noop', 'authenticate-events')
  row('auth.rest(scope) function alone', 'mw-apikeys', 'mw-noop', 'authenticate-rest')
  row(`auth.rest(scope), ${BEFORE}`, 'rest-before', 'rest-noop', 'authenticate-rest')
  row(`auth.events(), ${BEFORE}`, 'events-before', 'events-noop', 'authenticate-events')
  row(`auth.rest(scope) function alone, ${BEFORE}`, 'mw-before', 'mw-noop', 'authenticate-rest')
  console.log(`\n(${load()} after)`)
}

;(isMainThread ? main() : worker()).catch((e) => {
  console.error(e)
  process.exit(1)
})
