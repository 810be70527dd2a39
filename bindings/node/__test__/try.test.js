'use strict'
// keyring.tryAuthenticate: authenticate's answer when it needs no I/O, null
// when it would (a key the store has not cached yet, a Redis limiter).
const { test } = require('node:test')
const assert = require('node:assert/strict')
const fs = require('node:fs')
const os = require('node:os')
const path = require('node:path')

const { Keyring } = require('..')
const { throwsCode } = require('./helpers')

const admin = { account: 'acme', user: 'PADMIN1', role: 'admin' }
const UNKNOWN = 'y_NbAkKc66ryYTWUXYEu' // well-formed, never issued

test('the in-memory store always answers, exactly as authenticate', () => {
  const kr = new Keyring({ rateLimits: { generalKey: { requests: 3, windowMs: 60_000 } } })
  const ro = kr.createGeneralKey(admin, 'ro', { readOnly: true })
  const integ = kr.createIntegrationKey(admin, 'PSERVICE1', 'Datadog')
  const p = kr.tryAuthenticate(ro.secret)
  assert.equal(p.keyId, ro.record.id)
  assert.deepEqual([p.rateLimit.limit, p.rateLimit.remaining], [3, 2])
  assert.equal(kr.tryAuthenticate(integ.secret, { api: 'events' }).target, 'PSERVICE1')
  throwsCode(() => kr.tryAuthenticate(ro.secret, { method: 'POST', scope: 'incidents.write' }), 'ERR_FORBIDDEN', 403, 2010)
  throwsCode(() => kr.tryAuthenticate(ro.secret, { api: 'events' }), 'ERR_WRONG_API', 400, 2006)
  throwsCode(() => kr.tryAuthenticate(UNKNOWN), 'ERR_UNAUTHORIZED', 401, 2006)
  throwsCode(() => kr.tryAuthenticate('nope'), 'ERR_UNAUTHORIZED', 401, 2006)
  throwsCode(() => kr.tryAuthenticate(ro.secret, { api: 'soap' }), 'ERR_INVALID_INPUT', 400, 2001)
  throwsCode(() => kr.tryAuthenticate(42), 'ERR_INVALID_ARG_TYPE', 400, 2001)
  // The tries counted against the limit like authenticate calls.
  assert.equal(kr.authenticate(ro.secret).rateLimit.remaining, 1)
  assert.equal(kr.tryAuthenticate(ro.secret).rateLimit.remaining, 0)
  throwsCode(() => kr.tryAuthenticate(ro.secret), 'ERR_RATE_LIMITED', 429, 2020)
  kr.delete(admin, integ.record.id)
  throwsCode(() => kr.tryAuthenticate(integ.secret, { api: 'events' }), 'ERR_UNAUTHORIZED', 401, 2006)
})

test('a SQLite store answers only the keys it has cached, never a stale success', async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'apikeys-try-'))
  try {
    const kr = await Keyring.open({ store: { sqlite: path.join(dir, 'keys.db') } })
    const k = kr.createGeneralKey(admin, 'bot')
    assert.equal(kr.tryAuthenticate(k.secret), null, 'cold: the store must read')
    assert.equal(kr.tryAuthenticate(UNKNOWN), null, 'a miss is never "not found"')
    throwsCode(() => kr.tryAuthenticate('nope'), 'ERR_UNAUTHORIZED', 401, 2006)
    kr.authenticate(k.secret)
    assert.equal(kr.tryAuthenticate(k.secret).keyId, k.record.id)
    kr.disable(admin, k.record.id)
    let answer = null
    try {
      answer = kr.tryAuthenticate(k.secret)
    } catch (e) {
      assert.equal(e.code, 'ERR_UNAUTHORIZED')
    }
    assert.equal(answer, null)
    throwsCode(() => kr.authenticate(k.secret), 'ERR_UNAUTHORIZED', 401, 2006)
    throwsCode(() => kr.tryAuthenticate(k.secret), 'ERR_UNAUTHORIZED', 401, 2006)
  } finally {
    fs.rmSync(dir, { recursive: true, force: true })
  }
})

test('a Redis limiter leaves every known key to authenticateAsync', () => {
  const kr = new Keyring({
    rateLimits: 'pagerduty',
    rateLimiter: { redis: 'redis://127.0.0.1:1/', timeoutMs: 100 },
  })
  const k = kr.createGeneralKey(admin, 'bot')
  assert.equal(kr.tryAuthenticate(k.secret), null)
  throwsCode(() => kr.tryAuthenticate('nope'), 'ERR_UNAUTHORIZED', 401, 2006)
})
