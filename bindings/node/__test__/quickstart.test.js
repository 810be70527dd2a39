'use strict'
// The README's story, end to end: issue, use, refuse, disable, enable, delete.
const test = require('node:test')
const assert = require('node:assert/strict')
const { Keyring, isApiKeyError } = require('..')
const { throwsCode } = require('./helpers')

test('the quickstart story', () => {
  const keyring = new Keyring()
  const admin = { account: 'acme', user: 'PADMIN1', role: 'admin' }

  const issued = keyring.createGeneralKey(admin, 'CI bot', { readOnly: true })
  const token = issued.secret
  assert.match(token, /^[A-Za-z0-9_-]{20}$/)
  assert.equal(issued.record.kind, 'general')
  assert.equal(issued.record.access, 'read_only')
  assert.equal(issued.record.description, 'CI bot')
  assert.equal(issued.record.account, 'acme')
  assert.equal(issued.record.createdBy, 'PADMIN1')
  assert.ok(issued.record.createdAt instanceof Date)
  assert.ok(Math.abs(issued.record.createdAt.getTime() - Date.now()) < 60_000)
  assert.equal(issued.record.hint, token.slice(-4))
  assert.match(issued.record.id, /^P[0-9A-Z]{13}$/)

  const principal = keyring.authenticate(token, { api: 'rest', method: 'GET' })
  assert.equal(principal.account, 'acme')
  assert.equal(principal.keyId, issued.record.id)
  assert.equal(principal.kind, 'general')
  assert.equal(principal.access, 'read_only')

  const err = throwsCode(
    () => keyring.authenticate(token, { api: 'rest', method: 'POST', scope: 'incidents.write' }),
    'ERR_FORBIDDEN',
    403,
    2010,
  )
  assert.ok(isApiKeyError(err))

  const id = issued.record.id
  const disabled = keyring.disable(admin, id)
  assert.equal(disabled.disabled.by, 'PADMIN1')
  assert.ok(disabled.disabled.at instanceof Date)
  throwsCode(() => keyring.authenticate(token, { method: 'GET' }), 'ERR_UNAUTHORIZED', 401, 2006)

  const enabled = keyring.enable(admin, id)
  assert.equal(enabled.disabled, undefined)
  assert.equal(keyring.authenticate(token).keyId, id)

  const deleted = keyring.delete(admin, id)
  assert.equal(deleted.id, id)
  throwsCode(() => keyring.authenticate(token), 'ERR_UNAUTHORIZED', 401, 2006)
  throwsCode(() => keyring.get(admin, id), 'ERR_NOT_FOUND', 404, 2100)
})

test('every kind of key, made and used as DESIGN §6 shows', () => {
  const kr = new Keyring()
  const manager = { account: 'acme', user: 'PMGR1', role: 'user' }
  const responder = { account: 'acme', user: 'PUSER1', role: 'limited_user' }

  const user = kr.createUserToken(responder, 'laptop script')
  assert.match(user.secret, /^u\+[A-Za-z0-9_-]{18}$/)
  assert.equal(user.record.owner, 'PUSER1')
  const p = kr.authenticate(user.secret, { method: 'POST', scope: 'incidents.write' })
  assert.equal(p.role, 'limited_user')
  assert.equal(p.owner, 'PUSER1')

  const integration = kr.createIntegrationKey(manager, 'PSERVICE1', 'Datadog')
  assert.match(integration.secret, /^[0-9a-f]{32}$/)
  assert.equal(kr.authenticate(integration.secret, { api: 'events' }).target, 'PSERVICE1')

  const routing = kr.createRoutingKey(manager, 'global-orchestration', 'all alerts')
  assert.match(routing.secret, /^R0[A-Z0-9]{30}$/)
  assert.equal(kr.authenticate(routing.secret, { api: 'events' }).target, 'global-orchestration')

  const scoped = kr.createScopedToken(manager, 'stale closer', ['incidents.write'])
  assert.match(scoped.secret, /^s\+[A-Za-z0-9_-]{18}$/)
  assert.deepEqual(scoped.record.scopes, ['incidents.write'])
  const sp = kr.authenticate(scoped.secret, { method: 'PUT', scope: 'incidents.write' })
  assert.deepEqual([...sp.scopes], ['incidents.write'])
  assert.equal(kr.authenticate(scoped.secret, { method: 'GET', scope: 'incidents.read' }).kind, 'scoped')
  throwsCode(() => kr.authenticate(scoped.secret, { method: 'GET', scope: 'services.read' }), 'ERR_FORBIDDEN', 403, 2010)

  // Made in the same millisecond, so compare as sets: "oldest first" cannot order them.
  const ids = kr.list(manager).map((r) => r.id)
  assert.deepEqual(ids.sort(), [integration.record.id, routing.record.id, scoped.record.id].sort())
  assert.deepEqual(
    kr.list(responder).map((r) => r.id),
    [user.record.id],
  )
})

test('account settings and user roles', () => {
  const kr = new Keyring()
  assert.deepEqual(kr.account('acme'), { restApi: true, advancedPermissions: true })
  kr.setAccount('acme', { restApi: false, advancedPermissions: true })
  assert.deepEqual(kr.account('acme'), { restApi: false, advancedPermissions: true })
  throwsCode(
    () => kr.createGeneralKey({ account: 'acme', user: 'PADMIN1', role: 'admin' }, 'CI'),
    'ERR_PLAN_RESTRICTED',
    402,
    2014,
  )
  kr.setAccount('acme', { restApi: true, advancedPermissions: true })
  const u = { account: 'acme', user: 'PUSER1', role: 'admin' }
  const t = kr.createUserToken(u, 'script')
  kr.setUserRole('acme', 'PUSER1', 'observer')
  assert.equal(kr.authenticate(t.secret).role, 'observer')
  assert.equal(kr.removeUser('acme', 'PUSER1'), 1)
  throwsCode(() => kr.authenticate(t.secret), 'ERR_UNAUTHORIZED', 401, 2006)
})

test('the audit trail has one event per management call, with Dates and codes', () => {
  const kr = new Keyring()
  const admin = { account: 'acme', user: 'PADMIN1', role: 'admin' }
  const observer = { account: 'acme', user: 'POBS1', role: 'observer' }
  const k = kr.createGeneralKey(admin, 'CI')
  throwsCode(() => kr.createGeneralKey(observer, 'nope'), 'ERR_NOT_PERMITTED', 403, 2010)
  kr.disable(admin, k.record.id)
  const trail = kr.auditTrail()
  assert.equal(trail.length, 3)
  assert.deepEqual(
    trail.map((e) => [e.action, e.actor, e.outcome, e.allowed, e.error]),
    [
      ['create', 'PADMIN1', 'allowed', true, undefined],
      ['create', 'POBS1', 'refused', false, 'not_permitted'],
      ['disable', 'PADMIN1', 'allowed', true, undefined],
    ],
  )
  assert.ok(trail[0].at instanceof Date)
  assert.equal(trail[0].keyId, k.record.id)
  assert.equal(trail[0].keyKind, 'general')
  assert.equal(trail[1].actorRole, 'observer')
})

test('expiresAt: the key works until then, and not after', async () => {
  const kr = new Keyring()
  const admin = { account: 'acme', user: 'PADMIN1', role: 'admin' }
  // Wide margins: a loaded CI machine may pause for a while between two lines.
  const expiresAt = new Date(Date.now() + 1500)
  const k = kr.createGeneralKey(admin, 'short-lived', { expiresAt })
  assert.equal(k.record.expiresAt.getTime(), expiresAt.getTime())
  assert.equal(kr.authenticate(k.secret).keyId, k.record.id)
  await new Promise((r) => setTimeout(r, 1600))
  const e = throwsCode(() => kr.authenticate(k.secret), 'ERR_UNAUTHORIZED', 401, 2006)
  assert.equal(e.reason, 'expired key')
  throwsCode(
    () => kr.createUserToken(admin, 'past', { expiresAt: new Date(Date.now() - 1000) }),
    'ERR_INVALID_INPUT',
    400,
    2001,
  )
})

test('a pepper changes digests: keys of one keyring do not work on another store', () => {
  const a = new Keyring({ pepper: 'a pepper of at least sixteen bytes' })
  const admin = { account: 'acme', user: 'PADMIN1', role: 'admin' }
  const k = a.createGeneralKey(admin, 'CI')
  assert.equal(a.authenticate(k.secret).keyId, k.record.id)
  const b = new Keyring({ pepper: new TextEncoder().encode('another pepper, sixteen+ bytes') })
  throwsCode(() => b.authenticate(k.secret), 'ERR_UNAUTHORIZED', 401, 2006)
  throwsCode(() => new Keyring({ pepper: 'short' }), 'ERR_INVALID_INPUT', 400, 2001)
})
