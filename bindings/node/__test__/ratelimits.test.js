'use strict'
// Rate limits (issue 7): principal.rateLimit on every successful call, the
// 429 error, and the Redis limiter against the real Redis of scripts/redis.sh
// (without APIKEYS_TEST_REDIS_URL those tests fail: they never skip).
const { test, describe } = require('node:test')
const assert = require('node:assert/strict')
const crypto = require('node:crypto')

const { Keyring } = require('..')
const { actor, throwsCode, rejectsCode } = require('./helpers')

const owner = actor('owner')
const HOUR = 3_600_000

test('principal.rateLimit counts down limit, remaining and reset with every call', async () => {
  const kr = new Keyring({ rateLimits: { generalKey: { requests: 4, windowMs: HOUR } } })
  assert.equal(kr.hasRateLimits, true)
  const k = kr.createGeneralKey(owner, 'CI')
  const seen = []
  for (let i = 0; i < 3; i++) {
    const p = kr.authenticate(k.secret)
    assert.equal(p.keyId, k.record.id)
    assert.ok(Object.isFrozen(p) && Object.isFrozen(p.rateLimit) && Object.isFrozen(p.scopes))
    assert.deepEqual(Object.keys(p.rateLimit), ['limit', 'remaining', 'reset'])
    assert.equal(p.rateLimit.limit, 4)
    assert.ok(p.rateLimit.reset > 0 && p.rateLimit.reset <= HOUR, String(p.rateLimit.reset))
    seen.push(p.rateLimit.remaining)
  }
  assert.deepEqual(seen, [3, 2, 1])
  // The Promise twin reports it too.
  const last = await kr.authenticateAsync(k.secret)
  assert.deepEqual({ ...last.rateLimit, reset: 0 }, { limit: 4, remaining: 0, reset: 0 })
  assert.equal(last.keyId, k.record.id)

  const e = throwsCode(() => kr.authenticate(k.secret), 'ERR_RATE_LIMITED', 429, 2020)
  assert.ok(e.retryAfter > 0 && e.retryAfter <= HOUR, String(e.retryAfter))
  assert.equal(e.limit, 4)
  const a = await rejectsCode(kr.authenticateAsync(k.secret), 'ERR_RATE_LIMITED', 429, 2020)
  assert.equal(a.limit, 4)
})

test('a principal with a status has every field of the one kept per key, and its own status', () => {
  const kr = new Keyring({ rateLimits: { user: { requests: 10, windowMs: HOUR }, scopedAccount: { requests: 10, windowMs: HOUR } } })
  const t = kr.createUserToken(owner, 'me')
  const s = kr.createScopedToken(owner, 'closer', ['incidents.write'])
  const a = kr.authenticate(t.secret, { method: 'POST', scope: 'incidents.write' })
  const b = kr.authenticate(t.secret, { method: 'PROPFIND', scope: 'incidents.write' }) // the named-method path
  assert.notEqual(a, b)
  assert.equal(a.rateLimit.remaining, 9)
  assert.equal(b.rateLimit.remaining, 8)
  const { rateLimit: _a, ...restA } = a
  const { rateLimit: _b, ...restB } = b
  assert.deepEqual(restA, restB)
  assert.deepEqual(restA, { keyId: t.record.id, kind: 'user_token', account: 'acme', owner: owner.user, role: 'owner', access: 'full_access', scopes: [] })
  assert.equal(a.scopes, b.scopes, 'the frozen scopes array is shared')
  assert.deepEqual(JSON.parse(JSON.stringify(a)).rateLimit, { ...a.rateLimit })
  const p = kr.authenticate(s.secret, { scope: 'incidents.read' })
  assert.deepEqual(p.scopes, ['incidents.write'])
  assert.equal(p.rateLimit.remaining, 9)
})

test('for every kind of key, the principal with a status has exactly the kept principal’s fields', () => {
  const window = { requests: 100, windowMs: HOUR }
  const limited = new Keyring({ rateLimits: { generalKey: window, user: window, scopedAccount: window, eventsKey: window } })
  const plain = new Keyring()
  const cases = (kr) => [
    [kr.createGeneralKey(owner, 'g'), undefined],
    [kr.createGeneralKey(owner, 'ro', { readOnly: true }), undefined],
    [kr.createUserToken(owner, 'u'), undefined],
    [kr.createScopedToken(owner, 's', ['incidents.write', 'services.read']), { scope: 'services.read' }],
    [kr.createIntegrationKey(owner, 'PSVC', 'i'), { api: 'events' }],
    [kr.createRoutingKey(owner, 'orch', 'r'), { api: 'events' }],
  ]
  const a = cases(limited)
  const b = cases(plain)
  for (let i = 0; i < a.length; i++) {
    const withStatus = limited.authenticate(a[i][0].secret, a[i][1])
    const kept = plain.authenticate(b[i][0].secret, b[i][1])
    assert.deepEqual(Object.keys(withStatus), Object.keys(kept), a[i][0].record.kind)
    for (const f of Object.keys(kept)) {
      if (f !== 'keyId' && f !== 'rateLimit') assert.deepEqual(withStatus[f], kept[f], f)
    }
    assert.equal(withStatus.rateLimit.remaining, 99)
    assert.equal(kept.rateLimit, null)
  }
})

test('without limits, rateLimit is null and the kept principal is answered', async () => {
  const kr = new Keyring()
  assert.equal(kr.hasRateLimits, false)
  const k = kr.createGeneralKey(owner, 'CI')
  const p = kr.authenticate(k.secret)
  assert.equal(p.rateLimit, null)
  assert.ok(Object.keys(p).includes('rateLimit'))
  assert.equal(kr.authenticate(k.secret), p, 'the same frozen object every call')
  assert.equal(await kr.authenticateAsync(k.secret), p)
  // With limits, a class left unlimited also answers null, and the kept object.
  const some = new Keyring({ rateLimits: { generalKey: { requests: 1, windowMs: HOUR } } })
  const ev = some.createIntegrationKey(owner, 'PSVC', 'x')
  const q = some.authenticate(ev.secret, { api: 'events' })
  assert.equal(q.rateLimit, null)
  assert.equal(some.authenticate(ev.secret, { api: 'events' }), q)
  assert.equal((await some.authenticateAsync(ev.secret, { api: 'events' })).rateLimit, null)
})

test('refused requests spend nothing; a user’s tokens share one budget', () => {
  const kr = new Keyring({ rateLimits: { generalKey: { requests: 2, windowMs: HOUR }, user: { requests: 3, windowMs: HOUR } } })
  const ro = kr.createGeneralKey(owner, 'ro', { readOnly: true })
  for (let i = 0; i < 5; i++) throwsCode(() => kr.authenticate(ro.secret, { method: 'POST' }), 'ERR_FORBIDDEN', 403, 2010)
  assert.equal(kr.authenticate(ro.secret).rateLimit.remaining, 1)
  const t1 = kr.createUserToken(owner, 'laptop')
  const t2 = kr.createUserToken(owner, 'ci')
  assert.equal(kr.authenticate(t1.secret).rateLimit.remaining, 2)
  assert.equal(kr.authenticate(t2.secret).rateLimit.remaining, 1)
  assert.equal(kr.authenticate(t1.secret).rateLimit.remaining, 0)
  throwsCode(() => kr.authenticate(t2.secret), 'ERR_RATE_LIMITED', 429, 2020)
})

test('PagerDuty preset: 960 per general key, then 429', () => {
  const kr = new Keyring({ rateLimits: 'pagerduty' })
  const k = kr.createGeneralKey(owner, 'CI')
  let p
  for (let i = 0; i < 960; i++) p = kr.authenticate(k.secret)
  assert.deepEqual([p.rateLimit.limit, p.rateLimit.remaining], [960, 0])
  throwsCode(() => kr.authenticate(k.secret), 'ERR_RATE_LIMITED', 429, 2020)
})

test('per-account overrides win over the class limit; null makes a class unlimited there', () => {
  const kr = new Keyring({
    rateLimits: {
      generalKey: { requests: 1, windowMs: HOUR },
      accounts: { big: { generalKey: { requests: 3, windowMs: HOUR } }, free: { generalKey: null } },
    },
  })
  const remaining = (account) => {
    const k = kr.createGeneralKey(actor('owner', 'POWNER1', account), 'CI')
    const p = kr.authenticate(k.secret)
    return p.rateLimit === null ? null : [p.rateLimit.limit, p.rateLimit.remaining]
  }
  assert.deepEqual(remaining('acme'), [1, 0])
  assert.deepEqual(remaining('big'), [3, 2])
  assert.equal(remaining('free'), null)
})

test('pagerduty: true starts from PagerDuty\'s limits; a class named replaces its own', () => {
  const kr = new Keyring({ rateLimits: { pagerduty: true, generalKey: { requests: 2, windowMs: HOUR }, user: null } })
  const general = kr.createGeneralKey(owner, 'CI')
  const events = kr.createIntegrationKey(owner, 'PSVC', 'x')
  const token = kr.createUserToken(owner, 'laptop')
  assert.equal(kr.authenticate(general.secret).rateLimit.limit, 2)
  assert.equal(kr.authenticate(events.secret, { api: 'events' }).rateLimit.limit, 120)
  assert.equal(kr.authenticate(token.secret).rateLimit, null)
})

test('per-key overrides win over the account\'s and the class\'s (keys in a shared SQLite file)', (t) => {
  const fs = require('node:fs')
  const os = require('node:os')
  const path = require('node:path')
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'apikeys-keylimits-'))
  t.after(() => fs.rmSync(dir, { recursive: true, force: true }))
  const file = path.join(dir, 'keys.db')
  const maker = new Keyring({ store: { sqlite: file } })
  const hot = maker.createGeneralKey(owner, 'hot')
  const open = maker.createGeneralKey(owner, 'open')
  const plain = maker.createGeneralKey(owner, 'plain')
  maker.flush()
  const kr = new Keyring({
    store: { sqlite: file },
    rateLimits: {
      generalKey: { requests: 5, windowMs: HOUR },
      accounts: { acme: { generalKey: { requests: 4, windowMs: HOUR } } },
      keys: { [hot.record.id]: { requests: 1, windowMs: HOUR }, [open.record.id]: null },
    },
  })
  assert.equal(kr.authenticate(hot.secret).rateLimit.limit, 1)
  throwsCode(() => kr.authenticate(hot.secret), 'ERR_RATE_LIMITED', 429, 2020)
  assert.equal(kr.authenticate(open.secret).rateLimit, null)
  assert.equal(kr.authenticate(plain.secret).rateLimit.limit, 4)
})

test('bad overrides are refused, naming where', () => {
  const limit = { requests: 1, windowMs: 1000 }
  const field = (rateLimits) => throwsCode(() => new Keyring({ rateLimits }), 'ERR_INVALID_INPUT', 400, 2001).field
  assert.equal(field({ keys: { 'not-an-id': limit } }), 'rate_limits.keys')
  assert.equal(field({ accounts: { acme: { generalkey: limit } } }), 'options.rate_limits.accounts')
  assert.equal(field({ accounts: { acme: { generalKey: limit, pagerduty: true } } }), 'options.rate_limits.accounts')
  const typeField = (rateLimits) => throwsCode(() => new Keyring({ rateLimits }), 'ERR_INVALID_ARG_TYPE', 400, 2001).field
  assert.equal(typeField({ keys: { P0000000000000: 5 } }), 'options.rate_limits.keys')
  assert.equal(typeField({ accounts: { acme: 5 } }), 'options.rate_limits.accounts')
  assert.equal(typeField({ pagerduty: 'yes' }), 'options.rate_limits.pagerduty')
  const nested = throwsCode(() => new Keyring({ rateLimits: { accounts: { acme: { user: { requests: 0, windowMs: 1 } } } } }), 'ERR_INVALID_ARG_TYPE', 400, 2001)
  assert.equal(nested.field, 'options.rate_limits.accounts.user.requests')
  assert.match(nested.message, /options\.rateLimits\.accounts\['acme'\]\.user\.requests/)
})

function redisUrl() {
  const url = process.env.APIKEYS_TEST_REDIS_URL
  if (!url) assert.fail('APIKEYS_TEST_REDIS_URL is not set: run scripts/test.sh, or `source scripts/redis.sh` first')
  return url
}

describe('Redis limiter (the real Redis of scripts/redis.sh)', () => {
  const limits = { generalKey: { requests: 5, windowMs: HOUR } }

  test('two keyrings sharing one Redis enforce one limit together', async () => {
    const url = redisUrl()
    const prefix = `node-test:${crypto.randomBytes(6).toString('hex')}:`
    const file = require('node:path').join(require('node:os').tmpdir(), `apikeys-redis-${crypto.randomBytes(6).toString('hex')}.db`)
    try {
      // Two processes' keyrings: one SQLite file for the keys, one Redis for the counts.
      const one = new Keyring({ store: { sqlite: file }, rateLimits: limits, rateLimiter: { redis: url, prefix } })
      const two = await Keyring.open({ store: { sqlite: file }, rateLimits: limits, rateLimiter: { redis: url, prefix, fallback: 'deny' } })
      const k = one.createGeneralKey(owner, 'shared')
      const remaining = []
      for (let i = 0; i < 5; i++) {
        const kr = i % 2 ? two : one
        const p = i % 3 ? kr.authenticate(k.secret) : await kr.authenticateAsync(k.secret)
        assert.equal(p.rateLimit.limit, 5)
        remaining.push(p.rateLimit.remaining)
      }
      assert.deepEqual(remaining, [4, 3, 2, 1, 0])
      assert.deepEqual(one.rateLimiterState, { degraded: false, fallbackCount: 0 })
      for (const kr of [one, two]) {
        const e = throwsCode(() => kr.authenticate(k.secret), 'ERR_RATE_LIMITED', 429, 2020)
        assert.ok(e.retryAfter > 0 && e.retryAfter <= HOUR)
        await rejectsCode(kr.authenticateAsync(k.secret), 'ERR_RATE_LIMITED', 429, 2020)
      }
    } finally {
      for (const f of [file, `${file}-wal`, `${file}-shm`]) require('node:fs').rmSync(f, { force: true })
    }
  })

  test('an unreachable Redis falls back as asked; a bad URL is ERR_STORE without the password', async () => {
    redisUrl()
    const down = 'redis://:hunter2secret@127.0.0.1:1/'
    const deny = new Keyring({ rateLimits: limits, rateLimiter: { redis: down, fallback: 'deny', timeoutMs: 100 } })
    const k = deny.createGeneralKey(owner, 'x')
    throwsCode(() => deny.authenticate(k.secret), 'ERR_RATE_LIMITED', 429, 2020)
    const allow = new Keyring({ rateLimits: limits, rateLimiter: { redis: down, fallback: 'allow', timeoutMs: 100 } })
    const k2 = allow.createGeneralKey(owner, 'x')
    for (let i = 0; i < 8; i++) allow.authenticate(k2.secret)
    const local = new Keyring({ rateLimits: limits, rateLimiter: { redis: down, timeoutMs: 100 } })
    const k3 = local.createGeneralKey(owner, 'x')
    for (let i = 0; i < 5; i++) assert.equal(local.authenticate(k3.secret).rateLimit.remaining, 4 - i)
    throwsCode(() => local.authenticate(k3.secret), 'ERR_RATE_LIMITED', 429, 2020)
    // As Python's RedisRateLimiter.is_degraded and fallback_count: the fallback decided them all.
    assert.deepEqual(local.rateLimiterState, { degraded: true, fallbackCount: 6 })
    assert.equal(allow.rateLimiterState.fallbackCount, 8)
    assert.equal(new Keyring({ rateLimits: limits }).rateLimiterState, null)

    for (const bad of ['not a url', 'http://:hunter2secret@127.0.0.1/']) {
      const e = throwsCode(() => new Keyring({ rateLimits: limits, rateLimiter: { redis: bad } }), 'ERR_STORE', 500, 2000)
      assert.ok(!e.message.includes('hunter2secret'), e.message)
      await rejectsCode(Keyring.open({ rateLimits: limits, rateLimiter: { redis: bad } }), 'ERR_STORE', 500, 2000)
    }
    throwsCode(() => new Keyring({ rateLimiter: { redis: redisUrl() } }), 'ERR_INVALID_INPUT', 400, 2001)
    throwsCode(() => new Keyring({ rateLimits: limits, rateLimiter: { redis: redisUrl(), fallback: 'maybe' } }), 'ERR_INVALID_ARG_TYPE', 400, 2001)
    throwsCode(() => new Keyring({ rateLimits: limits, rateLimiter: { redis: redisUrl(), timeoutMs: 0 } }), 'ERR_INVALID_ARG_TYPE', 400, 2001)
    throwsCode(() => new Keyring({ rateLimits: limits, rateLimiter: { url: redisUrl() } }), 'ERR_INVALID_INPUT', 400, 2001)
    throwsCode(() => new Keyring({ rateLimits: limits, rateLimiter: 'redis://x/' }), 'ERR_INVALID_ARG_TYPE', 400, 2001)
  })
})
