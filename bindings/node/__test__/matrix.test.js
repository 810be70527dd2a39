'use strict'
// The rows of DESIGN §3's permission matrix, role by role, through the Node API.
const test = require('node:test')
const assert = require('node:assert/strict')
const { Keyring } = require('..')
const { ROLES, actor, throwsCode } = require('./helpers')

const ADMIN_OR_OWNER = new Set(['owner', 'admin'])
const MANAGER_OR_ABOVE = new Set(['owner', 'admin', 'user'])

/** Runs `fn`; true if allowed, false on ERR_NOT_PERMITTED (403, 2010); anything else fails the test. */
function allowed(fn) {
  try {
    fn()
    return true
  } catch (e) {
    assert.equal(e.code, 'ERR_NOT_PERMITTED', e.message)
    assert.equal(e.status, 403)
    assert.equal(e.pdCode, 2010)
    return false
  }
}

for (const role of ROLES) {
  test(`${role}: general access keys (create, list, disable, enable, delete: Owner and Admin only)`, () => {
    const kr = new Keyring()
    const me = actor(role)
    const expected = ADMIN_OR_OWNER.has(role)
    assert.equal(allowed(() => kr.createGeneralKey(me, 'CI')), expected, 'create')
    const k = kr.createGeneralKey(actor('owner'), 'CI')
    assert.equal(allowed(() => kr.get(me, k.record.id)), expected, 'get')
    assert.equal(
      kr.list(me).some((r) => r.id === k.record.id),
      expected,
      'list',
    )
    assert.equal(allowed(() => kr.disable(me, k.record.id)), expected, 'disable')
    assert.equal(allowed(() => kr.enable(me, k.record.id)), expected, 'enable')
    assert.equal(allowed(() => kr.delete(me, k.record.id)), expected, 'delete')
  })

  test(`${role}: a user token for oneself (every role but read_only_limited_user; Advanced Permissions needed)`, () => {
    const kr = new Keyring()
    const me = actor(role)
    const expected = role !== 'read_only_limited_user'
    assert.equal(allowed(() => kr.createUserToken(me, 'script')), expected, 'create')
    if (expected) {
      // own tokens: list and delete for any role
      const t = kr.createUserToken(me, 'second')
      assert.ok(kr.list(me).some((r) => r.id === t.record.id), 'list own')
      assert.equal(kr.delete(me, t.record.id).id, t.record.id, 'delete own')
      kr.setAccount('acme', { restApi: true, advancedPermissions: false })
      throwsCode(() => kr.createUserToken(me, 'no AP'), 'ERR_PLAN_RESTRICTED', 402, 2014)
    }
  })

  test(`${role}: other users' user tokens (list: Owner and Admin; delete: Owner and Admin, not of an Owner or Admin)`, () => {
    const me = actor(role)
    for (const victimRole of ROLES.filter((r) => r !== 'read_only_limited_user')) {
      const kr = new Keyring()
      const victim = actor(victimRole, 'PVICTIM')
      const t = kr.createUserToken(victim, 'theirs')
      assert.equal(
        kr.list(me).some((r) => r.id === t.record.id),
        ADMIN_OR_OWNER.has(role),
        `list a ${victimRole}'s token`,
      )
      assert.equal(
        allowed(() => kr.delete(me, t.record.id)),
        ADMIN_OR_OWNER.has(role) && !ADMIN_OR_OWNER.has(victimRole),
        `delete a ${victimRole}'s token`,
      )
    }
  })

  test(`${role}: integration, routing keys and scoped tokens (Manager or above)`, () => {
    const kr = new Keyring()
    const me = actor(role)
    const expected = MANAGER_OR_ABOVE.has(role)
    assert.equal(allowed(() => kr.createIntegrationKey(me, 'PSERVICE1', 'Datadog')), expected, 'create integration')
    assert.equal(allowed(() => kr.createRoutingKey(me, 'orch', 'all')), expected, 'create routing')
    assert.equal(allowed(() => kr.createScopedToken(me, 'bot', ['incidents.read'])), expected, 'create scoped')
    const owner = actor('owner')
    for (const k of [
      kr.createIntegrationKey(owner, 'PSERVICE2', 'x'),
      kr.createRoutingKey(owner, 'orch2', 'x'),
      kr.createScopedToken(owner, 'x', ['services.write']),
    ]) {
      assert.equal(
        kr.list(me).some((r) => r.id === k.record.id),
        expected,
        `list ${k.record.kind}`,
      )
      assert.equal(allowed(() => kr.delete(me, k.record.id)), expected, `delete ${k.record.kind}`)
    }
  })
}

test('nobody acts on a key of another account: it does not exist for them', () => {
  const kr = new Keyring()
  const k = kr.createGeneralKey(actor('owner', 'POWNER', 'acme'), 'CI')
  const outsider = actor('owner', 'POWNER', 'globex')
  for (const call of ['get', 'disable', 'enable', 'delete']) {
    throwsCode(() => kr[call](outsider, k.record.id), 'ERR_NOT_FOUND', 404, 2100)
  }
  assert.deepEqual(kr.list(outsider), [])
})

test('only general keys are disabled; the others are deleted', () => {
  const kr = new Keyring()
  const t = kr.createScopedToken(actor('owner'), 'x', ['incidents.read'])
  const e = throwsCode(() => kr.disable(actor('owner'), t.record.id), 'ERR_INVALID_INPUT', 400, 2001)
  assert.equal(e.field, 'key_id')
})
