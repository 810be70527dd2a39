'use strict'
// setUserRoleAs, removeUserAs and setAccountAs (and their Promise twins):
// the user and plan changes made for a person. The rule is the core's
// (docs/design.md §2, "Users and the account"): an Owner or an Admin of the
// actor's account, by their stored role, may change another user's role,
// remove them, or change the plan; only an Owner makes an Owner, or changes
// or removes one. Every call, allowed or refused, is recorded with the actor.
const { test, after } = require('node:test')
const assert = require('node:assert/strict')
const fs = require('node:fs')
const os = require('node:os')
const path = require('node:path')

const { Keyring } = require('..')
const { throwsCode, rejectsCode } = require('./helpers')

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'apikeys-node-users-as-'))
after(() => fs.rmSync(dir, { recursive: true, force: true }))

const as = (user, role, account = 'acme') => ({ account, user, role })
const OWNER = as('POWNER', 'owner')
const ADMIN = as('PADMIN', 'admin')
const MANAGER = as('PMGR', 'user')
const RESPONDER = as('PRESP', 'limited_user')
const DEFAULT_PLAN = { restApi: true, advancedPermissions: true }

/** A keyring whose users have these stored roles (set by the application, as `system`). */
function keyring(options) {
  const kr = new Keyring(options)
  for (const [user, role] of [
    ['POWNER', 'owner'],
    ['PADMIN', 'admin'],
    ['PMGR', 'user'],
    ['PRESP', 'limited_user'],
    ['POWNER2', 'owner'],
  ]) {
    kr.setUserRole('acme', user, role)
  }
  return kr
}

const state = (kr, user) => kr.user('acme', user)

/** The sync call or its Promise twin, awaited: one test body runs both ways. */
const WAYS = {
  sync: (kr, name, ...args) => kr[name](...args),
  async: (kr, name, ...args) => kr[`${name}Async`](...args),
}

/** Asserts that `call()` (sync or a Promise) fails with ERR_NOT_PERMITTED; returns the error. */
async function notPermitted(call, why) {
  let caught
  try {
    await call()
  } catch (e) {
    caught = e
  }
  assert.ok(caught instanceof Error, `expected ERR_NOT_PERMITTED (${why}), got ${caught}`)
  assert.equal(caught.code, 'ERR_NOT_PERMITTED', caught.message)
  assert.equal(caught.status, 403)
  assert.equal(caught.pdCode, 2010)
  assert.match(caught.message, why)
  return caught
}

for (const [way, call] of Object.entries(WAYS)) {
  test(`${way}: an owner and an admin change roles, remove users and change the plan`, async () => {
    const kr = keyring()
    // An admin changes a manager, makes a new admin, and removes a responder.
    assert.equal(await call(kr, 'setUserRoleAs', ADMIN, 'PMGR', 'observer'), undefined)
    await call(kr, 'setUserRoleAs', ADMIN, 'PNEW', 'global_admin')
    assert.deepEqual(state(kr, 'PMGR'), { role: 'observer', removed: false })
    assert.deepEqual(state(kr, 'PNEW'), { role: 'admin', removed: false })
    const t = kr.createUserToken(RESPONDER, 'script')
    assert.equal(await call(kr, 'removeUserAs', ADMIN, 'PRESP'), 1, 'one token disabled')
    assert.deepEqual(state(kr, 'PRESP'), { role: 'limited_user', removed: true })
    throwsCode(() => kr.authenticate(t.secret), 'ERR_UNAUTHORIZED', 401, 2006)
    assert.equal(await call(kr, 'setAccountAs', ADMIN, { restApi: false, advancedPermissions: true }), undefined)
    assert.deepEqual(kr.account('acme'), { restApi: false, advancedPermissions: true })

    // An owner makes an owner, changes one, removes one, and changes the plan back.
    await call(kr, 'setUserRoleAs', OWNER, 'PMGR', 'owner')
    assert.deepEqual(state(kr, 'PMGR'), { role: 'owner', removed: false })
    await call(kr, 'setUserRoleAs', OWNER, 'POWNER2', 'admin')
    assert.deepEqual(state(kr, 'POWNER2'), { role: 'admin', removed: false })
    assert.equal(await call(kr, 'removeUserAs', OWNER, 'PMGR'), 0)
    assert.deepEqual(state(kr, 'PMGR'), { role: 'owner', removed: true })
    await call(kr, 'setAccountAs', OWNER, DEFAULT_PLAN)
    assert.deepEqual(kr.account('acme'), DEFAULT_PLAN)
  })

  test(`${way}: a manager, a responder and other roles are refused, and nothing changes`, async () => {
    const kr = keyring()
    kr.setUserRole('acme', 'PSOME', 'observer')
    for (const actor of [MANAGER, RESPONDER, as('PSOME', 'observer')]) {
      await notPermitted(() => call(kr, 'setUserRoleAs', actor, 'PRESP', 'user'), /may not change users' roles/)
      await notPermitted(() => call(kr, 'setUserRoleAs', actor, 'PNOBODY', 'observer'), /may not change users' roles/)
      await notPermitted(() => call(kr, 'removeUserAs', actor, 'PADMIN'), /may not change users' roles/)
      await notPermitted(() => call(kr, 'setAccountAs', actor, { restApi: false, advancedPermissions: false }), /may not change the account's plan/)
    }
    // Read back: every user and the plan as they were.
    assert.deepEqual(state(kr, 'PRESP'), { role: 'limited_user', removed: false })
    assert.deepEqual(state(kr, 'PADMIN'), { role: 'admin', removed: false })
    assert.equal(state(kr, 'PNOBODY'), null)
    assert.deepEqual(kr.account('acme'), DEFAULT_PLAN)
  })

  test(`${way}: the stored role decides, not the one the actor claims`, async () => {
    const kr = keyring()
    // A manager claiming to be an owner, and an admin demoted since their session began.
    await notPermitted(() => call(kr, 'setUserRoleAs', as('PMGR', 'owner'), 'PRESP', 'admin'), /'user' may not/)
    kr.setUserRole('acme', 'PADMIN', 'limited_user')
    await notPermitted(() => call(kr, 'removeUserAs', ADMIN, 'PRESP'), /'limited_user' may not/)
    await notPermitted(() => call(kr, 'setAccountAs', ADMIN, { restApi: false, advancedPermissions: false }), /'limited_user' may not/)
    // A removed owner may do nothing.
    kr.removeUser('acme', 'POWNER2')
    await notPermitted(() => call(kr, 'setUserRoleAs', as('POWNER2', 'owner'), 'PRESP', 'admin'), /removed/)
    assert.deepEqual(state(kr, 'PRESP'), { role: 'limited_user', removed: false })
    assert.deepEqual(kr.account('acme'), DEFAULT_PLAN)
  })

  test(`${way}: an admin never makes an owner, nor changes or removes one`, async () => {
    const kr = keyring()
    await notPermitted(() => call(kr, 'setUserRoleAs', ADMIN, 'PRESP', 'owner'), /only an owner/)
    await notPermitted(() => call(kr, 'setUserRoleAs', ADMIN, 'POWNER', 'admin'), /only an owner/)
    await notPermitted(() => call(kr, 'setUserRoleAs', ADMIN, 'POWNER', 'observer'), /only an owner/)
    await notPermitted(() => call(kr, 'removeUserAs', ADMIN, 'POWNER'), /only an owner/)
    assert.deepEqual(state(kr, 'PRESP'), { role: 'limited_user', removed: false })
    assert.deepEqual(state(kr, 'POWNER'), { role: 'owner', removed: false })
    // The owner's token still works as an owner's.
    const t = kr.createUserToken(OWNER, 'owner script')
    assert.equal(kr.authenticate(t.secret).role, 'owner')
  })

  test(`${way}: the audit trail records the actor and the action, allowed or refused`, async () => {
    const kr = keyring()
    const before = kr.auditTrail().length
    const context = { requestId: 'req-7', remoteAddress: '192.0.2.7' }
    await call(kr, 'setUserRoleAs', { ...ADMIN, context }, 'PMGR', 'limited_user')
    await notPermitted(() => call(kr, 'removeUserAs', ADMIN, 'POWNER'), /only an owner/)
    await call(kr, 'setAccountAs', ADMIN, { restApi: true, advancedPermissions: false })
    await notPermitted(() => call(kr, 'setUserRoleAs', MANAGER, 'PRESP', 'admin'), /may not/)
    assert.equal(await call(kr, 'removeUserAs', OWNER, 'PRESP'), 0)
    const added = kr.auditTrail().slice(before)
    assert.equal(added.length, 5, JSON.stringify(added))
    const [role, refusedRemoval, plan, refusedRole, removal] = added
    for (const e of added) assert.equal(e.account, 'acme')

    assert.equal(role.actor, 'PADMIN')
    assert.equal(role.actorRole, 'admin')
    assert.equal(role.action, 'set_user_role')
    assert.equal(role.subjectUser, 'PMGR')
    assert.equal(role.outcome, 'allowed')
    assert.equal(role.allowed, true)
    assert.deepEqual(role.changes, [{ field: 'role', beforeValue: 'user', value: 'limited_user' }])
    assert.equal(role.context.requestId, 'req-7')
    const pd = role.toPagerDuty()
    assert.deepEqual([pd.actors[0].id, pd.actors[0].type], ['PADMIN', 'user_reference'])
    assert.deepEqual([pd.root_resource.id, pd.root_resource.type], ['PMGR', 'user_reference'])

    assert.equal(refusedRemoval.actor, 'PADMIN')
    assert.equal(refusedRemoval.action, 'remove_user')
    assert.equal(refusedRemoval.subjectUser, 'POWNER')
    assert.equal(refusedRemoval.outcome, 'refused')
    assert.equal(refusedRemoval.allowed, false)
    assert.equal(refusedRemoval.error, 'not_permitted')
    assert.match(refusedRemoval.reason, /only an owner/)
    assert.deepEqual(refusedRemoval.changes, [])

    assert.equal(plan.actor, 'PADMIN')
    assert.equal(plan.action, 'set_account')
    assert.equal(plan.outcome, 'allowed')
    assert.deepEqual(plan.changes, [{ field: 'advanced_permissions', beforeValue: 'true', value: 'false' }])

    // Recorded with the role the core decided on: the stored one.
    assert.equal(refusedRole.actor, 'PMGR')
    assert.equal(refusedRole.actorRole, 'limited_user')
    assert.equal(refusedRole.action, 'set_user_role')
    assert.equal(refusedRole.outcome, 'refused')
    assert.equal(refusedRole.error, 'not_permitted')

    assert.equal(removal.actor, 'POWNER')
    assert.equal(removal.actorRole, 'owner')
    assert.equal(removal.action, 'remove_user')
    assert.equal(removal.outcome, 'allowed')
    assert.deepEqual(removal.changes, [{ field: 'removed', beforeValue: 'false', value: 'true' }])

    // The application's own calls are still recorded as the system.
    kr.setUserRole('acme', 'PRESP', 'observer')
    const system = kr.auditTrail().at(-1)
    assert.equal(system.actor, 'system')
    assert.equal(system.action, 'set_user_role')
    // And the store's trail holds the same records, found by actor.
    const page = kr.auditRecords({ account: 'acme', actor: 'PADMIN' })
    assert.deepEqual(
      page.records.map((e) => [e.action, e.outcome]),
      [
        ['set_account', 'allowed'],
        ['remove_user', 'refused'],
        ['set_user_role', 'allowed'],
      ],
    )
  })

  test(`${way}: a user token of a user demoted by setUserRoleAs acts with the new role`, async () => {
    const kr = keyring()
    const t = kr.createUserToken(MANAGER, 'script')
    const write = { method: 'POST', scope: 'incidents.write' }
    assert.equal(kr.authenticate(t.secret, write).role, 'user', 'a manager may write incidents')
    await call(kr, 'setUserRoleAs', ADMIN, 'PMGR', 'observer')
    const e = throwsCode(() => kr.authenticate(t.secret, write), 'ERR_FORBIDDEN', 403, 2010)
    assert.ok(!e.message.includes(t.secret))
    const read = kr.authenticate(t.secret, { method: 'GET', scope: 'incidents.read' })
    assert.equal(read.role, 'observer')
    // Promoted back by the owner: the token writes again.
    await call(kr, 'setUserRoleAs', OWNER, 'PMGR', 'manager')
    assert.equal(kr.authenticate(t.secret, write).role, 'user')
    // Removed by an admin: the token stops working.
    assert.equal(await call(kr, 'removeUserAs', ADMIN, 'PMGR'), 1)
    throwsCode(() => kr.authenticate(t.secret), 'ERR_UNAUTHORIZED', 401, 2006)
  })

  test(`${way}: the actor acts in their own account only`, async () => {
    const kr = keyring()
    kr.setUserRole('other', 'PVICTIM', 'user')
    // The acme admin's change lands in acme, never in the other account.
    await call(kr, 'setUserRoleAs', ADMIN, 'PVICTIM', 'observer')
    assert.deepEqual(kr.user('other', 'PVICTIM'), { role: 'user', removed: false })
    assert.deepEqual(kr.user('acme', 'PVICTIM'), { role: 'observer', removed: false })
    await call(kr, 'setAccountAs', ADMIN, { restApi: false, advancedPermissions: false })
    assert.deepEqual(kr.account('other'), DEFAULT_PLAN)
  })
}

test('bad input is a clear error naming the argument, never a crash (sync and Promise)', async () => {
  const kr = keyring()
  // [what, (actor, user) for setUserRoleAs (with a role) and removeUserAs, code, field]
  const userCases = [
    ['actor not an object', ['acme/PADMIN/admin', 'PMGR'], 'ERR_INVALID_ARG_TYPE', 'actor'],
    ['actor without a role', [{ account: 'acme', user: 'PADMIN' }, 'PMGR'], 'ERR_INVALID_ARG_TYPE', 'actor.role'],
    ['actor without a user', [{ account: 'acme', role: 'admin' }, 'PMGR'], 'ERR_INVALID_ARG_TYPE', 'actor.user'],
    ['actor without an account', [{ user: 'PADMIN', role: 'admin' }, 'PMGR'], 'ERR_INVALID_ARG_TYPE', 'actor.account'],
    ['actor with an unknown role', [as('PADMIN', 'boss'), 'PMGR'], 'ERR_INVALID_INPUT', 'role'],
    ['actor with an empty user', [as('', 'admin'), 'PMGR'], 'ERR_INVALID_INPUT', 'user'],
    ['actor with an empty account', [as('PADMIN', 'admin', ''), 'PMGR'], 'ERR_INVALID_INPUT', 'account'],
    ['user a number', [ADMIN, 7], 'ERR_INVALID_ARG_TYPE', 'user'],
    ['user null', [ADMIN, null], 'ERR_INVALID_ARG_TYPE', 'user'],
    ['user empty', [ADMIN, ''], 'ERR_INVALID_INPUT', 'user'],
    ['user with a newline', [ADMIN, 'PM\nGR'], 'ERR_INVALID_INPUT', 'user'],
    ['user a lone surrogate', [ADMIN, 'PMGR\ud800'], 'ERR_INVALID_INPUT', 'user'],
  ]
  const cases = []
  for (const [what, args, code, field] of userCases) {
    cases.push([what, 'setUserRoleAs', [...args, 'observer'], code, field])
    cases.push([what, 'removeUserAs', args, code, field])
  }
  cases.push(
    ['user missing', 'removeUserAs', [ADMIN], 'ERR_INVALID_ARG_TYPE', 'user'],
    ['role unknown', 'setUserRoleAs', [ADMIN, 'PMGR', 'superuser'], 'ERR_INVALID_INPUT', 'role'],
    ['role capitalised', 'setUserRoleAs', [ADMIN, 'PMGR', 'Admin'], 'ERR_INVALID_INPUT', 'role'],
    ['role missing', 'setUserRoleAs', [ADMIN, 'PMGR'], 'ERR_INVALID_ARG_TYPE', 'role'],
    ['role an object', 'setUserRoleAs', [ADMIN, 'PMGR', { toString: () => 'admin' }], 'ERR_INVALID_ARG_TYPE', 'role'],
    ['settings missing', 'setAccountAs', [ADMIN], 'ERR_INVALID_ARG_TYPE', 'settings'],
    ['settings a string', 'setAccountAs', [ADMIN, 'legacy'], 'ERR_INVALID_ARG_TYPE', 'settings'],
    ['settings.restApi not a boolean', 'setAccountAs', [ADMIN, { restApi: 'no', advancedPermissions: true }], 'ERR_INVALID_ARG_TYPE', 'settings.rest_api'],
    ['settings missing a field', 'setAccountAs', [ADMIN, { restApi: false }], 'ERR_INVALID_ARG_TYPE', 'settings.advanced_permissions'],
    ['settings with an unknown field', 'setAccountAs', [ADMIN, { ...DEFAULT_PLAN, restAPI: false }], 'ERR_INVALID_INPUT', 'settings'],
    ['actor a string', 'setAccountAs', ['PADMIN', DEFAULT_PLAN], 'ERR_INVALID_ARG_TYPE', 'actor'],
    ['actor without a role', 'setAccountAs', [{ account: 'acme', user: 'PADMIN' }, DEFAULT_PLAN], 'ERR_INVALID_ARG_TYPE', 'actor.role'],
    ['actor with an unknown role', 'setAccountAs', [as('PADMIN', 'boss'), DEFAULT_PLAN], 'ERR_INVALID_INPUT', 'role'],
    ['actor with an empty user', 'setAccountAs', [as('', 'admin'), DEFAULT_PLAN], 'ERR_INVALID_INPUT', 'user'],
  )
  const trail = kr.auditTrail().length
  for (const [what, method, args, code, field] of cases) {
    const label = `${method}: ${what}`
    const e = throwsCode(() => kr[method](...args), code, 400, 2001)
    assert.equal(e.field, field, `${label}: field of "${e.message}"`)
    assert.ok(e.message.length > 0 && !e.message.includes('\ufffd'), label)
    if (code === 'ERR_INVALID_ARG_TYPE') assert.ok(e instanceof TypeError, label)
    // The Promise twin rejects the same way, never throws.
    const p = kr[`${method}Async`](...args)
    assert.ok(p instanceof Promise, `${label}: the twin answers a Promise`)
    const r = await rejectsCode(p, code, 400, 2001)
    assert.equal(r.field, field, `${label} (Async)`)
  }
  // Nothing changed, and no input error was recorded as an allowed change.
  assert.deepEqual(state(kr, 'PMGR'), { role: 'user', removed: false })
  assert.deepEqual(state(kr, 'PADMIN'), { role: 'admin', removed: false })
  assert.deepEqual(kr.account('acme'), DEFAULT_PLAN)
  assert.ok(kr.auditTrail().slice(trail).every((e) => !e.allowed))
})

test('with a SQLite store, the changes are durable across a reopen', async () => {
  const file = path.join(dir, 'users-as.db')
  let token
  {
    const kr = keyring({ store: { sqlite: file } })
    assert.equal(kr.storeKind, 'sqlite')
    token = kr.createUserToken(MANAGER, 'script').secret
    assert.equal(kr.authenticate(token, { method: 'POST', scope: 'incidents.write' }).role, 'user')
    kr.setUserRoleAs(ADMIN, 'PMGR', 'observer')
    await kr.setUserRoleAsAsync(OWNER, 'PRESP', 'owner')
    assert.equal(kr.removeUserAs(OWNER, 'POWNER2'), 0)
    await kr.setAccountAsAsync(ADMIN, { restApi: true, advancedPermissions: false })
    // Refused calls change nothing, there either.
    await notPermitted(() => kr.removeUserAsAsync(ADMIN, 'PRESP'), /only an owner/)
    kr.flush()
  }
  const again = await Keyring.open({ store: { sqlite: file } })
  assert.deepEqual(again.user('acme', 'PMGR'), { role: 'observer', removed: false })
  assert.deepEqual(again.user('acme', 'PRESP'), { role: 'owner', removed: false })
  assert.deepEqual(again.user('acme', 'POWNER2'), { role: 'owner', removed: true })
  assert.deepEqual(again.account('acme'), { restApi: true, advancedPermissions: false })
  // The durable trail holds the records with their actors.
  const records = (await again.auditRecordsAsync({ account: 'acme', actions: ['set_user_role', 'remove_user', 'set_account'] })).records
  const byActor = records.filter((e) => e.actor !== 'system').map((e) => [e.actor, e.action, e.outcome, e.subjectUser ?? null])
  assert.deepEqual(byActor, [
    ['PADMIN', 'remove_user', 'refused', 'PRESP'],
    ['PADMIN', 'set_account', 'allowed', null],
    ['POWNER', 'remove_user', 'allowed', 'POWNER2'],
    ['POWNER', 'set_user_role', 'allowed', 'PRESP'],
    ['PADMIN', 'set_user_role', 'allowed', 'PMGR'],
  ])
  // The demotion holds for the token after the reopen. (The plan now lacks
  // Advanced Permissions, which user tokens need: give it back first.)
  again.setAccountAs(OWNER, DEFAULT_PLAN)
  throwsCode(() => again.authenticate(token, { method: 'POST', scope: 'incidents.write' }), 'ERR_FORBIDDEN', 403, 2010)
  assert.equal(again.authenticate(token, { method: 'GET', scope: 'incidents.read' }).role, 'observer')
})
