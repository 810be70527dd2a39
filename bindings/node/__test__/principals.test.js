'use strict'
// principal.record: the key's record as of its latest authentication through
// the keyring (for the principal just answered, as of this authentication, as
// in Python and Rust), read from the addon by a getter on the principal
// objects principals.js keeps per key and role.
const test = require('node:test')
const assert = require('node:assert/strict')
const { inspect } = require('node:util')
const { Keyring } = require('..')

const admin = { account: 'acme', user: 'PADMIN1', role: 'admin' }

test('a principal gives the record of its own key, for every kind and every way of authenticating', async () => {
  const kr = new Keyring()
  const general = kr.createGeneralKey(admin, 'CI bot', { readOnly: true })
  const token = kr.createUserToken(admin, 'laptop')
  const scoped = kr.createScopedToken(admin, 'closer', ['incidents.write'])
  const integration = kr.createIntegrationKey(admin, 'PSERVICE1', 'Datadog')
  for (const [issued, request] of [
    [general, undefined],
    [token, undefined],
    [scoped, { method: 'POST', scope: 'incidents.write' }],
    [integration, { api: 'events' }],
  ]) {
    const p = kr.authenticate(issued.secret, request)
    assert.deepEqual(p.record, issued.record, issued.record.kind)
    assert.deepEqual(kr.tryAuthenticate(issued.secret, request).record, issued.record)
    assert.deepEqual((await kr.authenticateAsync(issued.secret, request)).record, issued.record)
    assert.equal(p.record.id, p.keyId)
    assert.ok(p.record.createdAt instanceof Date)
  }
})

test('the record is a getter: not enumerable, not serialized, a fresh object on each read, never the key', () => {
  const kr = new Keyring()
  const issued = kr.createGeneralKey(admin, 'CI bot')
  const p = kr.authenticate(issued.secret)
  assert.ok(!Object.keys(p).includes('record'))
  assert.ok(!('record' in JSON.parse(JSON.stringify(p))))
  assert.ok(!inspect(p, { depth: 5 }).includes(issued.secret))
  assert.ok(!JSON.stringify(p.record).includes(issued.secret))
  assert.notEqual(p.record, p.record)
  p.record.description = 'changed by the caller'
  assert.equal(p.record.description, 'CI bot')
  assert.throws(() => {
    p.record = null
  }, TypeError)
  // The principal itself is still the one kept object per key and role.
  assert.equal(kr.authenticate(issued.secret), p)
  assert.ok(Object.isFrozen(p))
})

test('two keys, two records; a principal with a rate limit status has its key record too', () => {
  const kr = new Keyring({ rateLimits: { generalKey: { requests: 100, windowMs: 60_000 } } })
  const a = kr.createGeneralKey(admin, 'a')
  const b = kr.createGeneralKey(admin, 'b')
  const pa = kr.authenticate(a.secret)
  const pb = kr.authenticate(b.secret)
  assert.notEqual(pa.rateLimit, null)
  assert.equal(pa.record.description, 'a')
  assert.equal(pb.record.description, 'b')
  assert.deepEqual(pa.record, a.record)
})

test('a user token keeps its record across its owner\'s role changes', () => {
  const kr = new Keyring()
  const token = kr.createUserToken({ account: 'acme', user: 'PUSER1', role: 'manager' }, 'laptop')
  const before = kr.authenticate(token.secret)
  kr.setUserRole('acme', 'PUSER1', 'observer')
  const after = kr.authenticate(token.secret)
  assert.notEqual(before, after)
  assert.equal(after.role, 'observer')
  assert.deepEqual(after.record, token.record)
  assert.deepEqual(before.record, token.record)
})
