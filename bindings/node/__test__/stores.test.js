'use strict'
// Durable stores (issue 6): SQLite in a temporary directory, PostgreSQL
// against the real server of scripts/services.sh. Without
// APIKEYS_TEST_POSTGRES_URL the PostgreSQL tests fail: they never skip.
const { test, describe, after } = require('node:test')
const assert = require('node:assert/strict')
const crypto = require('node:crypto')
const fs = require('node:fs')
const os = require('node:os')
const path = require('node:path')
const { pathToFileURL } = require('node:url')

const { Keyring } = require('..')
const { throwsCode, rejectsCode } = require('./helpers')

const admin = { account: 'acme', user: 'PADMIN1', role: 'admin' }
const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'apikeys-node-stores-'))
after(() => fs.rmSync(dir, { recursive: true, force: true }))

/** Calls `fn` until it returns true, for at most `ms`; fails otherwise. */
async function eventually(fn, ms, what) {
  const deadline = Date.now() + ms
  for (;;) {
    if (fn()) return
    assert.ok(Date.now() < deadline, what)
    await new Promise((r) => setTimeout(r, 10))
  }
}

function refused(kr, token) {
  try {
    kr.authenticate(token)
    return false
  } catch (e) {
    assert.equal(e.code, 'ERR_UNAUTHORIZED')
    return true
  }
}

describe('SQLite', () => {
  test('a key survives reopening the file', async () => {
    const file = path.join(dir, 'reopen.db')
    let token, keyId
    {
      const kr = new Keyring({ store: { sqlite: file } })
      assert.equal(kr.storeKind, 'sqlite')
      const issued = kr.createGeneralKey(admin, 'CI bot', { readOnly: true })
      token = issued.secret
      keyId = issued.record.id
      assert.equal(kr.authenticate(token).keyId, keyId)
      assert.equal(kr.flush(), 1) // the last use, written now
      assert.equal(await kr.flushAsync(), 0)
    }
    const again = new Keyring({ store: { sqlite: file } })
    const p = again.authenticate(token)
    assert.equal(p.keyId, keyId)
    assert.equal(p.account, 'acme')
    assert.equal(again.get(admin, keyId).access, 'read_only')
    assert.ok(again.get(admin, keyId).lastUsedAt instanceof Date, 'the flushed last use was kept')
    throwsCode(() => again.authenticate(token, { method: 'POST' }), 'ERR_FORBIDDEN', 403, 2010)
    // Opened off the JavaScript thread, from a file: URL.
    const third = await Keyring.open({ store: { sqlite: pathToFileURL(file) } })
    assert.ok(third instanceof Keyring)
    assert.equal((await third.authenticateAsync(token)).keyId, keyId)
    assert.deepEqual(
      third.list(admin).map((r) => r.id),
      [keyId],
    )
  })

  test('two keyrings on one file see each other’s disable and enable', async () => {
    const file = path.join(dir, 'shared.db')
    const one = new Keyring({ store: { sqlite: file } })
    const two = await Keyring.open({ store: { sqlite: file } })
    const issued = one.createGeneralKey(admin, 'bot')
    assert.equal(two.authenticate(issued.secret).keyId, issued.record.id) // warm two's cache
    one.disable(admin, issued.record.id)
    // The other store notices through the file's change counter (polled every 50 ms).
    await eventually(() => refused(two, issued.secret), 2000, 'the disable never reached the second keyring')
    assert.ok(two.get(admin, issued.record.id).disabled)
    await two.enableAsync(admin, issued.record.id)
    await eventually(() => !refused(one, issued.secret), 2000, 'the enable never reached the first keyring')
  })

  test('every management call has a Promise twin that works on the file', async () => {
    const kr = await Keyring.open({ store: { sqlite: path.join(dir, 'async.db') } })
    const issued = await kr.createGeneralKeyAsync(admin, 'async')
    assert.equal((await kr.getAsync(admin, issued.record.id)).description, 'async')
    await kr.disableAsync(admin, issued.record.id)
    await rejectsCode(kr.authenticateAsync(issued.secret), 'ERR_UNAUTHORIZED', 401, 2006)
    await kr.deleteAsync(admin, issued.record.id)
    assert.deepEqual(await kr.listAsync(admin), [])
  })

  test('bad paths are clear errors, never a crash', async () => {
    const missingDir = path.join(dir, 'no', 'such', 'dir', 'keys.db')
    const e = throwsCode(() => new Keyring({ store: { sqlite: missingDir } }), 'ERR_STORE', 500, 2000)
    assert.ok(e.message.length < 500)
    await rejectsCode(Keyring.open({ store: { sqlite: missingDir } }), 'ERR_STORE', 500, 2000)
    // A directory, and a file that is not a database.
    throwsCode(() => new Keyring({ store: { sqlite: dir } }), 'ERR_STORE', 500, 2000)
    const junk = path.join(dir, 'junk.db')
    fs.writeFileSync(junk, 'this is not a SQLite database, just text '.repeat(100))
    throwsCode(() => new Keyring({ store: { sqlite: junk } }), 'ERR_STORE', 500, 2000)
    for (const [bad, field] of [
      ['', 'options.store.sqlite'],
      ['a\0b', 'options.store.sqlite'],
      ['x'.repeat(10_000), 'options.store.sqlite'],
    ]) {
      const err = throwsCode(() => new Keyring({ store: { sqlite: bad } }), 'ERR_INVALID_INPUT', 400, 2001)
      assert.equal(err.field, field)
      assert.ok(err.message.length < 200)
      await rejectsCode(Keyring.open({ store: { sqlite: bad } }), 'ERR_INVALID_INPUT', 400, 2001)
    }
    for (const bad of [42, null, ['a.db'], {}]) {
      throwsCode(() => new Keyring({ store: { sqlite: bad } }), 'ERR_INVALID_ARG_TYPE', 400, 2001)
    }
    throwsCode(() => new Keyring({ store: { sqlite: 'a.db', schema: 'x' } }), 'ERR_INVALID_INPUT', 400, 2001)
    await rejectsCode(Keyring.open({ store: 'keys.db' }), 'ERR_INVALID_ARG_TYPE', 400, 2001)
  })
})

function postgresUrl() {
  const url = process.env.APIKEYS_TEST_POSTGRES_URL
  if (!url) {
    assert.fail('APIKEYS_TEST_POSTGRES_URL is not set: run scripts/test.sh, or `source scripts/services.sh` first')
  }
  return url
}

const freshSchema = () => `node_${crypto.randomBytes(8).toString('hex')}`

describe('PostgreSQL (the real server of scripts/services.sh)', () => {
  test('a key survives reconnecting; opening is off the JavaScript thread', async () => {
    const url = postgresUrl()
    const schema = freshSchema()
    const kr = await Keyring.open({ store: { postgres: url, schema } })
    assert.equal(kr.storeKind, 'postgres')
    const issued = await kr.createGeneralKeyAsync(admin, 'CI bot')
    assert.equal((await kr.authenticateAsync(issued.secret)).keyId, issued.record.id)
    assert.equal(await kr.flushAsync(), 1)

    const again = new Keyring({ store: { postgres: url, schema } }) // the synchronous constructor
    assert.equal(again.authenticate(issued.secret, { method: 'POST' }).keyId, issued.record.id)
    assert.deepEqual(
      again.list(admin).map((r) => r.id),
      [issued.record.id],
    )
    assert.ok(again.get(admin, issued.record.id).lastUsedAt instanceof Date)
  })

  test('two keyrings see each other’s disable', async () => {
    const url = postgresUrl()
    const schema = freshSchema()
    const [one, two] = await Promise.all([
      Keyring.open({ store: { postgres: url, schema } }),
      Keyring.open({ store: { postgres: url, schema } }),
    ])
    const issued = one.createGeneralKey(admin, 'bot')
    assert.equal(two.authenticate(issued.secret).keyId, issued.record.id)
    await one.disableAsync(admin, issued.record.id)
    // LISTEN/NOTIFY: well under a second.
    await eventually(() => refused(two, issued.secret), 2000, 'the disable never reached the second keyring')
  })

  test('the event loop runs while Keyring.open waits for the server', async () => {
    const url = postgresUrl()
    let ticks = 0
    const timer = setInterval(() => ticks++, 1)
    try {
      // A new schema: connecting, creating the tables, starting to listen.
      await Keyring.open({ store: { postgres: url, schema: freshSchema() } })
    } finally {
      clearInterval(timer)
    }
    assert.ok(ticks > 0, 'timers ran while the store was being opened')
  })

  test('an unreachable server or a bad URL is ERR_STORE, without the password', async () => {
    const secret = 'hunter2secret'
    const unreachable = `postgres://someone:${secret}@127.0.0.1:1/nothing`
    const e = throwsCode(() => new Keyring({ store: { postgres: unreachable } }), 'ERR_STORE', 500, 2000)
    assert.ok(!e.message.includes(secret) && !String(e.reason).includes(secret), e.message)
    const a = await rejectsCode(Keyring.open({ store: { postgres: unreachable } }), 'ERR_STORE', 500, 2000)
    assert.ok(!a.message.includes(secret))
    for (const bad of ['not a url', `postgres://u:${secret}@[::1`, 'mysql://root@127.0.0.1/db']) {
      const b = await rejectsCode(Keyring.open({ store: { postgres: bad } }), 'ERR_STORE', 500, 2000)
      assert.ok(!b.message.includes(secret), b.message)
    }
    throwsCode(() => new Keyring({ store: { postgres: '' } }), 'ERR_INVALID_INPUT', 400, 2001)
    throwsCode(() => new Keyring({ store: { postgres: 5 } }), 'ERR_INVALID_ARG_TYPE', 400, 2001)
    throwsCode(() => new Keyring({ store: { postgres: postgresUrl(), schema: 'Bad-Name' } }), 'ERR_STORE', 500, 2000)
  })
})
