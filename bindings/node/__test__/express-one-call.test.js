'use strict'
// auth.rest() on this package's Keyring reads the Authorization header and
// checks the key in one addon call (Keyring#_restChecker); on a stand-in, a
// subclass with its own authenticate, or a keyring with rate limits it takes
// the general path (the header read by the addon, then keyring.authenticate).
// The two must answer every request alike, through sequences that change a
// key or its owner between requests; these tests run both on the same
// keyring and compare what the client would get.
const { test } = require('node:test')
const assert = require('node:assert/strict')

const { Keyring } = require('..')
const { apikeys } = require('../express')

const admin = { account: 'acme', user: 'PADMIN1', role: 'admin' }

// A request and response with what the middleware reads and writes (no
// Express, no socket: the principal goes to req.apikey).
function request(method, headers, { address = '192.0.2.7', url = '/incidents?limit=1' } = {}) {
  const rawHeaders = []
  for (const [name, value] of headers) rawHeaders.push(name, value)
  return { method, rawHeaders, headers: {}, socket: { remoteAddress: address }, url }
}

function response() {
  return {
    statusCode: 200,
    headers: [],
    body: undefined,
    setHeader(name, value) {
      this.headers.push([name.toLowerCase(), String(value)])
    },
    end(body) {
      this.body = body === undefined ? undefined : String(body)
    },
  }
}

// What the client gets from a middleware for a request: the refusal, or the principal let through.
function outcome(mw, req) {
  const res = response()
  let passed = false
  mw(req, res, () => {
    passed = true
  })
  if (passed) return { passed, principal: req.apikey, headers: res.headers }
  return { passed, status: res.statusCode, headers: res.headers, body: res.body }
}

// Both paths over one keyring: the one-call path, and the general path through a stand-in.
function bothPaths(keyring, scope, options) {
  const standIn = { authenticate: (token, req) => keyring.authenticate(token, req) }
  return [apikeys(keyring, options).rest(scope), apikeys(standIn, options).rest(scope)]
}

function sameAnswer(keyring, scope, req, note, options) {
  const [one, general] = bothPaths(keyring, scope, options)
  const a = outcome(one, { ...req })
  const b = outcome(general, { ...req })
  assert.deepEqual(a, b, note)
  if (a.passed) assert.equal(a.principal, b.principal, `${note}: the same principal object`)
  return a
}

const auth = (key) => ['Authorization', `Token token=${key}`]

test('the one-call path is taken for this package Keyring, not for a stand-in', () => {
  const keyring = new Keyring()
  const checker = keyring._restChecker(undefined, (r) => r)
  assert.equal(typeof checker, 'function')
  // One Authorization value goes to the addon as a string; none or several take the general path.
  assert.equal(checker(undefined, 'GET', undefined, '/'), undefined)
  assert.equal(checker(['Token token=a', 'Token token=b'], 'GET', undefined, '/'), undefined)
  assert.throws(() => checker('Token token=nope', 'GET', undefined, '/'), (r) => r.status === 401)
  const limited = new Keyring({ rateLimits: { generalKey: { requests: 100, windowMs: 60_000 } } })
  assert.equal(limited._restChecker(undefined, (r) => r), null, 'principals with a per-call status: the general path')
  class Logged extends Keyring {
    authenticate(token, req) {
      return super.authenticate(token, req)
    }
  }
  assert.equal(new Logged()._restChecker(undefined, (r) => r), null, 'a subclass with its own authenticate: the general path')
})

test('every header form, key kind, method and scope answers as the general path does', () => {
  const keyring = new Keyring()
  const manager = { account: 'acme', user: 'PMANAGER1', role: 'manager' }
  keyring.setUserRole('acme', 'PMANAGER1', 'manager')
  const full = keyring.createGeneralKey(admin, 'full').secret
  const ro = keyring.createGeneralKey(admin, 'ro', { readOnly: true }).secret
  const scoped = keyring.createScopedToken(manager, 'closer', ['incidents.write']).secret
  const token = keyring.createUserToken(manager, 'mine').secret
  const integration = keyring.createIntegrationKey(manager, 'PSVC1', 'events').secret
  const disabled = keyring.createGeneralKey(admin, 'off')
  keyring.disable(admin, disabled.record.id)
  const deleted = keyring.createGeneralKey(admin, 'gone')
  keyring.delete(admin, deleted.record.id)
  const unknown = 'y_NbAkKc66ryYTWUXYEu'
  const keys = { full, ro, scoped, token, integration, disabled: disabled.secret, deleted: deleted.secret, unknown }
  const headerForms = (k) => [
    [auth(k)],
    [['authorization', `token token="${k}"`]],
    [['AUTHORIZATION', `Bearer ${k}`]],
    [['Authorization', `Token  token = ${k} `]],
    [auth(k), auth(k)],
    [['Authorization', `Basic ${k}`]],
    [['Authorization', `Token token=${k}x`]],
  ]
  const noKey = [[], [['Authorization', '']], [['Authorization', 'Token token=']], [['Authorization', 'x'.repeat(70_000)]], [['X-Authorization', `Token token=${full}`]]]
  let passed = 0
  let refused = new Set()
  for (const scope of [undefined, 'incidents.read', 'incidents.write', 'services.read']) {
    for (const method of ['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS', 'PROPFIND']) {
      for (const [name, k] of Object.entries(keys)) {
        for (const headers of headerForms(k)) {
          const a = sameAnswer(keyring, scope, request(method, headers), `${name}, ${method}, scope ${scope}, ${JSON.stringify(headers[0][0])}`)
          if (a.passed) passed++
          else refused.add(a.status)
        }
      }
      for (const headers of noKey) {
        const a = sameAnswer(keyring, scope, request(method, headers), `no key, ${method}, scope ${scope}`)
        assert.equal(a.passed, false)
        refused.add(a.status)
      }
    }
  }
  // The corpus reaches both answers and every refusal status of a REST check.
  assert.ok(passed > 50, `${passed} requests let through`)
  assert.deepEqual([...refused].sort(), [400, 401, 403])
})

test('a key disabled, enabled and deleted between requests: each request answers as of its own time', () => {
  const keyring = new Keyring()
  const k = keyring.createGeneralKey(admin, 'k')
  const [one] = bothPaths(keyring, 'incidents.read')
  const req = () => request('GET', [auth(k.secret)])
  assert.equal(outcome(one, req()).passed, true)
  keyring.disable(admin, k.record.id)
  const off = outcome(one, req())
  assert.equal(off.status, 401, 'disabled: refused at once, no earlier answer kept')
  sameAnswer(keyring, 'incidents.read', req(), 'disabled')
  keyring.enable(admin, k.record.id)
  assert.equal(outcome(one, req()).passed, true, 'enabled again')
  keyring.delete(admin, k.record.id)
  assert.equal(outcome(one, req()).status, 401, 'deleted')
})

test("a user token acts with its owner's current role on the one-call path", () => {
  const keyring = new Keyring()
  keyring.setUserRole('acme', 'PUSER1', 'manager')
  const user = { account: 'acme', user: 'PUSER1', role: 'manager' }
  const t = keyring.createUserToken(user, 'mine').secret
  const [write] = bothPaths(keyring, 'incidents.write')
  const req = () => request('POST', [auth(t)])
  const before = outcome(write, req())
  assert.equal(before.passed, true)
  assert.equal(before.principal.role, 'user', "a manager, in PagerDuty's API name")
  keyring.setUserRole('acme', 'PUSER1', 'observer')
  const after = outcome(write, req())
  assert.equal(after.passed, false, 'demoted to observer: no more writes')
  assert.equal(after.status, 403)
  sameAnswer(keyring, 'incidents.write', req(), 'demoted')
  const read = outcome(apikeys(keyring).rest('incidents.read'), request('GET', [auth(t)]))
  assert.equal(read.principal.role, 'observer', 'the principal carries the current role')
  keyring.removeUser('acme', 'PUSER1')
  assert.equal(outcome(write, req()).status, 401, 'removed: the token is refused')
})

test('an authenticate of the application is still called: a subclass, or one put on the instance later', () => {
  let calls = 0
  class Counting extends Keyring {
    authenticate(token, req) {
      calls++
      return super.authenticate(token, req)
    }
  }
  const counting = new Counting()
  const k = counting.createGeneralKey(admin, 'k').secret
  const mw = apikeys(counting).rest('incidents.read')
  calls = 0 // declaring the route checked its scope with authenticate
  assert.equal(outcome(mw, request('GET', [auth(k)])).passed, true)
  assert.equal(calls, 1)

  const keyring = new Keyring()
  const k2 = keyring.createGeneralKey(admin, 'k').secret
  const declared = apikeys(keyring).rest('incidents.read')
  let spied = 0
  keyring.authenticate = function (token, req) {
    spied++
    return Keyring.prototype.authenticate.call(this, token, req)
  }
  assert.equal(outcome(declared, request('GET', [auth(k2)])).passed, true)
  assert.equal(spied, 1, 'a spy set after the route was declared sees the request')
})

test("an application's remoteAddress that throws or answers no text: answered as the general path answers", () => {
  const keyring = new Keyring()
  const k = keyring.createGeneralKey(admin, 'k').secret
  const throwing = { remoteAddress: () => { throw new Error('no address') } }
  const number = { remoteAddress: () => 42 }
  for (const options of [throwing, number]) {
    const withKey = sameAnswer(keyring, 'incidents.read', request('GET', [auth(k)]), 'with a key', options)
    assert.equal(withKey.passed, false)
    assert.ok(withKey.status >= 400 && !withKey.body.includes(k))
    const without = sameAnswer(keyring, 'incidents.read', request('GET', []), 'without a key', options)
    assert.equal(without.status, 401, 'the missing key is found first, as before')
  }
  // null and undefined mean "no address"; the request is let through.
  for (const value of [null, undefined]) {
    const a = sameAnswer(keyring, 'incidents.read', request('GET', [auth(k)]), `address ${value}`, { remoteAddress: () => value })
    assert.equal(a.passed, true)
  }
})

test('the place reaches the key record on the one-call path', () => {
  const keyring = new Keyring()
  const k = keyring.createGeneralKey(admin, 'k')
  const mw = apikeys(keyring).rest('incidents.read')
  assert.equal(outcome(mw, request('GET', [auth(k.secret)], { address: '198.51.100.4', url: '/v2/incidents?x=1' })).passed, true)
  assert.deepEqual(keyring.get(admin, k.record.id).lastUsedFrom, { remoteAddress: '198.51.100.4', method: 'GET', path: '/v2/incidents' })
})

test('routes: one per scope however often declared; a bad scope or route number is an error, not a crash', () => {
  const keyring = new Keyring()
  const a = keyring._restRoute('incidents.read')
  for (let i = 0; i < 1000; i++) apikeys(keyring).rest('incidents.read')
  assert.equal(keyring._restRoute('incidents.read'), a, 'the same route for the same scope')
  assert.notEqual(keyring._restRoute('incidents.write'), a)
  assert.notEqual(keyring._restRoute(undefined), a)
  assert.throws(() => keyring._restRoute('incidents'), (e) => e.code === 'ERR_INVALID_INPUT')
  assert.throws(() => apikeys(keyring).rest('not a scope'), (e) => e.code === 'ERR_INVALID_INPUT')
  const k = keyring.createGeneralKey(admin, 'k').secret
  for (const route of [a * 8, a * 8 + 8 * 5000, 0xffffffff]) {
    const answer = keyring._restCheck(`Token token=${k}`, route, undefined, undefined)
    assert.equal(typeof answer, 'object', `route ${route}: a refusal`)
    assert.ok(answer.status >= 400 && !answer.body.includes(k))
  }
  assert.equal(typeof keyring._restCheck(`Token token=${k}`, a * 8 + 1, undefined, undefined), 'number')
})
