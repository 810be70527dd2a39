'use strict'
// Verification metrics (docs/design.md §12) through prom-client: the final
// answer of each authentication, counted once by the core, rendered by
// register.metrics(); bad input refused with a clear error.
const { test } = require('node:test')
const assert = require('node:assert/strict')
const client = require('prom-client')

const { Keyring } = require('..')
const { registerAuthMetrics, COUNTER, HISTOGRAM } = require('../prometheus')
const { actor, throwsCode } = require('./helpers')

const admin = actor('admin')
const manager = actor('manager')

async function scrape(kr) {
  const registry = new client.Registry()
  registerAuthMetrics(kr, registry)
  return registry.metrics()
}

function sample(text, name, kind, outcome, extra = '') {
  const prefix = `${name}{kind="${kind}",outcome="${outcome}"${extra}} `
  const line = text.split('\n').find((l) => l.startsWith(prefix))
  return line === undefined ? undefined : Number(line.slice(prefix.length))
}

test('each final answer is counted once with its kind and outcome', async () => {
  const kr = new Keyring({ metrics: true, rateLimits: { generalKey: { requests: 1, windowMs: 60_000 } } })
  const full = kr.createGeneralKey(admin, 'full')
  const ro = kr.createGeneralKey(admin, 'ro', { readOnly: true })
  const ev = kr.createIntegrationKey(manager, 'PSVC1', 'ev')
  const tok = kr.createUserToken(manager, 'mine')
  kr.authenticate(full.secret)
  // Valid, refused by its limit: rate_limited, never "ok" first.
  throwsCode(() => kr.authenticate(full.secret), 'ERR_RATE_LIMITED', 429, 2020)
  throwsCode(() => kr.authenticate(ro.secret, { api: 'rest', method: 'POST' }), 'ERR_FORBIDDEN', 403, 2010)
  throwsCode(() => kr.authenticate(ev.secret), 'ERR_WRONG_API', 401, 2006)
  throwsCode(() => kr.authenticate('not a key'), 'ERR_UNAUTHORIZED', 401, 2006)
  assert.ok(kr.tryAuthenticate(ev.secret, { api: 'events' }))
  kr.authenticate(tok.secret, { api: 'rest', method: 'GET', remoteAddress: '10.0.0.1', path: '/incidents' })
  await kr.authenticateAsync(tok.secret)
  kr.setAccount('acme', { restApi: true, advancedPermissions: false })
  throwsCode(() => kr.authenticate(tok.secret), 'ERR_PLAN_RESTRICTED', 402, 2014)

  const text = await scrape(kr)
  const expected = [
    ['general', 'ok', 1],
    ['general', 'rate_limited', 1],
    ['general', 'forbidden', 1],
    ['integration', 'wrong_api', 1],
    ['integration', 'ok', 1],
    ['malformed', 'unauthorized', 1],
    ['user_token', 'ok', 2],
    ['user_token', 'plan_restricted', 1],
  ]
  for (const [kind, outcome, n] of expected) {
    assert.equal(sample(text, COUNTER, kind, outcome), n, `${kind}/${outcome}\n${text}`)
    assert.equal(sample(text, `${HISTOGRAM}_count`, kind, outcome), n)
    assert.equal(sample(text, `${HISTOGRAM}_bucket`, kind, outcome, ',le="+Inf"'), n)
  }
  assert.equal(text.split('\n').filter((l) => l.startsWith(`${COUNTER}{`)).length, expected.length, text)
  assert.match(text, /# TYPE apikeys_authentications_total counter/)
  assert.match(text, /# TYPE apikeys_authentication_duration_seconds histogram/)
  const snap = kr.metrics()
  assert.equal(snap.bucketBounds.length, 18)
  assert.equal(snap.bucketBounds[0], 1e-6)
  for (const s of snap.series) {
    assert.equal(s.buckets.length, snap.bucketBounds.length + 1)
    assert.equal(s.buckets.at(-1), s.count)
    assert.ok(s.sumSeconds >= 0)
  }
})

test('the histogram renders the core bounds; no key material anywhere', async () => {
  const kr = new Keyring({ metrics: true })
  const k = kr.createGeneralKey(admin, 'k')
  kr.authenticate(k.secret)
  for (const bad of [`${k.secret}x`, `Token token=${k.secret}`, k.secret.slice(0, -1) + (k.secret.endsWith('a') ? 'b' : 'a')]) {
    assert.throws(() => kr.authenticate(bad))
  }
  const text = await scrape(kr)
  const les = [...text.matchAll(/^apikeys_authentication_duration_seconds_bucket\{kind="general",outcome="ok",le="([^"]+)"\}/gm)].map((m) => m[1])
  assert.equal(les.length, 19)
  assert.equal(les[0], '0.000001')
  assert.deepEqual(les.slice(-2), ['1', '+Inf'])
  for (const part of [k.secret, k.secret.slice(0, 8), k.secret.slice(-8)]) {
    assert.ok(!text.includes(part))
    assert.ok(!JSON.stringify(kr.metrics()).includes(part))
  }
})

test('answers from worker-pool authentications add up exactly', async () => {
  const kr = new Keyring({ metrics: true })
  const k = kr.createGeneralKey(admin, 'k')
  const calls = []
  for (let i = 0; i < 400; i++) {
    calls.push(i % 4 === 0 ? kr.authenticateAsync('garbage').catch(() => 'refused') : kr.authenticateAsync(k.secret))
  }
  const results = await Promise.all(calls)
  assert.equal(results.filter((r) => r === 'refused').length, 100)
  const text = await scrape(kr)
  assert.equal(sample(text, COUNTER, 'malformed', 'unauthorized'), 100)
  assert.equal(sample(text, COUNTER, 'general', 'ok'), 300)
})

test('bad input is refused clearly', () => {
  const plain = new Keyring()
  assert.equal(plain.metrics(), null) // reading with none installed
  assert.equal(new Keyring({ metrics: false }).metrics(), null)
  throwsCode(() => registerAuthMetrics(plain, new client.Registry()), 'ERR_INVALID_INPUT', 400, 2001)
  throwsCode(() => registerAuthMetrics({}, new client.Registry()), 'ERR_INVALID_ARG_TYPE', 400, 2001)
  const kr = new Keyring({ metrics: true })
  throwsCode(() => registerAuthMetrics(kr, {}), 'ERR_INVALID_ARG_TYPE', 400, 2001)
  throwsCode(() => registerAuthMetrics(kr, null), 'ERR_INVALID_ARG_TYPE', 400, 2001)
  for (const bad of ['yes', 1, null, {}]) {
    throwsCode(() => new Keyring({ metrics: bad }), 'ERR_INVALID_ARG_TYPE', 400, 2001)
  }
  // Installing twice in one registry: refused, and the first stays.
  const registry = new client.Registry()
  registerAuthMetrics(kr, registry)
  const e = throwsCode(() => registerAuthMetrics(kr, registry), 'ERR_INVALID_INPUT', 400, 2001)
  assert.match(e.message, /already has a metric named apikeys_authentications_total/)
  assert.equal(registry.getMetricsAsArray().length, 2)
  // With no registry given: prom-client's global one.
  registerAuthMetrics(kr)
  assert.ok(client.register.getSingleMetric(COUNTER))
  client.register.clear()
})
