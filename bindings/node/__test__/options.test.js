'use strict'
// Unknown option names, at every level of every options object, are
// ERR_INVALID_INPUT naming the option, never silently ignored: a misspelt
// `Store` would otherwise give an in-memory keyring, `ratelimits` no limits,
// `peper` no HMAC. The message names the option, never its value.
const test = require('node:test')
const assert = require('node:assert/strict')
const { Keyring } = require('..')
const { fieldOf } = require('../args.js')
const { apikeys } = require('../express')
const { actor } = require('./helpers')

// A value that must never show in an error.
const SECRET = 'hunter2-hunter2-hunter2'
const owner = actor('owner')

function refused(e, field, option, what) {
  assert.ok(e instanceof Error, `${what}: threw ${String(e)}`)
  assert.equal(e.code, 'ERR_INVALID_INPUT', `${what}: ${e.code} ${e.message}`)
  assert.equal(e.status, 400, what)
  assert.equal(e.pdCode, 2001, what)
  assert.equal(e.field, fieldOf(field), `${what}: field ${e.field}`)
  assert.ok(e.message.includes(`'${option}'`), `${what}: "${e.message}" names ${option}`)
  assert.ok(!e.message.includes(SECRET), `${what}: the message echoes the value`)
}

function thrown(fn) {
  try {
    fn()
  } catch (e) {
    return e
  }
  assert.fail('did not throw')
}

async function rejection(promise) {
  try {
    await promise
  } catch (e) {
    return e
  }
  assert.fail('did not reject')
}

const limits = { generalKey: { requests: 5, windowMs: 1000 } }
const redis = 'redis://127.0.0.1:1/'

// [keyring options, field, unknown option name]
const KEYRING_CASES = [
  [{ Store: { sqlite: SECRET } }, 'options', 'Store'],
  [{ ratelimits: 'pagerduty' }, 'options', 'ratelimits'],
  [{ peper: SECRET }, 'options', 'peper'],
  [{ pepper: `${SECRET}-long-enough`, auditcapacity: 5 }, 'options', 'auditcapacity'],
  [{ rateLimit: SECRET }, 'options', 'rateLimit'],
  // An unknown name is refused even when its value is undefined.
  [{ store: undefined, stroe: undefined }, 'options', 'stroe'],
  [{ store: { memory: true, sqllite: SECRET } }, 'options.store', 'sqllite'],
  [{ store: { postgres: `postgres://u:${SECRET}@127.0.0.1:1/db`, shema: 'x' } }, 'options.store', 'shema'],
  [{ rateLimits: { generalKey: { requests: 5, windowMs: 1000, burst: 7 } } }, 'options.rateLimits.generalKey', 'burst'],
  [{ rateLimits: { generalKey: { requests: 5, window: 1000, windowMs: 1000 } } }, 'options.rateLimits.generalKey', 'window'],
  [{ rateLimits: { generalkey: { requests: 5, windowMs: 1000 } } }, 'options.rateLimits', 'generalkey'],
  [{ rateLimits: limits, rateLimiter: { redis, fallBack: 'deny' } }, 'options.rateLimiter', 'fallBack'],
  [{ rateLimits: limits, rateLimiter: { redis, password: SECRET } }, 'options.rateLimiter', 'password'],
]

test('unknown keyring, store, rate limit and limiter options are refused by new Keyring and Keyring.open', async () => {
  for (const [options, field, option] of KEYRING_CASES) {
    const what = JSON.stringify(options)
    refused(thrown(() => new Keyring(options)), field, option, what)
    refused(await rejection(Keyring.open(options)), field, option, `${what} (open)`)
  }
  // Known options still work, and an inherited enumerable name counts too.
  assert.equal(new Keyring({ store: { memory: true }, auditCapacity: 5 }).storeKind, 'memory')
  const inherited = Object.create({ peper: 'x' })
  refused(thrown(() => new Keyring(inherited)), 'options', 'peper', 'inherited')
})

test('an error\'s field is the stable snake_case name, without the values a path holds', () => {
  for (const [name, field] of [
    ['keyId', 'key_id'],
    ['description', 'description'],
    ['options.rateLimits.generalKey.windowMs', 'options.rate_limits.general_key.window_ms'],
    ["options.rateLimits.accounts['acmeCorp'].user", 'options.rate_limits.accounts.user'],
    ["options.rateLimits.keys['P0000000000000']", 'options.rate_limits.keys'],
    ['scopes[3]', 'scopes'],
    ['options.store.sqlite', 'options.store.sqlite'],
  ]) {
    assert.equal(fieldOf(name), field, name)
  }
  // As the core and Python name them: a core error keeps its field, the message the JavaScript name.
  const e = thrown(() => new Keyring().get(owner, 'not-an-id'))
  assert.deepEqual([e.field, e.message.startsWith('invalid keyId:')], ['key_id', true])
  const t = thrown(() => new Keyring().get(owner, 42))
  assert.deepEqual([t.code, t.field, t.message.includes('"keyId"')], ['ERR_INVALID_ARG_TYPE', 'key_id', true])
})

test('a long or odd option name is shortened in the message', () => {
  const name = 'x'.repeat(10_000)
  const e = thrown(() => new Keyring({ [name]: 1 }))
  assert.equal(e.code, 'ERR_INVALID_INPUT')
  assert.ok(e.message.length < 300, e.message)
  const odd = thrown(() => new Keyring({ 'a"b\n\ud800': 1 }))
  assert.equal(odd.code, 'ERR_INVALID_INPUT')
  assert.ok(odd.message.isWellFormed() && !odd.message.includes('\n'), odd.message)
})

test('unknown key options are refused (readOnly is for general keys only)', async () => {
  const kr = new Keyring()
  const manager = actor('user', 'PMANAGER1')
  const cases = [
    [() => kr.createGeneralKey(owner, 'x', { readonly: true }), 'readonly'],
    [() => kr.createGeneralKey(owner, 'x', { readOnly: true, expires: new Date(Date.now() + 1e6) }), 'expires'],
    [() => kr.createUserToken(owner, 'x', { readOnly: true }), 'readOnly'],
    [() => kr.createIntegrationKey(manager, 'PSVC', 'x', { expiresat: new Date() }), 'expiresat'],
    [() => kr.createRoutingKey(manager, 'orch', 'x', { secret: SECRET }), 'secret'],
    [() => kr.createScopedToken(manager, 'x', ['incidents.read'], { scopes: ['incidents.write'] }), 'scopes'],
  ]
  for (const [fn, option] of cases) {
    refused(thrown(fn), 'options', option, option)
  }
  // Each Promise twin too.
  refused(await rejection(kr.createUserTokenAsync(owner, 'x', { readOnly: true })), 'options', 'readOnly', 'async')
  refused(await rejection(kr.createGeneralKeyAsync(owner, 'x', { readonly: true })), 'options', 'readonly', 'async')
  // Nothing was made by any refused call.
  assert.equal(kr.list(owner).length, 0)
})

test('unknown account settings are refused', async () => {
  const kr = new Keyring()
  refused(thrown(() => kr.setAccount('acme', { restApi: false, advancedPermissions: true, restAPI: true })), 'settings', 'restAPI', 'settings')
  refused(await rejection(kr.setAccountAsync('acme', { restApi: true, advancedPermissions: true, plan: SECRET })), 'settings', 'plan', 'async')
  assert.deepEqual(kr.account('acme'), { restApi: true, advancedPermissions: true })
})

test('unknown request fields are refused by authenticate, tryAuthenticate and authenticateAsync', async () => {
  const kr = new Keyring()
  const key = kr.createGeneralKey(owner, 'x', { readOnly: true }).secret
  const requests = [
    [{ api: 'rest', methd: 'POST' }, 'methd'],
    [{ method: 'POST', scopes: 'incidents.write' }, 'scopes'],
    [{ Api: 'events' }, 'Api'],
    [{ api: 'rest', method: 'GET', token: SECRET }, 'token'],
  ]
  for (const [request, option] of requests) {
    refused(thrown(() => kr.authenticate(key, request)), 'request', option, `authenticate ${option}`)
    refused(thrown(() => kr.tryAuthenticate(key, request)), 'request', option, `tryAuthenticate ${option}`)
    refused(await rejection(kr.authenticateAsync(key, request)), 'request', option, `authenticateAsync ${option}`)
  }
  // Refused before the key is looked at: an unknown key with a bad field is still ERR_INVALID_INPUT.
  refused(thrown(() => kr.authenticate('nope', { methd: 'GET' })), 'request', 'methd', 'unknown key')
  assert.equal(kr.authenticate(key, { api: 'rest', method: 'GET', scope: undefined }).access, 'read_only')
})

test('unknown Express middleware options are refused, and maxEventBytes is checked', () => {
  const kr = new Keyring()
  refused(thrown(() => apikeys(kr, { offthread: true })), 'options', 'offthread', 'offthread')
  refused(thrown(() => apikeys(kr, { maxEventBytes: 10, maxBodyBytes: SECRET })), 'options', 'maxBodyBytes', 'maxBodyBytes')
  for (const bad of [0, -1, 1.5, '100', NaN, Infinity]) {
    const e = thrown(() => apikeys(kr, { maxEventBytes: bad }))
    assert.equal(e.code, 'ERR_INVALID_ARG_TYPE', String(bad))
    assert.ok(e instanceof TypeError)
    assert.match(e.message, /"options\.maxEventBytes"/)
  }
  assert.equal(thrown(() => apikeys(kr, 'fast')).code, 'ERR_INVALID_ARG_TYPE')
  assert.equal(typeof apikeys(kr, { maxEventBytes: 1024, offThread: false }).events, 'function')
  assert.equal(typeof apikeys(kr, null).rest, 'function')
})
