'use strict'
// Rotation (docs/design.md §8) through the Node API, on the in-memory store,
// SQLite and PostgreSQL: the checks of the core's own suite
// (crates/apikeys/src/testing/lifecycle.rs), moved through a ManualClock.
const { test, describe } = require('node:test')
const assert = require('node:assert/strict')
const { inspect } = require('node:util')

const { Keyring, IssuedKey } = require('..')
const { throwsCode, rejectsCode } = require('./helpers')
const { MINUTE, HOUR, DAY, QUIET, SLACK, START, STORES, setup, uniqueAccount, admin, works, refusedAsRotated } = require('./lifecycle')

for (const [storeName, withStore] of STORES) {
  describe(`rotation (${storeName})`, () => {
    test('during the grace both keys work; at its end the old one is refused, the new one works on', () => {
      const { kr, clock } = setup(withStore)
      const acct = uniqueAccount('rot-grace')
      const old = kr.createGeneralKey(admin(acct), 'ci')
      const next = kr.rotate(admin(acct), old.record.id, { graceMs: HOUR })
      // The same shape as a create: an IssuedKey whose key shows only through `secret`.
      assert.ok(next instanceof IssuedKey)
      assert.equal(next.secret.length, 20)
      assert.notEqual(next.secret, old.secret)
      assert.match(inspect(next), /secret: '\[REDACTED\]'/)
      assert.deepEqual(Object.keys(JSON.parse(JSON.stringify(next))), ['record'])
      assert.equal(next.record.rotatedFrom, old.record.id)
      assert.equal(next.record.rotatedTo, undefined)
      // The new key's rotation, nested as in Rust and Python: only the link back.
      assert.deepEqual(next.record.rotation, { rotatedFrom: old.record.id, quietMs: 0 })
      assert.equal(old.record.rotation, undefined, 'a key never rotated has no rotation')
      assert.equal(works(kr, old).keyId, old.record.id)
      assert.equal(works(kr, next).keyId, next.record.id)
      // Some clients stay on the old key: traffic has not moved, the overlap lasts the whole grace.
      for (let i = 0; i < 5; i++) {
        clock.advance(10 * MINUTE)
        works(kr, old)
        works(kr, next)
      }
      clock.set(new Date(START + HOUR - 1))
      works(kr, old)
      clock.advance(1)
      refusedAsRotated(kr, old)
      assert.equal(works(kr, next).keyId, next.record.id)
      // The link both ways, and the end of the overlap on the old record
      // (after a flush: durable stores queue the new key's first use).
      kr.flush()
      const oldRec = kr.get(admin(acct), old.record.id)
      const newRec = kr.get(admin(acct), next.record.id)
      assert.equal(oldRec.rotatedTo, next.record.id)
      assert.equal(oldRec.rotatedFrom, undefined)
      assert.equal(newRec.rotatedFrom, old.record.id)
      // record.rotation: Python's KeyRecord.rotation field for field, camelCase,
      // times as Dates, the quiet period in milliseconds; absent values absent.
      assert.deepEqual(oldRec.rotation, {
        rotatedTo: next.record.id,
        rotatedAt: new Date(START),
        overlapUntil: new Date(START + HOUR),
        quietMs: QUIET,
        successorUsedAt: new Date(START),
      })
      assert.deepEqual(newRec.rotation, { rotatedFrom: old.record.id, quietMs: 0 })
      // Nothing of the rotation flat on the record but the two links (as in Rust and Python).
      for (const flat of ['rotatedAt', 'overlapUntil', 'successorUsedAt', 'rotationQuietMs', 'quietMs']) {
        assert.equal(flat in oldRec, false, flat)
      }
      // list shows the same.
      const listed = kr.list(admin(acct)).find((r) => r.id === old.record.id)
      assert.deepEqual(listed, oldRec)
    })

    test('the overlap ends once traffic moved (the quiet period after the slack), not a moment before', () => {
      const { kr, clock } = setup(withStore)
      const acct = uniqueAccount('rot-moved')
      const old = kr.createGeneralKey(admin(acct), 'ci')
      const next = kr.rotate(admin(acct), old.record.id, { graceMs: 7 * DAY })
      // The new key is not used: however quiet the old one is, it works.
      clock.advance(4 * QUIET)
      works(kr, old)
      const lastOldUse = clock.now().getTime()
      // The clients switch: the new key is used, the old one no more.
      clock.advance(MINUTE)
      works(kr, next)
      kr.flush()
      assert.deepEqual(kr.get(admin(acct), old.record.id).rotation.successorUsedAt, new Date(lastOldUse + MINUTE))
      // Not before: the quiet period counts from the old key's last use plus the slack of last-use writes.
      clock.set(new Date(lastOldUse + SLACK + QUIET - 1))
      works(kr, old)
      // That use counts: the quiet period starts again from it.
      const again = clock.now().getTime()
      kr.flush()
      clock.set(new Date(again + SLACK + QUIET))
      refusedAsRotated(kr, old)
      works(kr, next)
      // The record still says until when the grace ran: the early end is the rule's, not a write.
      assert.deepEqual(kr.get(admin(acct), old.record.id).rotation.overlapUntil, new Date(START + 7 * DAY))
    })

    test('a keyring’s own quiet period (rotationQuietMs) is the one its rotations keep', () => {
      const { kr, clock } = setup(withStore, { quiet: MINUTE })
      const acct = uniqueAccount('rot-quiet')
      const old = kr.createGeneralKey(admin(acct), 'ci')
      const next = kr.rotate(admin(acct), old.record.id, { graceMs: DAY })
      assert.equal(kr.get(admin(acct), old.record.id).rotation.quietMs, MINUTE)
      clock.advance(MINUTE)
      works(kr, next)
      kr.flush()
      // The old key was never used: quiet since the new key's first use.
      clock.advance(MINUTE - 1)
      works(kr, old)
      kr.flush()
      clock.advance(SLACK + MINUTE)
      refusedAsRotated(kr, old)
    })

    test('endRotation ends the overlap at once, once; the new key is untouched', async () => {
      const { kr, clock } = setup(withStore)
      const acct = uniqueAccount('rot-end')
      const old = kr.createGeneralKey(admin(acct), 'ci')
      const next = kr.rotate(admin(acct), old.record.id, { graceMs: HOUR })
      works(kr, old)
      // Through the new key's id: refused, pointing at the old one.
      const e = throwsCode(() => kr.endRotation(admin(acct), next.record.id), 'ERR_INVALID_INPUT', 400, 2001)
      assert.equal(e.field, 'key_id')
      assert.ok(e.message.includes(old.record.id), e.message)
      clock.advance(MINUTE)
      const rec = kr.endRotation(admin(acct), old.record.id)
      assert.equal(rec.id, old.record.id)
      assert.deepEqual(rec.rotation.overlapUntil, clock.now())
      refusedAsRotated(kr, old)
      works(kr, next)
      assert.equal(throwsCode(() => kr.endRotation(admin(acct), old.record.id), 'ERR_INVALID_INPUT', 400, 2001).field, 'key_id')
      // A key never rotated is not in an overlap.
      const plain = kr.createGeneralKey(admin(acct), 'plain')
      const never = throwsCode(() => kr.endRotation(admin(acct), plain.record.id), 'ERR_INVALID_INPUT', 400, 2001)
      assert.match(never.message, /not in a rotation's overlap/)
      // An observer may neither end a rotation nor start one.
      const other = kr.createGeneralKey(admin(acct), 'other')
      await kr.rotateAsync(admin(acct), other.record.id, { graceMs: HOUR })
      const observer = { account: acct, user: 'POBS', role: 'observer' }
      throwsCode(() => kr.endRotation(observer, other.record.id), 'ERR_NOT_PERMITTED', 403, 2010)
      await rejectsCode(kr.endRotationAsync(observer, other.record.id), 'ERR_NOT_PERMITTED', 403, 2010)
      throwsCode(() => kr.rotate(observer, plain.record.id, { graceMs: HOUR }), 'ERR_NOT_PERMITTED', 403, 2010)
      works(kr, other)
      // The Promise twin ends it.
      const ended = await kr.endRotationAsync(admin(acct), other.record.id)
      assert.deepEqual(ended.rotation.overlapUntil, clock.now())
      refusedAsRotated(kr, other)
    })

    test('the new key has the old one’s kind, description, access, owner, target, scopes and expiry', async () => {
      const { kr, clock } = setup(withStore)
      const acct = uniqueAccount('rot-same')
      const manager = { account: acct, user: 'PMGR', role: 'manager' }
      const user = { account: acct, user: 'PUSER', role: 'limited_user' }
      const expires = new Date(clock.now().getTime() + HOUR)
      const keys = [
        kr.createGeneralKey(admin(acct), 'read', { readOnly: true, expiresAt: expires }),
        kr.createIntegrationKey(manager, 'PSVC1', 'svc'),
        kr.createRoutingKey(manager, 'PORCH1', 'orch'),
        kr.createScopedToken(manager, 'scoped', ['incidents.read', 'services.write']),
        kr.createUserToken(user, 'mine'),
      ]
      for (const k of keys) {
        const who = k.record.kind === 'general' ? admin(acct) : k.record.kind === 'user_token' ? user : manager
        const next = await kr.rotateAsync(who, k.record.id, { graceMs: DAY })
        const [a, b] = [k.record, next.record]
        for (const field of ['kind', 'description', 'access', 'readOnly', 'owner', 'target', 'scopes', 'expiresAt', 'account']) {
          assert.deepEqual(b[field], a[field], `${a.kind}: ${field}`)
        }
        assert.equal(next.secret.length, a.kind === 'integration' || a.kind === 'routing' ? 32 : 20)
        assert.notEqual(b.hint, undefined)
        assert.notEqual(b.id, a.id)
        const request = a.kind === 'integration' || a.kind === 'routing' ? { api: 'events' } : { scope: 'incidents.read' }
        assert.equal(kr.authenticate(next.secret, request).keyId, b.id, `the new ${a.kind} works`)
        if (a.expiresAt !== undefined) {
          assert.deepEqual(kr.get(who, a.id).rotation.overlapUntil, expires, 'the overlap never outlives the old key’s expiry')
        }
      }
    })

    test('refusals: expired, deleted, already rotated, malformed, too long a grace, another account', async () => {
      const { kr, clock } = setup(withStore)
      const acct = uniqueAccount('rot-refused')
      const count = () => kr.list(admin(acct)).length
      const expiring = kr.createGeneralKey(admin(acct), 'soon', { expiresAt: new Date(clock.now().getTime() + MINUTE) })
      clock.advance(MINUTE)
      const expired = throwsCode(() => kr.rotate(admin(acct), expiring.record.id, { graceMs: HOUR }), 'ERR_INVALID_INPUT', 400, 2001)
      assert.equal(expired.field, 'key_id')
      assert.match(expired.message, /expired/)
      const gone = kr.createGeneralKey(admin(acct), 'gone')
      kr.delete(admin(acct), gone.record.id)
      throwsCode(() => kr.rotate(admin(acct), gone.record.id, { graceMs: HOUR }), 'ERR_NOT_FOUND', 404, 2100)
      await rejectsCode(kr.rotateAsync(admin(acct), gone.record.id, { graceMs: HOUR }), 'ERR_NOT_FOUND', 404, 2100)
      const once = kr.createGeneralKey(admin(acct), 'once')
      const before = count()
      const tooLong = throwsCode(() => kr.rotate(admin(acct), once.record.id, { graceMs: 400 * DAY }), 'ERR_INVALID_INPUT', 400, 2001)
      assert.equal(tooLong.field, 'grace')
      assert.equal(tooLong.message, 'invalid graceMs: must be at most 365 days')
      // Exactly 365 days is the longest grace (checked on another key: this one stays unrotated).
      const longest = kr.createGeneralKey(admin(acct), 'longest')
      kr.rotate(admin(acct), longest.record.id, { graceMs: 365 * DAY })
      const malformed = throwsCode(() => kr.rotate(admin(acct), 'not-a-key-id', { graceMs: HOUR }), 'ERR_INVALID_INPUT', 400, 2001)
      assert.equal(malformed.field, 'key_id')
      assert.equal(count(), before + 2, 'a refused rotation makes nothing')
      const next = kr.rotate(admin(acct), once.record.id, { graceMs: HOUR })
      const twice = throwsCode(() => kr.rotate(admin(acct), once.record.id, { graceMs: HOUR }), 'ERR_INVALID_INPUT', 400, 2001)
      assert.equal(twice.field, 'key_id')
      assert.match(twice.message, /already rotated/)
      assert.ok(twice.message.includes(next.record.id), 'names its successor')
      assert.equal(count(), before + 3, 'the second rotation made nothing')
      // The new key may be rotated in turn.
      const third = kr.rotate(admin(acct), next.record.id, { graceMs: HOUR })
      assert.equal(third.record.rotatedFrom, next.record.id)
      // Another account's key: not found, and nothing made there.
      const stranger = admin(uniqueAccount('rot-other'))
      throwsCode(() => kr.rotate(stranger, third.record.id, { graceMs: HOUR }), 'ERR_NOT_FOUND', 404, 2100)
      assert.equal(kr.list(stranger).length, 0)
      // A disabled key may be rotated: the new key works, the old one stays disabled.
      const leaked = kr.createGeneralKey(admin(acct), 'leaked')
      kr.disable(admin(acct), leaked.record.id)
      const fresh = kr.rotate(admin(acct), leaked.record.id, { graceMs: HOUR })
      works(kr, fresh)
      const still = throwsCode(() => works(kr, leaked), 'ERR_UNAUTHORIZED', 401, 2006)
      assert.equal(still.reason, 'disabled key')
    })

    test('rotating follows the matrix; a removed or demoted maker cannot rotate their way back', () => {
      const { kr } = setup(withStore)
      const acct = uniqueAccount('rot-matrix')
      const manager = { account: acct, user: 'PMGR', role: 'manager' }
      const user = { account: acct, user: 'PUSER', role: 'limited_user' }
      const general = kr.createGeneralKey(admin(acct), 'g')
      const integration = kr.createIntegrationKey(manager, 'PSVC', 'i')
      const token = kr.createUserToken(user, 't')
      const g = { graceMs: HOUR }
      // A manager may not rotate a general key; an admin may not rotate another user's token.
      throwsCode(() => kr.rotate(manager, general.record.id, g), 'ERR_NOT_PERMITTED', 403, 2010)
      throwsCode(() => kr.rotate(admin(acct), token.record.id, g), 'ERR_NOT_PERMITTED', 403, 2010)
      // A responder may not rotate account keys.
      throwsCode(() => kr.rotate(user, integration.record.id, g), 'ERR_NOT_PERMITTED', 403, 2010)
      kr.rotate(manager, integration.record.id, g)
      // The owner rotates their own token, until they are removed.
      const token2 = kr.rotate(user, token.record.id, g)
      assert.equal(token2.record.owner, 'PUSER')
      kr.removeUser(acct, 'PUSER')
      throwsCode(() => kr.rotate(user, token2.record.id, g), 'ERR_NOT_PERMITTED', 403, 2010)
      // A scoped token whose maker was demoted cannot be rotated by them.
      const scoped = kr.createScopedToken(manager, 's', ['services.write'])
      kr.setUserRole(acct, 'PMGR', 'limited_user')
      throwsCode(() => kr.rotate(manager, scoped.record.id, g), 'ERR_NOT_PERMITTED', 403, 2010)
    })

    test('the principal cache keeps working: one frozen principal per key, its record showing the rotation', () => {
      const { kr } = setup(withStore)
      const acct = uniqueAccount('rot-cache')
      const old = kr.createGeneralKey(admin(acct), 'ci')
      const first = works(kr, old)
      assert.equal(first.record.rotatedTo, undefined)
      const next = kr.rotate(admin(acct), old.record.id, { graceMs: HOUR })
      const during = works(kr, old)
      assert.equal(during, first, 'the same frozen principal during the overlap')
      assert.ok(Object.isFrozen(during))
      assert.equal(during.record.rotatedTo, next.record.id, 'its record as of this authentication')
      kr.endRotation(admin(acct), old.record.id)
      refusedAsRotated(kr, old)
      assert.equal(works(kr, next).record.rotatedFrom, old.record.id)
    })
  })
}

describe('rotation: bad input is a clear error, never a crash', () => {
  const kr = new Keyring()
  const acct = uniqueAccount('rot-input')
  const key = kr.createGeneralKey(admin(acct), 'target')
  const ID = key.record.id

  test('graceMs: a number of milliseconds, finite, not negative, at most 365 days', async () => {
    for (const bad of [undefined, null, '3600000', 10n, {}, [1000], true]) {
      const e = throwsCode(() => kr.rotate(admin(acct), ID, { graceMs: bad }), 'ERR_INVALID_ARG_TYPE', 400, 2001)
      assert.equal(e.field, 'options.grace_ms')
      assert.ok(e instanceof TypeError)
      await rejectsCode(kr.rotateAsync(admin(acct), ID, { graceMs: bad }), 'ERR_INVALID_ARG_TYPE', 400, 2001)
    }
    for (const bad of [NaN, -1, -0.5, Infinity, -Infinity]) {
      const e = throwsCode(() => kr.rotate(admin(acct), ID, { graceMs: bad }), 'ERR_INVALID_INPUT', 400, 2001)
      assert.equal(e.field, 'grace')
      assert.equal(e.message, 'invalid graceMs: must be a finite, non-negative number of milliseconds')
      const r = await rejectsCode(kr.rotateAsync(admin(acct), ID, { graceMs: bad }), 'ERR_INVALID_INPUT', 400, 2001)
      assert.equal(r.field, 'grace')
    }
    for (const huge of [365 * DAY + 1, 1e20, Number.MAX_VALUE, 2 ** 64]) {
      assert.equal(throwsCode(() => kr.rotate(admin(acct), ID, { graceMs: huge }), 'ERR_INVALID_INPUT', 400, 2001).field, 'grace')
    }
    // Options: required, an object, no unknown names.
    for (const bad of [undefined, null, 3600000, 'graceMs']) {
      assert.equal(throwsCode(() => kr.rotate(admin(acct), ID, bad), 'ERR_INVALID_ARG_TYPE', 400, 2001).field, 'options')
    }
    const unknown = throwsCode(() => kr.rotate(admin(acct), ID, { graceMs: HOUR, grace: HOUR }), 'ERR_INVALID_INPUT', 400, 2001)
    assert.match(unknown.message, /unknown option 'grace'/)
    assert.equal(unknown.field, 'options')
    // Nothing was rotated by any of it.
    assert.equal(kr.get(admin(acct), ID).rotatedTo, undefined)
    // A fraction of a millisecond is dropped; zero is a grace that is already over.
    const zero = kr.createGeneralKey(admin(acct), 'zero')
    const zeroNext = kr.rotate(admin(acct), zero.record.id, { graceMs: 0.9 })
    refusedAsRotated(kr, zero)
    works(kr, zeroNext)
  })

  test('keyId and the actor: wrong types, lone surrogates, keys pasted as ids', () => {
    throwsCode(() => kr.rotate(admin(acct), 42, { graceMs: HOUR }), 'ERR_INVALID_ARG_TYPE', 400, 2001)
    throwsCode(() => kr.endRotation(admin(acct), undefined), 'ERR_INVALID_ARG_TYPE', 400, 2001)
    for (const bad of [`${ID}\ud800`, '\udc00']) {
      const e = throwsCode(() => kr.rotate(admin(acct), bad, { graceMs: HOUR }), 'ERR_INVALID_INPUT', 400, 2001)
      assert.equal(e.field, 'key_id')
      assert.match(e.message, /lone surrogate/)
      assert.equal(throwsCode(() => kr.endRotation(admin(acct), bad), 'ERR_INVALID_INPUT', 400, 2001).field, 'key_id')
    }
    // A key where its id belongs: refused, never echoed.
    const e = throwsCode(() => kr.rotate(admin(acct), key.secret, { graceMs: HOUR }), 'ERR_INVALID_INPUT', 400, 2001)
    assert.ok(!e.message.includes(key.secret))
    throwsCode(() => kr.rotate({ account: acct, user: 'P1' }, ID, { graceMs: HOUR }), 'ERR_INVALID_ARG_TYPE', 400, 2001)
    throwsCode(() => kr.rotate(null, ID, { graceMs: HOUR }), 'ERR_INVALID_ARG_TYPE', 400, 2001)
  })

  test('an actor’s context: an object of strings, each optional; unknown names and lone surrogates refused', () => {
    const base = admin(acct)
    const cases = [
      [{ ...base, context: 'req-1' }, 'ERR_INVALID_ARG_TYPE', 'actor.context'],
      [{ ...base, context: [] }, 'ERR_INVALID_ARG_TYPE', 'actor.context'],
      [{ ...base, context: { requestId: 7 } }, 'ERR_INVALID_ARG_TYPE', 'actor.context.request_id'],
      [{ ...base, context: { remoteAddress: {} } }, 'ERR_INVALID_ARG_TYPE', 'actor.context.remote_address'],
      [{ ...base, context: { callerKey: 10n } }, 'ERR_INVALID_ARG_TYPE', 'actor.context.caller_key'],
      [{ ...base, context: { requestID: 'x' } }, 'ERR_INVALID_INPUT', 'actor.context'],
      [{ ...base, context: { requestId: 'x\ud800' } }, 'ERR_INVALID_INPUT', 'actor.context.request_id'],
      [{ ...base, context: { callerKey: '\udfffabcd' } }, 'ERR_INVALID_INPUT', 'actor.context.caller_key'],
    ]
    for (const [actor, code, field] of cases) {
      assert.equal(throwsCode(() => kr.get(actor, ID), code, 400, 2001).field, field, field)
      assert.equal(throwsCode(() => kr.rotate(actor, ID, { graceMs: HOUR }), code, 400, 2001).field, field)
    }
    // null and undefined fields (and a null context) are "not given".
    kr.get({ ...base, context: null }, ID)
    kr.get({ ...base, context: { requestId: undefined, remoteAddress: null } }, ID)
  })

  test('rotationQuietMs: a non-negative integer of milliseconds', async () => {
    for (const bad of [-1, 1.5, NaN, Infinity, '60000', null, 2 ** 60]) {
      const e = throwsCode(() => new Keyring({ rotationQuietMs: bad }), 'ERR_INVALID_ARG_TYPE', 400, 2001)
      assert.equal(e.field, 'options.rotation_quiet_ms')
      await rejectsCode(Keyring.open({ rotationQuietMs: bad }), 'ERR_INVALID_ARG_TYPE', 400, 2001)
    }
    const zero = new Keyring({ rotationQuietMs: 0 })
    const k = zero.createGeneralKey(admin(acct), 'x')
    zero.rotate(admin(acct), k.record.id, { graceMs: HOUR })
    assert.equal(zero.get(admin(acct), k.record.id).rotation.quietMs, 0)
    const opened = await Keyring.open({ rotationQuietMs: 5 * MINUTE })
    const o = opened.createGeneralKey(admin(acct), 'x')
    opened.rotate(admin(acct), o.record.id, { graceMs: HOUR })
    assert.equal(opened.get(admin(acct), o.record.id).rotation.quietMs, 5 * MINUTE)
    // The default: 15 minutes.
    kr.rotate(admin(acct), ID, { graceMs: HOUR })
    assert.equal(kr.get(admin(acct), ID).rotation.quietMs, QUIET)
  })
})
