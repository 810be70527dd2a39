'use strict'
// Every refusal apikeys/express sends is apikeys-http's rendering, byte for
// byte: for each case of crates/apikeys-http/tests/refusals.json (written and
// checked by the Rust crate's own test), the same situation is set up here
// and run through the middleware in-process; the status, kind, every header
// it writes, in order, and the body must be the file's. The keyring's
// refusals come from a real keyring set up as the Rust test sets up its own
// (so what the addon's errors carry across is checked too); the others from
// requests and bodies the middleware reads.
const test = require('node:test')
const assert = require('node:assert/strict')
const fs = require('node:fs')
const path = require('node:path')
const { EventEmitter } = require('node:events')
const { Keyring } = require('..')
const { apikeys, Rejection } = require('../express')

const TABLE = JSON.parse(fs.readFileSync(path.join(__dirname, '..', '..', '..', 'crates', 'apikeys-http', 'tests', 'refusals.json'), 'utf8'))
const LIMIT = 65536

/** A response that records what the middleware writes. */
function response() {
  return {
    statusCode: 200,
    locals: {},
    written: [],
    setHeader(name, value) {
      this.written.push(`${name}: ${value}`)
    },
    end(body) {
      this.body = body
      this.ended = true
    },
  }
}

/** Runs a middleware on a request; resolves with what it answered (or 'next'). */
function run(middleware, req) {
  return new Promise((resolve) => {
    const res = response()
    const done = () => {
      if (!res.ended) return setImmediate(done)
      const r = res.locals.apikeysRejection
      assert.ok(r instanceof Rejection)
      resolve({ status: res.statusCode, kind: r.kind, headers: res.written, body: res.body, rejection: r })
    }
    middleware(req, res, () => resolve('next'))
    setImmediate(done)
  })
}

const rest = (keyring, rawHeaders, method = 'GET', scope) =>
  run(apikeys(keyring).rest(scope), { method, rawHeaders, headers: {} })

/** An Events request whose body a parser in front already read into a Buffer. */
const taken = (keyring, body) =>
  run(apikeys(keyring, { maxEventBytes: LIMIT }).events(), { method: 'POST', readableEnded: true, body: Buffer.from(body), headers: {} })

/** An Events request whose stream is read here (a bare EventEmitter standing in for it). */
function streamed(keyring, headers, then) {
  const req = Object.assign(new EventEmitter(), { method: 'POST', headers, pause() {} })
  const answer = run(apikeys(keyring, { maxEventBytes: LIMIT }).events(), req)
  then?.(req)
  return answer
}

/** The refusal the middleware renders for an error its keyring throws. */
const thrown = (error) => rest({ authenticate() { throw error } }, ['Authorization', 'Token token=abc'])

function caught(call) {
  try {
    call()
  } catch (e) {
    return e
  }
  throw new Error('the call was not refused')
}

function cases() {
  const kr = new Keyring()
  const admin = { account: 'acme', user: 'PADMIN1', role: 'admin' }
  const observer = { account: 'acme', user: 'POBSERVER1', role: 'observer' }
  const readOnly = kr.createGeneralKey(admin, 'read only', { readOnly: true }).secret
  const integration = kr.createIntegrationKey(admin, 'PSERVICE1', 'Datadog').secret
  const legacyKey = kr.createGeneralKey({ account: 'legacy', user: 'PADMIN2', role: 'admin' }, 'old plan').secret
  kr.setAccount('legacy', { restApi: false, advancedPermissions: true })
  const auth = (key) => ['Authorization', `Token token=${key}`]
  // As the addon throws them (the rate limit's retryAfter is the clock's, so
  // the table's fixed ones are built with the fields the addon sets).
  const rateLimited = (retryAfter, limit) =>
    Object.assign(new Error(`rate limit of ${limit} requests exceeded; retry in ${retryAfter} ms`), {
      code: 'ERR_RATE_LIMITED',
      status: 429,
      pdCode: 2020,
      retryAfter,
      limit,
      reason: `rate limit of ${limit} requests exceeded; retry in ${retryAfter} ms`,
    })
  const store = Object.assign(new Error('store unavailable: connection to 10.0.0.1 refused'), {
    code: 'ERR_STORE',
    status: 500,
    pdCode: 2000,
    reason: 'store unavailable: connection to 10.0.0.1 refused',
  })
  const deep = `{"p":${'['.repeat(200)}1${']'.repeat(200)}}`
  return {
    unauthorized: () => rest(kr, auth('not-a-key')),
    wrong_api_rest_key_on_events: () => taken(kr, JSON.stringify({ routing_key: readOnly })),
    wrong_api_events_key_on_rest: () => rest(kr, auth(integration)),
    forbidden: () => rest(kr, auth(readOnly), 'POST', 'incidents.write'),
    plan_restricted: () => rest(kr, auth(legacyKey)),
    invalid_input: () => thrown(caught(() => kr.authenticate(readOnly, { scope: 'incidents' }))),
    not_permitted: () => thrown(caught(() => kr.createGeneralKey(observer, 'nope'))),
    not_found: () => thrown(caught(() => kr.get(admin, 'P0000000000000'))),
    rate_limited: () => thrown(rateLimited(1500, 960)),
    rate_limited_whole_minute: () => thrown(rateLimited(60000, 120)),
    store: () => thrown(store),
    internal: () => thrown(new TypeError("Cannot read properties of undefined (reading 'x')")),
    missing_key: () => rest(kr, []),
    malformed_authorization: () => rest(kr, ['Authorization', 'Basic abc']),
    duplicate_authorization: () => rest(kr, ['Authorization', 'Bearer a', 'authorization', 'Bearer b']),
    // Node keeps every header: the joined value is two values here.
    duplicate_authorization_joined: () => rest(kr, ['Authorization', 'Bearer a', 'Authorization', 'Bearer b']),
    body_too_large: () => taken(kr, 'x'.repeat(LIMIT + 1)),
    invalid_content_length: () => streamed(kr, { 'content-length': '-1' }),
    not_an_object: () => taken(kr, '[1]'),
    not_json: () => taken(kr, '{"routing_key":'),
    routing_key_not_a_string: () => taken(kr, '{"routing_key":12}'),
    missing_routing_key: () => taken(kr, '{"event_action":"trigger"}'),
    too_deep: () => taken(kr, deep),
    unreadable_body: () => streamed(kr, {}, (req) => setImmediate(() => req.emit('error', new Error('reset')))),
    misconfigured: () => run(apikeys(kr).events(), { method: 'POST', readableEnded: true, headers: {} }),
  }
}

function expected(name) {
  const want = { ...TABLE[name] }
  // A core error the addon names no kind for (and anything else thrown) is internal.
  if (name === 'internal') want.kind = 'internal'
  return want
}

test('every case of the table is set up here', () => {
  assert.deepEqual(Object.keys(cases()).sort(), Object.keys(TABLE).sort())
})

test('each refusal the middleware sends is the Rust rendering', async () => {
  const made = cases()
  const warned = process.emitWarning
  process.emitWarning = () => {} // the misconfigured case warns once
  try {
    for (const name of Object.keys(TABLE).sort()) {
      const got = await made[name]()
      assert.notEqual(got, 'next', name)
      const { rejection, ...answer } = got
      assert.deepEqual(answer, expected(name), name)
      assert.equal(rejection.pdCode, JSON.parse(answer.body).error.code, name)
      assert.equal(rejection.message, JSON.parse(answer.body).error.message, name)
    }
  } finally {
    process.emitWarning = warned
  }
})

test('a declared length over the limit is the table body_too_large, and the connection closes', async () => {
  const got = await streamed(new Keyring(), { 'content-length': String(LIMIT + 1) })
  const want = TABLE.body_too_large
  assert.deepEqual(got.headers, [...want.headers, 'connection: close'])
  assert.equal(got.body, want.body)
})

test('a rejection carries its reason and retry, never an internal detail', async () => {
  const made = cases()
  const store = (await made.store()).rejection
  assert.match(store.reason, /10\.0\.0\.1/)
  assert.ok(!store.body.includes('10.0.0.1'))
  assert.ok(!JSON.stringify(store).includes('10.0.0.1'), 'the reason is not enumerable')
  assert.match((await made.unauthorized()).rejection.reason, /^malformed key/)
  const limited = (await made.rate_limited()).rejection
  assert.equal(limited.retryAfterMs, 1500)
  assert.equal((await made.forbidden()).rejection.retryAfterMs, undefined)
})

test('a real rate limit carries whole milliseconds that read as the headers say', async () => {
  const kr = new Keyring({ rateLimits: { generalKey: { requests: 1, windowMs: 60_000 } } })
  const key = kr.createGeneralKey({ account: 'acme', user: 'PADMIN1', role: 'admin' }, 'busy').secret
  kr.authenticate(key)
  const e = caught(() => kr.authenticate(key))
  assert.ok(Number.isInteger(e.retryAfter) && e.retryAfter > 59_000 && e.retryAfter <= 60_000, String(e.retryAfter))
  const got = await thrown(e)
  assert.equal(got.status, 429)
  const secs = String(Math.ceil(e.retryAfter / 1000))
  assert.deepEqual(got.headers.slice(2), [`retry-after: ${secs}`, 'ratelimit-limit: 1', 'ratelimit-remaining: 0', `ratelimit-reset: ${secs}`])
})
