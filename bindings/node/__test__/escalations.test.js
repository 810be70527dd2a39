'use strict'
// The escalations an outside review found, replayed through the Node API
// (docs/design.md §6). The rules live in Rust; these check they reach Node,
// including offboarding racing token creation on libuv's thread pool.
const test = require('node:test')
const assert = require('node:assert/strict')
const os = require('node:os')
const path = require('node:path')
const fs = require('node:fs')
const { Keyring } = require('..')
const { actor, throwsCode } = require('./helpers')

for (const scope of ['users.write', 'ip_allow_lists.write', 'audit_records.read']) {
  test(`a manager cannot mint ${scope}`, () => {
    const kr = new Keyring()
    const e = throwsCode(
      () => kr.createScopedToken(actor('user'), 'x', ['incidents.write', scope]),
      'ERR_NOT_PERMITTED',
      403,
      2010,
    )
    assert.match(e.message, new RegExp(scope.replace('.', '\\.')))
    assert.equal(kr.list(actor('admin')).length, 0)
  })
}

test('a scoped token follows its maker down and out', () => {
  const kr = new Keyring()
  const m = actor('user', 'PMANAGER')
  const { secret } = kr.createScopedToken(m, 'closer', ['incidents.write', 'services.write'])
  kr.authenticate(secret, { method: 'POST', scope: 'services.write' })
  kr.setUserRole('acme', 'PMANAGER', 'limited_user')
  kr.authenticate(secret, { method: 'POST', scope: 'incidents.write' })
  throwsCode(() => kr.authenticate(secret, { method: 'POST', scope: 'services.write' }), 'ERR_FORBIDDEN', 403)
  assert.equal(kr.removeUser('acme', 'PMANAGER'), 1)
  throwsCode(() => kr.authenticate(secret, { scope: 'incidents.read' }), 'ERR_UNAUTHORIZED', 401)
})

test('a stale actor never raises a stored role', () => {
  const kr = new Keyring()
  const old = kr.createUserToken(actor('limited_user', 'PRESP'), 'old').secret
  kr.setUserRole('acme', 'PRESP', 'observer')
  const fresh = kr.createUserToken(actor('owner', 'PRESP'), 'new').secret
  for (const t of [old, fresh]) {
    throwsCode(() => kr.authenticate(t, { method: 'POST', scope: 'incidents.write' }), 'ERR_FORBIDDEN', 403)
    assert.equal(kr.authenticate(t, { scope: 'incidents.read' }).role, 'observer')
  }
  throwsCode(() => kr.createGeneralKey(actor('owner', 'PRESP'), 'x'), 'ERR_NOT_PERMITTED', 403)
})

async function race(kr, label) {
  for (let round = 0; round < 30; round++) {
    const user = `PRACE${round}`
    if (round % 2) kr.setUserRole('acme', user, 'user')
    const creations = []
    for (let i = 0; i < 4; i++) {
      creations.push(kr.createUserTokenAsync(actor('user', user), 'race').then((k) => k.secret, (e) => {
        assert.equal(e.code, 'ERR_NOT_PERMITTED', e.message)
        return null
      }))
    }
    await kr.removeUserAsync('acme', user)
    for (const secret of await Promise.all(creations)) {
      if (secret === null) continue
      throwsCode(() => kr.authenticate(secret, { scope: 'incidents.read' }), 'ERR_UNAUTHORIZED', 401)
    }
    throwsCode(() => kr.createUserToken(actor('user', user), 'late'), 'ERR_NOT_PERMITTED', 403)
  }
  assert.ok(label)
}

test('offboarding is never undone by a racing creation (memory)', async () => {
  await race(new Keyring(), 'memory')
})

test('offboarding is never undone by a racing creation (SQLite)', async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'apikeys-esc-'))
  try {
    await race(new Keyring({ store: { sqlite: path.join(dir, 'k.db') } }), 'sqlite')
  } finally {
    fs.rmSync(dir, { recursive: true, force: true })
  }
})

test('user() reads the stored standing, which a stale actor never changes', async () => {
  const kr = new Keyring()
  assert.equal(kr.user('acme', 'PNOBODY'), null)
  kr.createUserToken(actor('limited_user', 'PRESP'), 't')
  assert.deepEqual(kr.user('acme', 'PRESP'), { role: 'limited_user', removed: false })
  kr.setUserRole('acme', 'PRESP', 'observer')
  kr.createUserToken(actor('owner', 'PRESP'), 't2')
  assert.deepEqual(await kr.userAsync('acme', 'PRESP'), { role: 'observer', removed: false })
  kr.removeUser('acme', 'PRESP')
  assert.deepEqual(kr.user('acme', 'PRESP'), { role: 'observer', removed: true })
  throwsCode(() => kr.user('acme', 'P\ud800'), 'ERR_INVALID_INPUT', 400)
  throwsCode(() => kr.user('', 'PRESP'), 'ERR_INVALID_INPUT', 400)
})

test('rateLimitRejections counts refusals per key id; flush answers how many uses it wrote', () => {
  const kr = new Keyring({ rateLimits: { generalKey: { requests: 1, windowMs: 60000 } } })
  const k = kr.createGeneralKey(actor('admin'), 'ci')
  assert.deepEqual(kr.rateLimitRejections(), {})
  kr.authenticate(k.secret)
  throwsCode(() => kr.authenticate(k.secret), 'ERR_RATE_LIMITED', 429)
  throwsCode(() => kr.authenticate(k.secret), 'ERR_RATE_LIMITED', 429)
  assert.deepEqual(kr.rateLimitRejections(), { [k.record.id]: 2 })
  assert.equal(kr.flush(), 0)
})

test('mayBlock says whether authenticate can wait on I/O', () => {
  assert.equal(new Keyring().mayBlock, false)
  assert.equal(new Keyring({ rateLimits: 'pagerduty' }).mayBlock, false)
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'apikeys-mb-'))
  try {
    assert.equal(new Keyring({ store: { sqlite: path.join(dir, 'k.db') } }).mayBlock, true)
  } finally {
    fs.rmSync(dir, { recursive: true, force: true })
  }
})
