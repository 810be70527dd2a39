'use strict'
// No returned object, error or audit event ever shows a key, however it is
// printed; `issued.secret` is the one place a key can be read.
const test = require('node:test')
const assert = require('node:assert/strict')
const { inspect } = require('node:util')
const { Keyring } = require('..')
const { actor } = require('./helpers')

const PRINTERS = {
  inspect: (v) => inspect(v),
  'inspect (showHidden, getters, depth Infinity)': (v) =>
    inspect(v, { showHidden: true, getters: true, depth: Infinity }),
  'JSON.stringify': (v) => JSON.stringify(v) ?? '',
  'String()': (v) => {
    try {
      return String(v)
    } catch {
      return ''
    }
  },
  'Object.entries': (v) => (typeof v === 'object' && v !== null ? JSON.stringify(Object.entries(v)) : ''),
}

function assertHides(value, secrets, what) {
  for (const [printer, print] of Object.entries(PRINTERS)) {
    const text = print(value)
    for (const s of secrets) {
      assert.ok(!text.includes(s), `${what} printed with ${printer} shows a key: ${text.slice(0, 200)}`)
    }
  }
}

function caught(fn) {
  try {
    fn()
  } catch (e) {
    return e
  }
  assert.fail('expected a throw')
}

test('issued keys, records, principals, lists, audit events and errors never show a key', async () => {
  const kr = new Keyring({ pepper: 'pepper pepper pepper pepper' })
  const owner = actor('owner')
  const issued = [
    kr.createGeneralKey(owner, 'CI', { readOnly: true }),
    kr.createUserToken(owner, 'me'),
    kr.createIntegrationKey(owner, 'PSVC', 'x'),
    kr.createRoutingKey(owner, 'orch', 'x'),
    kr.createScopedToken(owner, 'x', ['incidents.read']),
    await kr.createGeneralKeyAsync(owner, 'async'),
  ]
  const secrets = issued.map((i) => i.secret)
  for (const s of secrets) assert.ok(s.length >= 20)

  const outputs = { keyring: kr }
  issued.forEach((i, n) => {
    outputs[`issued ${i.record.kind} ${n}`] = i
    outputs[`record ${n}`] = i.record
    outputs[`toJSON ${n}`] = i.toJSON()
  })
  outputs.principals = issued.map((i) =>
    kr.authenticate(i.secret, { api: /^(integration|routing)$/.test(i.record.kind) ? 'events' : 'rest', scope: 'incidents.read' }),
  )
  outputs.list = kr.list(owner)
  outputs.get = kr.get(owner, issued[0].record.id)
  outputs.disabled = kr.disable(owner, issued[0].record.id)
  outputs.errors = [
    caught(() => kr.authenticate(secrets[0])), // disabled
    caught(() => kr.authenticate(secrets[0] + 'x')), // malformed
    caught(() => kr.authenticate(secrets[0], { api: 'events' })), // wrong API
    caught(() => kr.authenticate(secrets[4], { method: 'POST', scope: 'incidents.write' })), // forbidden
    caught(() => kr.authenticate(secrets[2].toUpperCase(), { api: 'events' })),
    caught(() => kr.get(owner, secrets[1])), // a key passed as an id
    caught(() => kr.createGeneralKey(owner, secrets[1] + '\0x')), // a key in a bad description
    // (A key passed as an account or user id is not covered here: the core's audit
    // event records the actor's ids as given; that is the core's to decide.)
    caught(() => kr.list(secrets[1])), // a key where an actor belongs
    caught(() => kr.authenticate({ token: secrets[1] })),
  ]
  for (const e of outputs.errors) {
    for (const s of secrets) {
      assert.ok(!e.message.includes(s), e.message)
      assert.ok(!String(e.reason ?? '').includes(s))
      assert.ok(!String(e.stack).includes(s))
    }
  }
  // A rotation by an actor whose context holds keys, and the trail it leaves.
  const rotated = kr.rotate({ ...owner, context: { callerKey: secrets[0], requestId: secrets[1], remoteAddress: secrets[2] } }, issued[5].record.id, { graceMs: 60_000 })
  secrets.push(rotated.secret)
  outputs.rotated = rotated
  outputs.rotatedRecord = kr.get(owner, issued[5].record.id)
  kr.authenticate(rotated.secret, { remoteAddress: secrets[3], path: `/keys/${secrets[4]}?token=${secrets[1]}` })
  outputs.placed = kr.get(owner, rotated.record.id)
  outputs.audit = kr.auditTrail()
  outputs.auditRecords = kr.auditRecords({ account: 'acme', limit: 1000 })
  outputs.pagerDuty = outputs.auditRecords.records.map((e) => e.toPagerDuty())
  for (const [what, value] of Object.entries(outputs)) assertHides(value, secrets, what)

  // ... and the key is there to read, exactly once per issued key object.
  for (const i of issued) {
    assert.equal(typeof i.secret, 'string')
    assert.equal(Object.keys(i).length, 0, 'no own enumerable property of an IssuedKey')
    assert.match(inspect(i), /secret: '\[REDACTED\]'/)
    assert.deepEqual(Object.keys(JSON.parse(JSON.stringify(i))), ['record'])
    assert.equal(i.record, i.record, 'the record is converted once')
  }
})

test('records and principals carry only the hint, never a digest', () => {
  const kr = new Keyring()
  const k = kr.createGeneralKey(actor('owner'), 'CI')
  const fields = Object.keys(k.record).sort()
  assert.deepEqual(fields, ['access', 'account', 'apiVersion', 'createdAt', 'createdBy', 'description', 'hint', 'id', 'kind', 'readOnly', 'scopes'])
  assert.equal(k.record.hint.length, 4)
  const p = kr.authenticate(k.secret)
  assert.deepEqual(Object.keys(p).sort(), ['access', 'account', 'keyId', 'kind', 'rateLimit', 'scopes'])
})

test('the reason an authentication failed is for the server only: not enumerable', () => {
  const kr = new Keyring()
  const e = caught(() => kr.authenticate('x'.repeat(20)))
  assert.equal(e.reason, 'unknown or deleted key')
  assert.ok(!Object.keys(e).includes('reason'))
  assert.deepEqual(JSON.parse(JSON.stringify(e)), { code: 'ERR_UNAUTHORIZED', status: 401, pdCode: 2006 })
})
