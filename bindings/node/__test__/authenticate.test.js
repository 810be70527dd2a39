'use strict'
// Every way authenticate fails, with its code, status and pdCode; the principal
// cache never answers for a key or role that changed; the Promise twin agrees.
const test = require('node:test')
const assert = require('node:assert/strict')
const { Keyring } = require('..')
const { actor, throwsCode, rejectsCode } = require('./helpers')

function setup() {
  const kr = new Keyring()
  const owner = actor('owner')
  return {
    kr,
    owner,
    general: kr.createGeneralKey(owner, 'full'),
    readOnly: kr.createGeneralKey(owner, 'read only', { readOnly: true }),
    events: kr.createIntegrationKey(owner, 'PSERVICE1', 'Datadog'),
    scoped: kr.createScopedToken(owner, 'closer', ['incidents.write']),
  }
}

test('malformed keys: ERR_UNAUTHORIZED 401 2006, for every malformation', () => {
  const { kr } = setup()
  const cases = {
    empty: '',
    'too short': 'abc',
    'REST length, bad character': 'a'.repeat(19) + '+',
    'Events length, bad character': 'g'.repeat(32),
    'one too long': 'a'.repeat(21),
    'NUL inside': 'a'.repeat(10) + '\0' + 'a'.repeat(9),
    unicode: 'é'.repeat(10),
  }
  for (const [name, token] of Object.entries(cases)) {
    const e = throwsCode(() => kr.authenticate(token), 'ERR_UNAUTHORIZED', 401, 2006)
    assert.match(e.reason, /malformed/, name)
    assert.equal(e.message, 'unauthorized: the API key is not valid', name)
  }
})

test('unknown and deleted keys: ERR_UNAUTHORIZED 401 2006', () => {
  const { kr, owner, general } = setup()
  const e = throwsCode(() => kr.authenticate('A'.repeat(20)), 'ERR_UNAUTHORIZED', 401, 2006)
  assert.equal(e.reason, 'unknown or deleted key')
  kr.delete(owner, general.record.id)
  const d = throwsCode(() => kr.authenticate(general.secret), 'ERR_UNAUTHORIZED', 401, 2006)
  assert.equal(d.reason, 'unknown or deleted key')
})

test('a REST key on the Events API: ERR_WRONG_API 400; an Events key on REST: ERR_WRONG_API 401', () => {
  const { kr, general, events } = setup()
  throwsCode(() => kr.authenticate(general.secret, { api: 'events' }), 'ERR_WRONG_API', 400, 2006)
  throwsCode(() => kr.authenticate(events.secret, { api: 'rest', method: 'GET' }), 'ERR_WRONG_API', 401, 2006)
  throwsCode(() => kr.authenticate(events.secret), 'ERR_WRONG_API', 401, 2006)
})

test('a disabled key fails at once and works again once enabled, though its principal was cached', () => {
  const { kr, owner, general } = setup()
  const before = kr.authenticate(general.secret)
  kr.disable(owner, general.record.id)
  const e = throwsCode(() => kr.authenticate(general.secret), 'ERR_UNAUTHORIZED', 401, 2006)
  assert.equal(e.reason, 'disabled key')
  kr.enable(owner, general.record.id)
  assert.equal(kr.authenticate(general.secret), before)
})

test('an owner removed: ERR_UNAUTHORIZED; a role changed: the next answer has the new role', () => {
  const { kr } = setup()
  const me = actor('admin', 'PUSER1')
  const t = kr.createUserToken(me, 'script')
  const asAdmin = kr.authenticate(t.secret, { method: 'POST', scope: 'users.write' })
  assert.equal(asAdmin.role, 'admin')
  assert.ok(Object.isFrozen(asAdmin))
  assert.equal(kr.authenticate(t.secret, { method: 'POST', scope: 'users.write' }), asAdmin)

  kr.setUserRole('acme', 'PUSER1', 'observer')
  throwsCode(() => kr.authenticate(t.secret, { method: 'POST', scope: 'users.write' }), 'ERR_FORBIDDEN', 403, 2010)
  const asObserver = kr.authenticate(t.secret, { method: 'GET', scope: 'incidents.read' })
  assert.equal(asObserver.role, 'observer')
  assert.notEqual(asObserver, asAdmin)
  assert.equal(asAdmin.role, 'admin', 'an answer already given is not changed')

  kr.setUserRole('acme', 'PUSER1', 'global_admin')
  assert.equal(kr.authenticate(t.secret).role, 'admin')
  assert.equal(kr.authenticate(t.secret), asAdmin)

  kr.removeUser('acme', 'PUSER1')
  const e = throwsCode(() => kr.authenticate(t.secret), 'ERR_UNAUTHORIZED', 401, 2006)
  assert.match(e.reason, /disabled key|owner was removed/)
})

test('an expired key: ERR_UNAUTHORIZED', async () => {
  const { kr, owner } = setup()
  // Wide margins: a loaded CI machine may pause for a while between two lines.
  const k = kr.createGeneralKey(owner, 'brief', { expiresAt: new Date(Date.now() + 1500) })
  kr.authenticate(k.secret)
  await new Promise((r) => setTimeout(r, 1600))
  const e = throwsCode(() => kr.authenticate(k.secret), 'ERR_UNAUTHORIZED', 401, 2006)
  assert.equal(e.reason, 'expired key')
})

test('REST on a legacy plan: ERR_PLAN_RESTRICTED 402 2014; Events keys still work', () => {
  const { kr, general, events } = setup()
  const t = kr.createUserToken(actor('user', 'PUSER2'), 'script')
  kr.setAccount('acme', { restApi: false, advancedPermissions: true })
  throwsCode(() => kr.authenticate(general.secret), 'ERR_PLAN_RESTRICTED', 402, 2014)
  assert.equal(kr.authenticate(events.secret, { api: 'events' }).target, 'PSERVICE1')
  kr.setAccount('acme', { restApi: true, advancedPermissions: false })
  throwsCode(() => kr.authenticate(t.secret), 'ERR_PLAN_RESTRICTED', 402, 2014)
  assert.equal(kr.authenticate(general.secret).kind, 'general')
})

test('what a key may not do: ERR_FORBIDDEN 403 2010', () => {
  const { kr, readOnly, scoped, general } = setup()
  assert.equal(kr.authenticate(readOnly.secret, { method: 'HEAD' }).access, 'read_only')
  throwsCode(() => kr.authenticate(readOnly.secret, { method: 'DELETE' }), 'ERR_FORBIDDEN', 403, 2010)
  throwsCode(() => kr.authenticate(readOnly.secret, { method: 'GET', scope: 'incidents.write' }), 'ERR_FORBIDDEN', 403, 2010)
  throwsCode(() => kr.authenticate(scoped.secret, { method: 'GET' }), 'ERR_FORBIDDEN', 403, 2010)
  throwsCode(() => kr.authenticate(scoped.secret, { method: 'POST', scope: 'services.write' }), 'ERR_FORBIDDEN', 403, 2010)
  const lim = kr.createUserToken(actor('limited_user', 'PRESP'), 'r')
  throwsCode(() => kr.authenticate(lim.secret, { method: 'POST', scope: 'services.write' }), 'ERR_FORBIDDEN', 403, 2010)
  assert.equal(kr.authenticate(lim.secret, { method: 'POST', scope: 'incidents.write' }).role, 'limited_user')
  assert.equal(kr.authenticate(general.secret, { method: 'post' }).access, 'full_access')
})

test('a bad api or scope in the request: ERR_INVALID_INPUT naming it', () => {
  const { kr, general } = setup()
  const a = throwsCode(() => kr.authenticate(general.secret, { api: 'graphql' }), 'ERR_INVALID_INPUT', 400, 2001)
  assert.equal(a.field, 'api')
  const s = throwsCode(() => kr.authenticate(general.secret, { scope: 'incidents' }), 'ERR_INVALID_INPUT', 400, 2001)
  assert.equal(s.field, 'scope')
})

test('authenticateAsync agrees with authenticate, answers the same cached principal, and rejects with the same errors', async () => {
  const { kr, owner, general, readOnly, events } = setup()
  const sync = kr.authenticate(general.secret)
  assert.equal(await kr.authenticateAsync(general.secret), sync)
  assert.equal((await kr.authenticateAsync(events.secret, { api: 'events' })).target, 'PSERVICE1')
  await rejectsCode(kr.authenticateAsync(readOnly.secret, { method: 'POST' }), 'ERR_FORBIDDEN', 403, 2010)
  await rejectsCode(kr.authenticateAsync(general.secret, { api: 'events' }), 'ERR_WRONG_API', 400, 2006)
  await rejectsCode(kr.authenticateAsync('nope'), 'ERR_UNAUTHORIZED', 401, 2006)
  await rejectsCode(kr.authenticateAsync(42), 'ERR_INVALID_ARG_TYPE', 400, 2001)
  kr.disable(owner, general.record.id)
  await rejectsCode(kr.authenticateAsync(general.secret), 'ERR_UNAUTHORIZED', 401, 2006)
})

test('the Promise twins of the management calls work and reject with codes', async () => {
  const kr = new Keyring()
  const owner = actor('owner')
  const k = await kr.createGeneralKeyAsync(owner, 'CI', { readOnly: true })
  assert.equal(k.record.access, 'read_only')
  assert.equal(k.record.readOnly, true)
  assert.equal(kr.authenticate(k.secret).keyId, k.record.id)
  const u = await kr.createUserTokenAsync(owner, 'me')
  assert.equal(u.record.readOnly, false)
  const i = await kr.createIntegrationKeyAsync(owner, 'PSVC', 'x')
  const r = await kr.createRoutingKeyAsync(owner, 'orch', 'x')
  const s = await kr.createScopedTokenAsync(owner, 'x', ['incidents.read'])
  assert.deepEqual(
    [u, i, r, s].map((x) => x.record.kind),
    ['user_token', 'integration', 'routing', 'scoped'],
  )
  assert.equal((await kr.listAsync(owner)).length, 5)
  assert.equal((await kr.getAsync(owner, i.record.id)).target, 'PSVC')
  assert.equal((await kr.disableAsync(owner, k.record.id)).disabled.by, 'POWNER')
  assert.equal((await kr.enableAsync(owner, k.record.id)).disabled, undefined)
  assert.equal((await kr.deleteAsync(owner, s.record.id)).id, s.record.id)
  await kr.setAccountAsync('acme', { restApi: true, advancedPermissions: true })
  assert.deepEqual(await kr.accountAsync('acme'), { restApi: true, advancedPermissions: true })
  await kr.setUserRoleAsync('acme', 'POWNER', 'observer')
  assert.equal(kr.authenticate(u.secret).role, 'observer')
  assert.equal(await kr.removeUserAsync('acme', 'POWNER'), 1)
  await rejectsCode(kr.createGeneralKeyAsync(actor('observer'), 'x'), 'ERR_NOT_PERMITTED', 403, 2010)
  await rejectsCode(kr.getAsync(owner, 'P0000000000000'), 'ERR_NOT_FOUND', 404, 2100)
  await rejectsCode(kr.setUserRoleAsync('acme', 'PX', 'boss'), 'ERR_INVALID_INPUT', 400, 2001)
  await rejectsCode(kr.listAsync(undefined), 'ERR_INVALID_ARG_TYPE', 400, 2001)
})

test('authenticate answers the same frozen object for every call by one key and role', () => {
  const { kr, general } = setup()
  const first = kr.authenticate(general.secret)
  for (let i = 0; i < 1000; i++) assert.equal(kr.authenticate(general.secret), first)
  assert.throws(() => {
    first.account = 'evil'
  }, TypeError)
  assert.throws(() => first.scopes.push('x'), TypeError)
})

test('errors built by the JavaScript layer look exactly like the ones the addon throws', () => {
  const { kr, owner, general, readOnly, events } = setup()
  const native = require('../binding.js').Keyring.prototype.authenticate
  kr.disable(owner, general.record.id)
  const cases = [
    ['x', undefined],
    ['A'.repeat(20), undefined],
    [general.secret, undefined],
    [general.secret, { api: 'events' }],
    [events.secret, { method: 'GET' }],
    [readOnly.secret, { method: 'POST' }],
    [readOnly.secret, { method: 'purge' }],
    [readOnly.secret, { scope: 'incidents' }],
    [readOnly.secret, { api: 'soap' }],
  ]
  for (const [token, request] of cases) {
    for (let round = 0; round < 2; round++) {
      let mine
      let theirs
      try {
        kr.authenticate(token, request)
      } catch (e) {
        mine = e
      }
      try {
        native.call(kr, token, request)
      } catch (e) {
        theirs = e
      }
      assert.ok(mine instanceof Error && theirs instanceof Error, JSON.stringify(request))
      for (const field of ['name', 'message', 'code', 'status', 'pdCode', 'reason', 'field']) {
        assert.equal(mine[field], theirs[field], `${field} for ${JSON.stringify(request)}`)
      }
      assert.deepEqual(Object.keys(mine).sort(), Object.keys(theirs).sort())
    }
  }
})

test('methods in any case and unknown methods go through the named path with the same answers', () => {
  const { kr, readOnly, general } = setup()
  assert.equal(kr.authenticate(readOnly.secret, { method: 'get' }).keyId, readOnly.record.id)
  assert.equal(kr.authenticate(readOnly.secret, { method: 'Head' }).keyId, readOnly.record.id)
  throwsCode(() => kr.authenticate(readOnly.secret, { method: 'post' }), 'ERR_FORBIDDEN', 403, 2010)
  throwsCode(() => kr.authenticate(readOnly.secret, { method: 'PROPFIND' }), 'ERR_FORBIDDEN', 403, 2010)
  assert.equal(kr.authenticate(general.secret, { method: 'PROPFIND' }), kr.authenticate(general.secret))
  assert.equal(kr.authenticate(general.secret, { method: 'toString' }), kr.authenticate(general.secret))
})

test('over a rate limit: ERR_RATE_LIMITED 429 2020 with retryAfter; other classes unaffected', async () => {
  const kr = new Keyring({ rateLimits: { generalKey: { requests: 3, windowMs: 60_000 } } })
  const owner = actor('owner')
  const k = kr.createGeneralKey(owner, 'CI')
  const other = kr.createGeneralKey(owner, 'other')
  const t = kr.createUserToken(owner, 'me')
  for (let i = 0; i < 3; i++) kr.authenticate(k.secret)
  const e = throwsCode(() => kr.authenticate(k.secret), 'ERR_RATE_LIMITED', 429, 2020)
  assert.ok(e.retryAfter > 0 && e.retryAfter <= 60_000, String(e.retryAfter))
  await rejectsCode(kr.authenticateAsync(k.secret), 'ERR_RATE_LIMITED', 429, 2020)
  assert.equal(kr.authenticate(other.secret).keyId, other.record.id)
  for (let i = 0; i < 10; i++) kr.authenticate(t.secret)

  const pd = new Keyring({ rateLimits: 'pagerduty' })
  const ev = pd.createIntegrationKey(owner, 'PSVC', 'x')
  for (let i = 0; i < 120; i++) pd.authenticate(ev.secret, { api: 'events' })
  throwsCode(() => pd.authenticate(ev.secret, { api: 'events' }), 'ERR_RATE_LIMITED', 429, 2020)

  throwsCode(() => new Keyring({ rateLimits: 'generous' }), 'ERR_INVALID_INPUT', 400, 2001)
  throwsCode(() => new Keyring({ rateLimits: { general: { requests: 1, windowMs: 1 } } }), 'ERR_INVALID_INPUT', 400, 2001)
  throwsCode(() => new Keyring({ rateLimits: { user: { requests: 0, windowMs: 1 } } }), 'ERR_INVALID_ARG_TYPE', 400, 2001)
})
