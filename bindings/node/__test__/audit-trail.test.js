'use strict'
// The audit trail (docs/design.md §9) and where a key was last used from,
// through the Node API, on the in-memory store, SQLite and PostgreSQL: the
// checks of the core's own suite (crates/apikeys/src/testing/lifecycle.rs),
// plus what only Node has (toPagerDuty(), argument checks, the Express
// middleware passing the request's place).
const { test, describe } = require('node:test')
const assert = require('node:assert/strict')
const { inspect } = require('node:util')

const { Keyring, AuditAction } = require('..')
const { apikeys } = require('../express')
const { throwsCode, rejectsCode } = require('./helpers')
const { MINUTE, HOUR, DAY, START, STORES, setup, uniqueAccount, admin, works, allRecords } = require('./lifecycle')

const express = (() => {
  try {
    return require('express')
  } catch {
    return null
  }
})()
const required = Boolean(process.env.CI || process.env.APIKEYS_REQUIRE_TEST_DEPS)
const skipExpress = express || required ? false : 'express is not installed'

const CHANGES = new Set(['create', 'disable', 'enable', 'delete', 'set_account', 'set_user_role', 'remove_user', 'rotate', 'end_rotation'])

for (const [storeName, withStore] of STORES) {
  describe(`the audit trail (${storeName})`, () => {
    test('each change leaves one record naming what changed, with the context the actor carried; refusals too', async () => {
      const { kr, clock } = setup(withStore)
      const acct = uniqueAccount('audit')
      const who = { ...admin(acct), context: { requestId: 'req-1', remoteAddress: '192.0.2.7' } }
      const k = kr.createGeneralKey(who, 'ci')
      clock.advance(MINUTE)
      kr.disable(who, k.record.id)
      clock.advance(MINUTE)
      await kr.enableAsync(who, k.record.id)
      clock.advance(MINUTE)
      const next = kr.rotate(who, k.record.id, { graceMs: HOUR })
      clock.advance(MINUTE)
      kr.endRotation(who, k.record.id)
      clock.advance(MINUTE)
      kr.setUserRole(acct, 'PUSER', 'manager')
      clock.advance(MINUTE)
      const observer = { account: acct, user: 'POBS', role: 'observer' }
      throwsCode(() => kr.delete(observer, next.record.id), 'ERR_NOT_PERMITTED', 403, 2010)
      clock.advance(MINUTE)
      kr.delete(who, next.record.id)
      clock.advance(MINUTE)

      const recs = allRecords(kr, acct)
      assert.ok(recs.every((e, i) => i === 0 || recs[i - 1].id > e.id), 'newest first, by id')
      const changes = recs
        .filter((e) => CHANGES.has(e.action))
        .reverse()
        .map((e) => [e.action, e.allowed])
      assert.deepEqual(
        changes,
        [
          ['create', true],
          ['disable', true],
          ['enable', true],
          ['rotate', true],
          ['end_rotation', true],
          ['set_user_role', true],
          ['delete', false],
          ['delete', true],
        ],
        'one record per change, in order, refusals included',
      )
      const find = (action) => recs.find((e) => e.action === action && e.allowed)
      const disable = find('disable')
      assert.equal(disable.keyId, k.record.id)
      assert.equal(disable.keyKind, 'general')
      assert.equal(disable.actor, 'PADMIN1')
      assert.equal(disable.actorRole, 'admin')
      assert.equal(disable.outcome, 'allowed')
      assert.deepEqual(disable.at, new Date(START + MINUTE))
      assert.equal(typeof disable.id, 'number')
      assert.deepEqual(disable.context, { requestId: 'req-1', remoteAddress: '192.0.2.7' })
      assert.deepEqual(disable.changes, [{ field: 'disabled', value: 'true', beforeValue: 'false' }])
      assert.deepEqual(find('enable').changes, [{ field: 'disabled', value: 'false', beforeValue: 'true' }])
      const rotate = find('rotate')
      assert.deepEqual(
        rotate.changes.find((c) => c.field === 'rotated_to'),
        { field: 'rotated_to', value: next.record.id },
        'no value before: beforeValue absent',
      )
      assert.equal(rotate.changes.find((c) => c.field === 'overlap_until').value, String(START + 3 * MINUTE + HOUR))
      const end = find('end_rotation').changes.find((c) => c.field === 'overlap_until')
      assert.deepEqual(end, { field: 'overlap_until', value: String(START + 4 * MINUTE), beforeValue: String(START + 3 * MINUTE + HOUR) })
      const role = find('set_user_role')
      assert.equal(role.actor, 'system')
      assert.equal(role.actorRole, undefined)
      assert.deepEqual(role.context, {}, 'the application’s own calls carry no context')
      assert.equal(role.changes.find((c) => c.field === 'role').value, 'user')
      const refused = recs.find((e) => e.action === 'delete' && !e.allowed)
      assert.equal(refused.outcome, 'refused')
      assert.equal(refused.error, 'not_permitted')
      assert.equal(typeof refused.reason, 'string')
      assert.deepEqual(refused.changes, [], 'a refusal changed nothing')
      // PagerDuty's shape, as the core writes it.
      const pd = disable.toPagerDuty()
      assert.equal(pd.action, 'disable')
      assert.equal(pd.id, `R${String(disable.id).padStart(13, '0')}`)
      assert.deepEqual(pd.actors, [{ id: 'PADMIN1', type: 'user_reference', summary: 'PADMIN1' }])
      assert.deepEqual(pd.root_resource, { id: k.record.id, type: 'api_key_reference', summary: 'general' })
      assert.deepEqual(pd.details.fields, [{ name: 'disabled', value: 'true', before_value: 'false' }])
      assert.deepEqual(pd.execution_context, { request_id: 'req-1', remote_address: '192.0.2.7' })
      assert.equal(pd.execution_time, new Date(START + MINUTE).toISOString())
      assert.deepEqual(pd.method, { type: 'other' })
      assert.equal(pd.outcome, 'allowed')
      const pdRefused = refused.toPagerDuty()
      assert.equal(pdRefused.outcome, 'refused')
      assert.equal(pdRefused.error, 'not_permitted')
      assert.equal(role.toPagerDuty().actors[0].type, 'app_reference')
      assert.deepEqual(role.toPagerDuty().method, { type: 'internal' })
      // A method, not a field: not enumerable, a fresh object each call.
      assert.ok(!Object.keys(disable).includes('toPagerDuty'))
      assert.ok(!('toPagerDuty' in JSON.parse(JSON.stringify(disable))))
      assert.notEqual(disable.toPagerDuty(), disable.toPagerDuty())
      assert.deepEqual(disable.toPagerDuty(), disable.toPagerDuty())
      assert.throws(() => disable.toPagerDuty.call({}), TypeError)
      // The Promise twin answers the same page.
      const again = await kr.auditRecordsAsync({ account: acct, limit: 1000 })
      assert.deepEqual(again.records.map((e) => e.id), recs.map((e) => e.id))
      assert.deepEqual(again.records[0].toPagerDuty(), recs[0].toPagerDuty())
    })

    test('pages are newest first, never skip or repeat a record while records are being added; filters narrow them', async () => {
      const { kr, clock } = setup(withStore)
      const acct = uniqueAccount('audit-pages')
      const other = { account: acct, user: 'PADMIN2', role: 'admin' }
      const ids = []
      for (let i = 0; i < 25; i++) {
        const k = kr.createGeneralKey(i % 5 === 0 ? other : admin(acct), `k${i}`)
        ids.push(k.record.id)
        clock.advance(1000)
      }
      // Page through 7 at a time while more records are being added.
      const seen = []
      let cursor
      let pages = 0
      for (;;) {
        const page = pages % 2 === 0
          ? kr.auditRecords({ account: acct, limit: 7, actions: ['create'], cursor })
          : await kr.auditRecordsAsync({ account: acct, limit: 7, actions: [AuditAction.Create], cursor })
        assert.ok(page.records.length <= 7)
        assert.ok(page.records.every((e, i) => i === 0 || page.records[i - 1].id > e.id), 'newest first')
        seen.push(...page.records.map((e) => e.keyId))
        pages++
        // A writer adds records between pages: they are newer than the cursor.
        kr.createGeneralKey(admin(acct), 'late')
        clock.advance(1000)
        if (page.nextCursor === undefined) {
          assert.ok(!('nextCursor' in page), 'absent on the last page')
          break
        }
        assert.equal(typeof page.nextCursor, 'string')
        cursor = page.nextCursor
      }
      assert.deepEqual(seen, [...ids].reverse(), 'every record once, newest first')
      assert.equal(pages, 4)
      // Filters.
      const byActor = kr.auditRecords({ account: acct, actor: 'PADMIN2', limit: 100 })
      assert.equal(byActor.records.length, 5)
      assert.ok(byActor.records.every((e) => e.actor === 'PADMIN2'))
      const byKey = kr.auditRecords({ account: acct, keyId: ids[3] })
      assert.deepEqual(byKey.records.map((e) => e.keyId), [ids[3]])
      // A window: the first ten seconds hold the first ten creates (since inclusive, until exclusive).
      const windowed = kr.auditRecords({ account: acct, since: new Date(START), until: new Date(START + 10_000), actions: ['create'] })
      assert.equal(windowed.records.length, 10)
      assert.deepEqual(windowed.records.at(-1).at, new Date(START))
      // Another account sees none of it.
      const none = kr.auditRecords({ account: uniqueAccount('audit-empty') })
      assert.deepEqual(none.records, [])
      assert.equal(none.nextCursor, undefined)
      // The default window is the last 24 hours.
      clock.advance(2 * DAY)
      assert.deepEqual(kr.auditRecords({ account: acct }).records, [], 'records older than a day are outside the default window')
      // Retention.
      const pruned = kr.pruneAudit(DAY)
      assert.ok(pruned >= 25, `pruned ${pruned}`)
      assert.deepEqual(kr.auditRecords({ account: acct, since: new Date(START) }).records, [])
      assert.equal(await kr.pruneAuditAsync(DAY), 0)
    })

    test('out-of-bounds queries are refused naming the field; exactly 31 days is allowed', async () => {
      const { kr, clock } = setup(withStore)
      const now = clock.now().getTime()
      const refused = async (query, field) => {
        const e = throwsCode(() => kr.auditRecords(query), 'ERR_INVALID_INPUT', 400, 2001)
        assert.equal(e.field, field, `${e.message} for ${inspect(query)}`)
        const r = await rejectsCode(kr.auditRecordsAsync(query), 'ERR_INVALID_INPUT', 400, 2001)
        assert.equal(r.field, field)
        return e
      }
      await refused({ account: '' }, 'account')
      await refused({ account: 'x'.repeat(129) }, 'account')
      await refused({ account: 'acme', since: new Date(now), until: new Date(now - 1) }, 'until')
      await refused({ account: 'acme', since: new Date(now - 32 * DAY), until: new Date(now) }, 'until')
      await refused({ account: 'acme', since: new Date(now - 32 * DAY) }, 'until')
      for (const limit of [1001, 0, -1, 1.5, NaN, Infinity, 2 ** 64]) {
        const e = await refused({ account: 'acme', limit }, 'limit')
        assert.ok(e.message.includes('1000'), e.message)
      }
      for (const cursor of ['', 'c', 'x12', 'c-1', 'czz', 'c11111111111111111']) {
        await refused({ account: 'acme', cursor }, 'cursor')
      }
      await refused({ account: 'acme', keyId: 'not-a-key-id' }, 'key_id')
      await refused({ account: 'acme', actions: ['create', 'rotated'] }, 'action')
      await refused({ account: 'acme', since: new Date(NaN) }, 'since')
      await refused({ account: 'acme', until: new Date(-1) }, 'until')
      await refused({ account: 'acme', until: new Date(8.64e15) }, 'until')
      // Exactly 31 days, and 1000 records a page.
      kr.auditRecords({ account: 'acme', since: new Date(now - 31 * DAY), until: new Date(now), limit: 1000 })
      kr.auditRecords({ account: 'acme', limit: 1, actions: [] })
    })

    test('no record holds a key: not as the caller’s key, not pasted into ids, however it is printed', () => {
      const { kr } = setup(withStore)
      const acct = uniqueAccount('audit-secret')
      const k = kr.createGeneralKey(admin(acct), 'ci')
      const secret = k.secret
      // The application passes the caller's key and pastes keys into ids.
      const who = { ...admin(acct), context: { callerKey: secret, requestId: secret, remoteAddress: secret } }
      const next = kr.rotate(who, k.record.id, { graceMs: HOUR })
      assert.throws(() => kr.get(who, secret))
      assert.throws(() => kr.delete(who, next.secret))
      kr.setUserRole(acct, secret, 'observer')
      kr.list(who)
      const recs = allRecords(kr, acct)
      assert.ok(recs.length >= 3)
      const trail = kr.auditTrail().filter((e) => e.account === acct)
      for (const e of [...recs, ...trail]) {
        for (const text of [
          JSON.stringify(e),
          JSON.stringify(e.toPagerDuty()),
          inspect(e, { showHidden: true, getters: true, depth: Infinity }),
          inspect(e.toPagerDuty(), { depth: Infinity }),
        ]) {
          assert.ok(!text.includes(secret), `a key in ${text}`)
          assert.ok(!text.includes(next.secret), `a key in ${text}`)
        }
      }
      const rotate = recs.find((e) => e.action === 'rotate')
      assert.equal(rotate.context.truncatedToken, secret.slice(-4))
      assert.equal(rotate.context.requestId, '(redacted)')
      assert.equal(rotate.context.remoteAddress, '(redacted)')
      assert.deepEqual(rotate.toPagerDuty().method, { type: 'api_token', truncated_token: secret.slice(-4) })
      // The key pasted where a user id goes is not kept either.
      const role = recs.find((e) => e.action === 'set_user_role')
      assert.equal(role.subjectUser, '(redacted)')
    })

    test('a key remembers where it was last used from, written as its last use is (once a minute at most)', async () => {
      const { kr, clock } = setup(withStore)
      const acct = uniqueAccount('place')
      const k = kr.createGeneralKey(admin(acct), 'ci')
      const seen = () => {
        const r = kr.get(admin(acct), k.record.id)
        const listed = kr.list(admin(acct)).find((x) => x.id === r.id)
        assert.deepEqual(listed.lastUsedFrom, r.lastUsedFrom, 'get and list agree')
        return r.lastUsedFrom
      }
      assert.equal(seen(), undefined, 'never used: absent')
      kr.authenticate(k.secret, { remoteAddress: '192.0.2.9', path: '/incidents?token=abc' })
      kr.flush()
      const first = seen()
      assert.deepEqual(first, { remoteAddress: '192.0.2.9', method: 'GET', path: '/incidents' }, 'no query string')
      // Within the minute: coalesced, the first place stays.
      clock.advance(30_000)
      kr.authenticate(k.secret, { method: 'POST', remoteAddress: '198.51.100.1', path: '/services' })
      kr.flush()
      assert.deepEqual(seen(), first)
      // After it: the new place, through each way in (the Promise twin, tryAuthenticate).
      clock.advance(MINUTE)
      await kr.authenticateAsync(k.secret, { method: 'DELETE', remoteAddress: '198.51.100.2', path: `/keys/${k.secret}` })
      await kr.flushAsync()
      const second = seen()
      assert.deepEqual(second, { remoteAddress: '198.51.100.2', method: 'DELETE', path: '(redacted)' })
      assert.ok(!inspect(second).includes(k.secret))
      clock.advance(MINUTE)
      const tried = kr.tryAuthenticate(k.secret, { api: 'rest', method: 'PATCH', remoteAddress: '203.0.113.3', path: '/x' })
      if (tried === null) await kr.authenticateAsync(k.secret, { api: 'rest', method: 'PATCH', remoteAddress: '203.0.113.3', path: '/x' })
      kr.flush()
      const third = seen()
      assert.deepEqual(third, { remoteAddress: '203.0.113.3', method: 'PATCH', path: '/x' })
      // A request that does not say leaves the last place as it was.
      clock.advance(MINUTE)
      kr.authenticate(k.secret)
      kr.flush()
      assert.deepEqual(seen(), third)
      // The principal object stays the one kept for the key, whatever place each request gives.
      clock.advance(MINUTE)
      const p1 = kr.authenticate(k.secret, { remoteAddress: '192.0.2.10', path: '/a' })
      kr.flush()
      const p2 = kr.authenticate(k.secret, { remoteAddress: '192.0.2.11', path: '/b' })
      assert.equal(p1, p2, 'the same frozen principal')
      assert.deepEqual(seen(), { remoteAddress: '192.0.2.10', method: 'GET', path: '/a' })
    })
  })
}

describe('the audit trail: bad input is a clear error, never a crash', () => {
  const kr = new Keyring()

  test('the query: an object with known fields of the right types', async () => {
    const cases = [
      [undefined, 'query'],
      [null, 'query'],
      ['acme', 'query'],
      [['acme'], 'query'],
      [{}, 'query.account'],
      [{ account: 7 }, 'query.account'],
      [{ account: 'acme', keyId: 7 }, 'query.key_id'],
      [{ account: 'acme', actor: {} }, 'query.actor'],
      [{ account: 'acme', actions: 'create' }, 'query.actions'],
      [{ account: 'acme', actions: [AuditAction.Create, 7] }, 'query.actions'],
      [{ account: 'acme', since: START }, 'query.since'],
      [{ account: 'acme', until: '2026-01-01' }, 'query.until'],
      [{ account: 'acme', since: { getTime: () => START } }, 'query.since'],
      [{ account: 'acme', limit: '10' }, 'query.limit'],
      [{ account: 'acme', limit: 10n }, 'query.limit'],
      [{ account: 'acme', cursor: 5 }, 'query.cursor'],
    ]
    for (const [query, field] of cases) {
      const e = throwsCode(() => kr.auditRecords(query), 'ERR_INVALID_ARG_TYPE', 400, 2001)
      assert.ok(e instanceof TypeError)
      assert.ok(String(e.field).startsWith(field), `${e.field} for ${field}`)
      await rejectsCode(kr.auditRecordsAsync(query), 'ERR_INVALID_ARG_TYPE', 400, 2001)
    }
    const unknown = throwsCode(() => kr.auditRecords({ account: 'acme', key_id: 'P0000000000000' }), 'ERR_INVALID_INPUT', 400, 2001)
    assert.match(unknown.message, /unknown option 'key_id'/)
    // A lone surrogate anywhere: refused, naming where.
    for (const [query, field] of [
      [{ account: 'acme\ud800' }, 'query.account'],
      [{ account: 'acme', actor: '\udc00' }, 'query.actor'],
      [{ account: 'acme', cursor: 'c1\ud800' }, 'query.cursor'],
      [{ account: 'acme', actions: ['create\udfff'] }, 'query.actions'],
      [{ account: 'acme', keyId: 'P000000000000\ud800' }, 'query.key_id'],
    ]) {
      const e = throwsCode(() => kr.auditRecords(query), 'ERR_INVALID_INPUT', 400, 2001)
      assert.ok(String(e.field).startsWith(field), `${e.field} for ${field}`)
      assert.match(e.message, /lone surrogate/)
    }
    // An array whose length lies is not read past a bound.
    const liar = new Proxy([], { get: (t, k) => (k === 'length' ? 1e9 : t[k]) })
    throwsCode(() => kr.auditRecords({ account: 'acme', actions: liar }), 'ERR_INVALID_INPUT', 400, 2001)
  })

  test('pruneAudit: a number of milliseconds, finite and not negative', async () => {
    for (const bad of [undefined, null, '1000', 10n, {}, new Date()]) {
      const e = throwsCode(() => kr.pruneAudit(bad), 'ERR_INVALID_ARG_TYPE', 400, 2001)
      assert.equal(e.field, 'older_than_ms')
      await rejectsCode(kr.pruneAuditAsync(bad), 'ERR_INVALID_ARG_TYPE', 400, 2001)
    }
    for (const bad of [NaN, -1, -Infinity, Infinity]) {
      const e = throwsCode(() => kr.pruneAudit(bad), 'ERR_INVALID_INPUT', 400, 2001)
      assert.equal(e.field, 'older_than')
      assert.match(e.message, /^invalid olderThanMs: /)
      await rejectsCode(kr.pruneAuditAsync(bad), 'ERR_INVALID_INPUT', 400, 2001)
    }
    // Huge: everything is younger than that.
    kr.createGeneralKey(admin('prune'), 'x')
    assert.equal(kr.pruneAudit(Number.MAX_VALUE), 0)
    assert.equal(kr.pruneAudit(1e300), 0)
  })

  test('a request’s place: strings or nothing; lone surrogates refused', async () => {
    const k = kr.createGeneralKey(admin('place-input'), 'x')
    for (const [request, code, field] of [
      [{ remoteAddress: 7 }, 'ERR_INVALID_ARG_TYPE', 'request.remote_address'],
      [{ path: ['/x'] }, 'ERR_INVALID_ARG_TYPE', 'request.path'],
      [{ remoteAddress: '10.0.0.1\ud800' }, 'ERR_INVALID_INPUT', 'request.remote_address'],
      [{ path: '/\udc00' }, 'ERR_INVALID_INPUT', 'request.path'],
      [{ remote_address: '10.0.0.1' }, 'ERR_INVALID_INPUT', 'request'],
    ]) {
      assert.equal(throwsCode(() => kr.authenticate(k.secret, request), code, 400, 2001).field, field)
      assert.equal(throwsCode(() => kr.tryAuthenticate(k.secret, request), code, 400, 2001).field, field)
      await rejectsCode(kr.authenticateAsync(k.secret, request), code, 400, 2001)
    }
    // Huge values, control characters, NUL: accepted (no check depends on them), kept cut or not at all.
    const huge = 'a'.repeat(1 << 20)
    kr.authenticate(k.secret, { remoteAddress: huge, path: `/${huge}` })
    const place = kr.get(admin('place-input'), k.record.id).lastUsedFrom
    assert.equal(place.remoteAddress.length, 64)
    assert.equal(place.path.length, 256)
    kr.authenticate(k.secret, { method: 'PUT', remoteAddress: '10.0.0.1\0', path: '/a\nb' })
    // An uncommon method and an Events request carry it too (the named path of the addon).
    kr.authenticate(k.secret, { method: 'PROPFIND', remoteAddress: '10.0.0.2', path: '/dav' })
  })

  test('the raw addon, given something other than strings for the place, answers without crashing', () => {
    const native = require('../binding.js')
    const raw = new native.Keyring()
    const a = admin('place-raw')
    const k = raw.createGeneralKey(a, 'x')
    for (const [address, path] of [[5, {}], [Symbol('x'), 7n], [{ toString: () => '1.2.3.4' }, ['/x']], [true, null]]) {
      assert.equal(typeof raw._authenticatePlaced(k.secret, 1, undefined, address, path), 'number')
    }
    // What could not be read as text is not kept.
    const place = raw.get(a, k.record.id).lastUsedFrom
    assert.deepEqual(place, { method: 'GET' })
  })
})

describe('the Express middleware passes where a request came from', { skip: skipExpress }, () => {
  function listen(app) {
    return new Promise((resolve) => {
      const server = app.listen(0, '127.0.0.1', () => resolve(server))
    })
  }

  for (const [storeName, withStore] of STORES) {
    for (const offThread of [false, true]) {
      test(`${storeName}${offThread ? ', offThread' : ''}: REST and Events requests leave their address, method and path`, async () => {
        const { kr, clock } = setup(withStore)
        const acct = uniqueAccount('express-place')
        const key = kr.createGeneralKey(admin(acct), 'ci')
        const integration = kr.createIntegrationKey({ ...admin(acct), role: 'manager' }, 'PSVC', 'svc')
        const app = express()
        const auth = apikeys(kr, { offThread })
        const principals = []
        const api = express.Router()
        api.get('/incidents', auth.rest('incidents.read'), (req, res) => {
          principals.push(req.apikey)
          res.json({ ok: true })
        })
        app.use('/api', api)
        app.post('/v2/enqueue', auth.events(), (req, res) => res.status(202).json({ status: 'success' }))
        const server = await listen(app)
        try {
          const base = `http://127.0.0.1:${server.address().port}`
          const headers = { authorization: `Token token=${key.secret}` }
          let r = await fetch(`${base}/api/incidents?limit=5&token=${key.secret}`, { headers })
          assert.equal(r.status, 200)
          r = await fetch(`${base}/api/incidents`, { headers })
          assert.equal(r.status, 200)
          assert.equal(principals[0], principals[1], 'the principal cache keeps answering one object per key')
          await kr.flushAsync()
          const rec = await kr.getAsync(admin(acct), key.record.id)
          assert.deepEqual(rec.lastUsedFrom, { remoteAddress: '127.0.0.1', method: 'GET', path: '/api/incidents' }, 'the path as received, mount point included, no query string')
          r = await fetch(`${base}/v2/enqueue`, {
            method: 'POST',
            headers: { 'content-type': 'application/json' },
            body: JSON.stringify({ routing_key: integration.secret, event_action: 'trigger', payload: { summary: 'x' } }),
          })
          assert.equal(r.status, 202)
          await kr.flushAsync()
          assert.deepEqual((await kr.getAsync(admin(acct), integration.record.id)).lastUsedFrom, {
            remoteAddress: '127.0.0.1',
            method: 'POST',
            path: '/v2/enqueue',
          })
          // A minute on, a refused request leaves nothing; an admitted one its place.
          clock.advance(MINUTE)
          r = await fetch(`${base}/api/incidents`, { headers: { authorization: 'Token token=not-a-key-at-all-xx' } })
          assert.equal(r.status, 401)
          await kr.flushAsync()
          assert.equal((await kr.getAsync(admin(acct), key.record.id)).lastUsedFrom.path, '/api/incidents')
        } finally {
          await new Promise((resolve) => server.close(resolve))
        }
      })
    }
  }

  test('remoteAddress: the application’s own reading of the address (req.ip behind a proxy), or none', async () => {
    const { kr } = setup(STORES[0][1])
    const acct = uniqueAccount('express-ip')
    const a = kr.createGeneralKey(admin(acct), 'a')
    const b = kr.createGeneralKey(admin(acct), 'b')
    const app = express()
    app.set('trust proxy', 'loopback')
    app.get('/ip', apikeys(kr, { remoteAddress: (req) => req.ip }).rest(), (req, res) => res.json({}))
    app.get('/none', apikeys(kr, { remoteAddress: () => undefined }).rest(), (req, res) => res.json({}))
    const server = await listen(app)
    try {
      const base = `http://127.0.0.1:${server.address().port}`
      let r = await fetch(`${base}/ip`, { headers: { authorization: `Token token=${a.secret}`, 'x-forwarded-for': '203.0.113.9' } })
      assert.equal(r.status, 200)
      r = await fetch(`${base}/none`, { headers: { authorization: `Token token=${b.secret}` } })
      assert.equal(r.status, 200)
      assert.deepEqual(kr.get(admin(acct), a.record.id).lastUsedFrom, { remoteAddress: '203.0.113.9', method: 'GET', path: '/ip' })
      assert.deepEqual(kr.get(admin(acct), b.record.id).lastUsedFrom, { method: 'GET', path: '/none' })
    } finally {
      await new Promise((resolve) => server.close(resolve))
    }
    for (const bad of ['ip', 5, true, {}]) {
      const e = throwsCode(() => apikeys(kr, { remoteAddress: bad }), 'ERR_INVALID_ARG_TYPE', 400, 2001)
      assert.equal(e.field, 'options.remote_address')
    }
  })
})
