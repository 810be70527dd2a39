'use strict'
// Strings that are not well-formed UTF-16 (a lone surrogate) never reach the
// addon: napi would turn each lone surrogate into U+FFFD, so 'tenant\ud800'
// and 'tenant\udfff' would both become 'tenant\ufffd' in Rust. Every string
// argument and option field is refused with ERR_INVALID_INPUT naming it, and
// the message never holds the value.
const test = require('node:test')
const assert = require('node:assert/strict')
const { Keyring } = require('..')
const { fieldOf } = require('../args.js')
const { apikeys } = require('../express')
const { actor } = require('./helpers')

const LONE = { high: '\ud800', low: '\udfff' }
const owner = actor('owner')
const manager = actor('user', 'PMANAGER1')

const kr = new Keyring()
const general = kr.createGeneralKey(owner, 'target')
const ID = general.record.id

function assertRefused(e, field, what, bad) {
  assert.ok(e instanceof Error, `${what}: threw ${String(e)}`)
  assert.equal(e.code, 'ERR_INVALID_INPUT', `${what}: ${e.code} ${e.message}`)
  assert.equal(e.status, 400, what)
  assert.equal(e.pdCode, 2001, what)
  assert.equal(e.field, fieldOf(field), `${what}: field ${e.field}`)
  assert.ok(e.message.includes(field), `${what}: "${e.message}" names ${field}`)
  assert.match(e.message, /lone surrogate/, what)
  assert.ok(!e.message.includes(bad) && !e.message.includes('\ufffd'), `${what}: the message echoes the value`)
}

// [label, field, (s) => the call with s in that place]; `s` is a string with a lone surrogate.
const a = (patch) => ({ ...owner, ...patch })
const CALLS = [
  ['createGeneralKey actor.account', 'actor.account', (s, m) => kr[m](a({ account: s }), 'x')],
  ['createGeneralKey actor.user', 'actor.user', (s, m) => kr[m](a({ user: s }), 'x')],
  ['createGeneralKey actor.role', 'actor.role', (s, m) => kr[m](a({ role: s }), 'x')],
  ['createGeneralKey description', 'description', (s, m) => kr[m](owner, s)],
  ['createUserToken description', 'description', (s, m) => kr[m](owner, s)],
  ['createUserToken actor.user', 'actor.user', (s, m) => kr[m](a({ user: s }), 'x')],
  ['createIntegrationKey serviceId', 'serviceId', (s, m) => kr[m](manager, s, 'x')],
  ['createIntegrationKey description', 'description', (s, m) => kr[m](manager, 'PSVC', s)],
  ['createRoutingKey orchestrationId', 'orchestrationId', (s, m) => kr[m](manager, s, 'x')],
  ['createRoutingKey description', 'description', (s, m) => kr[m](manager, 'orch', s)],
  ['createScopedToken description', 'description', (s, m) => kr[m](manager, s, ['incidents.read'])],
  ['createScopedToken scopes[1]', 'scopes[1]', (s, m) => kr[m](manager, 'x', ['incidents.read', s])],
  ['disable keyId', 'keyId', (s, m) => kr[m](owner, s)],
  ['enable keyId', 'keyId', (s, m) => kr[m](owner, s)],
  ['delete keyId', 'keyId', (s, m) => kr[m](owner, s)],
  ['get keyId', 'keyId', (s, m) => kr[m](owner, s)],
  ['get actor.account', 'actor.account', (s, m) => kr[m](a({ account: s }), ID)],
  ['list actor.account', 'actor.account', (s, m) => kr[m](a({ account: s }))],
  ['list actor.user', 'actor.user', (s, m) => kr[m](a({ user: s }))],
  ['setAccount account', 'account', (s, m) => kr[m](s, { restApi: true, advancedPermissions: true })],
  ['account account', 'account', (s, m) => kr[m](s)],
  ['setUserRole account', 'account', (s, m) => kr[m](s, 'PUSER1', 'observer')],
  ['setUserRole user', 'user', (s, m) => kr[m]('acme', s, 'observer')],
  ['setUserRole role', 'role', (s, m) => kr[m]('acme', 'PUSER1', s)],
  ['removeUser account', 'account', (s, m) => kr[m](s, 'PUSER1')],
  ['removeUser user', 'user', (s, m) => kr[m]('acme', s)],
  ['setUserRoleAs actor.account', 'actor.account', (s, m) => kr[m](a({ account: s }), 'PUSER1', 'observer')],
  ['setUserRoleAs actor.user', 'actor.user', (s, m) => kr[m](a({ user: s }), 'PUSER1', 'observer')],
  ['setUserRoleAs user', 'user', (s, m) => kr[m](owner, s, 'observer')],
  ['setUserRoleAs role', 'role', (s, m) => kr[m](owner, 'PUSER1', s)],
  ['removeUserAs actor.user', 'actor.user', (s, m) => kr[m](a({ user: s }), 'PUSER1')],
  ['removeUserAs user', 'user', (s, m) => kr[m](owner, s)],
  ['setAccountAs actor.account', 'actor.account', (s, m) => kr[m](a({ account: s }), { restApi: true, advancedPermissions: true })],
  ['authenticate token', 'token', (s, m) => kr[m](s)],
  ['authenticate request.api', 'request.api', (s, m) => kr[m](general.secret, { api: s })],
  ['authenticate request.method', 'request.method', (s, m) => kr[m](general.secret, { method: s })],
  ['authenticate request.scope', 'request.scope', (s, m) => kr[m](general.secret, { scope: s })],
  ['authenticate request.remoteAddress', 'request.remoteAddress', (s, m) => kr[m](general.secret, { remoteAddress: s })],
  ['authenticate request.path', 'request.path', (s, m) => kr[m](general.secret, { path: s })],
  ['rotate keyId', 'keyId', (s, m) => kr[m](owner, s, { graceMs: 60_000 })],
  ['rotate actor.context.requestId', 'actor.context.requestId', (s, m) => kr[m](a({ context: { requestId: s } }), ID, { graceMs: 60_000 })],
  ['rotate actor.context.remoteAddress', 'actor.context.remoteAddress', (s, m) => kr[m](a({ context: { remoteAddress: s } }), ID, { graceMs: 60_000 })],
  ['rotate actor.context.callerKey', 'actor.context.callerKey', (s, m) => kr[m](a({ context: { callerKey: s } }), ID, { graceMs: 60_000 })],
  ['endRotation keyId', 'keyId', (s, m) => kr[m](owner, s)],
  ['auditRecords query.account', 'query.account', (s, m) => kr[m]({ account: s })],
  ['auditRecords query.keyId', 'query.keyId', (s, m) => kr[m]({ account: 'acme', keyId: s })],
  ['auditRecords query.actor', 'query.actor', (s, m) => kr[m]({ account: 'acme', actor: s })],
  ['auditRecords query.actions[1]', 'query.actions[1]', (s, m) => kr[m]({ account: 'acme', actions: ['create', s] })],
  ['auditRecords query.cursor', 'query.cursor', (s, m) => kr[m]({ account: 'acme', cursor: s })],
]

const syncName = (label) => label.split(' ')[0]

for (const [label, field, call] of CALLS) {
  test(`${label}: a lone high or low surrogate is ERR_INVALID_INPUT naming it (sync and Promise)`, async () => {
    for (const [which, lone] of Object.entries(LONE)) {
      for (const bad of [lone, `acme${lone}`, `${lone}acme`, `a${lone}b`]) {
        const name = syncName(label)
        const what = `${label} (${which}: ${JSON.stringify(bad)})`
        let thrown
        try {
          call(bad, name)
        } catch (e) {
          thrown = e
        }
        assert.ok(thrown, `${what} did not throw`)
        assertRefused(thrown, field, what, bad)
        let rejected
        await call(bad, `${name}Async`).then(
          () => assert.fail(`${what} (Async) resolved`),
          (e) => {
            rejected = e
          },
        )
        assertRefused(rejected, field, `${what} (Async)`, bad)
      }
    }
  })
}

test('tryAuthenticate refuses a lone surrogate in the token and in every request field', () => {
  for (const lone of Object.values(LONE)) {
    const bad = `x${lone}`
    assertRefused(catchIt(() => kr.tryAuthenticate(bad)), 'token', 'tryAuthenticate token', bad)
    for (const f of ['api', 'method', 'scope', 'remoteAddress', 'path']) {
      assertRefused(catchIt(() => kr.tryAuthenticate(general.secret, { [f]: bad })), `request.${f}`, `tryAuthenticate ${f}`, bad)
    }
  }
})

function catchIt(fn) {
  try {
    fn()
  } catch (e) {
    return e
  }
  assert.fail('did not throw')
}

test('every string option of a Keyring refuses a lone surrogate (new Keyring and Keyring.open)', async () => {
  const limits = { generalKey: { requests: 5, windowMs: 1000 } }
  const cases = [
    ['options.pepper', (s) => ({ pepper: `pepper-pepper-pepper${s}` })],
    ['options.store.sqlite', (s) => ({ store: { sqlite: `/tmp/apikeys-${s}.db` } })],
    ['options.store.postgres', (s) => ({ store: { postgres: `postgres://u:secret${s}@127.0.0.1:1/db` } })],
    ['options.store.schema', (s) => ({ store: { postgres: 'postgres://u@127.0.0.1:1/db', schema: `s${s}` } })],
    ['options.rateLimits', (s) => ({ rateLimits: `pagerduty${s}` })],
    ['options.rateLimiter.redis', (s) => ({ rateLimits: limits, rateLimiter: { redis: `redis://127.0.0.1:1/${s}` } })],
    ['options.rateLimiter.prefix', (s) => ({ rateLimits: limits, rateLimiter: { redis: 'redis://127.0.0.1:1/', prefix: `p${s}` } })],
    ['options.rateLimiter.fallback', (s) => ({ rateLimits: limits, rateLimiter: { redis: 'redis://127.0.0.1:1/', fallback: `local${s}` } })],
  ]
  for (const [field, options] of cases) {
    for (const lone of Object.values(LONE)) {
      const o = options(lone)
      assertRefused(catchIt(() => new Keyring(o)), field, `new Keyring ${field}`, lone)
      let rejected
      await Keyring.open(o).then(
        () => assert.fail(`Keyring.open ${field} resolved`),
        (e) => {
          rejected = e
        },
      )
      assertRefused(rejected, field, `Keyring.open ${field}`, lone)
    }
  }
})

test('two tenants whose names differ only in a lone surrogate cannot reach each other (nor the U+FFFD one)', () => {
  const k = new Keyring()
  // The tenant whose name napi would have collapsed the others into.
  const victim = { account: 'tenant\ufffd', user: 'PADMIN1', role: 'admin' }
  const victimKey = k.createGeneralKey(victim, "victim's key")
  for (const lone of Object.values(LONE)) {
    const intruder = { account: `tenant${lone}`, user: 'PADMIN1', role: 'admin' }
    for (const [what, fn] of [
      ['list', () => k.list(intruder)],
      ['get', () => k.get(intruder, victimKey.record.id)],
      ['disable', () => k.disable(intruder, victimKey.record.id)],
      ['delete', () => k.delete(intruder, victimKey.record.id)],
      ['createGeneralKey', () => k.createGeneralKey(intruder, 'mine')],
      ['setAccount', () => k.setAccount(intruder.account, { restApi: false, advancedPermissions: false })],
      ['removeUser', () => k.removeUser(intruder.account, 'PADMIN1')],
      ['setUserRoleAs', () => k.setUserRoleAs(intruder, 'PADMIN1', 'observer')],
      ['removeUserAs', () => k.removeUserAs(intruder, 'PADMIN1')],
      ['setAccountAs', () => k.setAccountAs(intruder, { restApi: false, advancedPermissions: false })],
    ]) {
      assertRefused(catchIt(fn), what === 'setAccount' || what === 'removeUser' ? 'account' : 'actor.account', what, lone)
    }
  }
  // Nothing happened to the victim: the key works, its account is untouched,
  // and no audit event names another account.
  assert.equal(k.authenticate(victimKey.secret).account, 'tenant\ufffd')
  assert.deepEqual(k.list(victim).map((r) => r.id), [victimKey.record.id])
  assert.deepEqual(k.account('tenant\ufffd'), { restApi: true, advancedPermissions: true })
  assert.ok(k.auditTrail().every((e) => e.account === 'tenant\ufffd'))
  // A well-formed string with U+FFFD in it is an ordinary string.
  assert.equal(k.get(victim, victimKey.record.id).account, 'tenant\ufffd')
})

test("the Express middleware refuses a route scope with a lone surrogate when it is declared", () => {
  const auth = apikeys(new Keyring())
  for (const lone of Object.values(LONE)) {
    assertRefused(catchIt(() => auth.rest(`incidents.read${lone}`)), 'request.scope', 'rest(scope)', lone)
  }
})
