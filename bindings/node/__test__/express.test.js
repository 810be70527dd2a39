'use strict'
// require('apikeys/express') over a real loopback socket (app.listen on port
// 0): plain HTTP requests for every edge case, the server still serving
// afterwards, and PagerDuty's own client (@pagerduty/pdjs) against it.
// express and @pagerduty/pdjs are dev dependencies (package-lock.json): under
// CI or scripts/test-node.sh (APIKEYS_REQUIRE_TEST_DEPS=1) a missing one fails
// the run; elsewhere those tests are skipped, saying why.
const { test, describe, before, after } = require('node:test')
const assert = require('node:assert/strict')
const net = require('node:net')
const https = require('node:https')
const fs = require('node:fs')
const os = require('node:os')
const path = require('node:path')
const { execFileSync } = require('node:child_process')

const { Keyring } = require('..')
const { apikeys, tokenFromAuthorization } = require('../express')

function optional(name) {
  try {
    return require(name)
  } catch {
    return null
  }
}
const express = optional('express')
const pdjs = optional('@pagerduty/pdjs')
const skipExpress = express ? false : 'express is not installed'
const required = Boolean(process.env.CI || process.env.APIKEYS_REQUIRE_TEST_DEPS)

test('the test dependencies are installed when required (CI, scripts/test-node.sh)', { skip: !required && 'not under CI' }, () => {
  assert.ok(express, 'express is not installed: run `npm ci` in bindings/node')
  assert.ok(pdjs, '@pagerduty/pdjs is not installed: run `npm ci` in bindings/node')
  assert.ok(selfSignedCert(), 'openssl is needed for the pdjs tests (the Events client speaks only https)')
})

const EVENT_LIMIT = 64 * 1024
const admin = { account: 'acme', user: 'PADMIN1', role: 'admin' }
const manager = { account: 'acme', user: 'PMANAGER1', role: 'manager' }

function makeKeys(keyring = new Keyring()) {
  const full = keyring.createGeneralKey(admin, 'full')
  const ro = keyring.createGeneralKey(admin, 'read only', { readOnly: true })
  const scoped = keyring.createScopedToken(manager, 'closer', ['incidents.write'])
  const integ = keyring.createIntegrationKey(manager, 'PSERVICE1', 'Datadog')
  const k = {
    keyring,
    full: full.secret,
    readOnly: ro.secret,
    readOnlyId: ro.record.id,
    scoped: scoped.secret,
    integration: integ.secret,
  }
  k.all = [k.full, k.readOnly, k.scoped, k.integration]
  return k
}

/** The example incidents service. */
function incidentsApp(keyring, options = {}) {
  const app = express()
  const auth = apikeys(keyring, { maxEventBytes: EVENT_LIMIT, ...options })
  const items = []
  const open = (account, title, via) => {
    const i = { id: `Q${String(items.length + 1).padStart(6, '0')}`, type: 'incident', title, status: 'triggered', account, created_via: via }
    items.push(i)
    return i
  }
  app.get('/incidents', auth.rest('incidents.read'), (req, res) => {
    res.json({ incidents: items.filter((i) => i.account === req.apikey.account), limit: 25, offset: 0, more: false })
  })
  app.post('/incidents', auth.rest('incidents.write'), express.json(), (req, res) => {
    res.status(201).json({ incident: open(req.apikey.account, req.body?.incident?.title ?? 'untitled', 'rest') })
  })
  app.put('/incidents/:id', auth.rest('incidents.write'), (req, res) => {
    const i = items.find((x) => x.id === req.params.id && x.account === req.apikey.account)
    if (!i) return res.status(404).json({ error: { message: 'Not Found', code: 2100 } })
    i.status = 'acknowledged'
    res.json({ incident: i })
  })
  app.get('/whoami', auth.rest(), (req, res) => res.json({ account: req.apikey.account, kind: req.apikey.kind }))
  app.post('/v2/enqueue', auth.events(), (req, res) => {
    const i = open(req.apikey.account, String(req.body.payload?.summary ?? 'event'), 'events')
    res.status(202).json({ status: 'success', message: 'Event processed', dedup_key: i.id, target: req.apikey.target })
  })
  return app
}

function listen(server) {
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve(server.address().port)))
}

/** Sends raw bytes, reads one answer (stopping at Content-Length, as a client would). */
function send(port, raw) {
  return new Promise((resolve, reject) => {
    const sock = net.connect(port, '127.0.0.1')
    let data = Buffer.alloc(0)
    let settled = false
    const done = () => {
      if (settled) return
      settled = true
      sock.destroy()
      resolve(parse(data))
    }
    sock.setTimeout(30000, () => {
      settled = true
      sock.destroy()
      reject(new Error('timeout'))
    })
    sock.on('error', () => done()) // an answer may come before a reset
    sock.on('data', (c) => {
      data = Buffer.concat([data, c])
      if (complete(data)) done()
    })
    sock.on('end', done)
    sock.on('close', done)
    sock.write(raw)
  })
}

function complete(data) {
  const at = data.indexOf('\r\n\r\n')
  if (at < 0) return false
  const m = /\r\ncontent-length:\s*(\d+)/i.exec(data.subarray(0, at).toString('latin1'))
  return m ? data.length - at - 4 >= Number(m[1]) : false
}

function parse(data) {
  const at = data.indexOf('\r\n\r\n')
  if (at < 0) return null
  const lines = data.subarray(0, at).toString('latin1').split('\r\n')
  const headers = {}
  for (const l of lines.slice(1)) {
    const i = l.indexOf(':')
    headers[l.slice(0, i).trim().toLowerCase()] = l.slice(i + 1).trim()
  }
  const body = data.subarray(at + 4).toString('utf8')
  return { status: Number(lines[0].split(' ')[1]), headers, body, whole: data.toString('latin1') }
}

function build(method, p, headers = [], body = '') {
  const lines = [`${method} ${p} HTTP/1.1`, 'Host: 127.0.0.1', 'Connection: close', ...headers]
  if (body || method !== 'GET') lines.push('Content-Type: application/json', `Content-Length: ${Buffer.byteLength(body)}`)
  return Buffer.concat([Buffer.from(lines.join('\r\n') + '\r\n\r\n', 'latin1'), Buffer.from(body)])
}

async function call(port, method, p, headers = [], body = '') {
  const a = await send(port, build(method, p, headers, body))
  assert.ok(a, 'the server answered')
  return a
}

const auth = (key) => [`Authorization: Token token=${key}`]
const event = (routingKey) =>
  JSON.stringify({ routing_key: routingKey, event_action: 'trigger', payload: { summary: 'disk full', source: 'db1', severity: 'critical' } })

function refused(keys, a, status, code) {
  assert.equal(a.status, status, a.whole)
  assert.match(a.headers['content-type'] ?? '', /^application\/json/)
  const v = JSON.parse(a.body)
  assert.deepEqual(Object.keys(v), ['error'])
  assert.deepEqual(Object.keys(v.error).sort(), ['code', 'message'])
  assert.equal(v.error.code, code, a.whole)
  for (const k of keys.all) assert.ok(!a.whole.includes(k), `a key leaked: ${a.whole}`)
  assert.ok(!/\n\s+at /.test(a.body), 'no stack trace')
  assert.equal(a.headers['www-authenticate'], status === 401 ? 'Token' : undefined, a.whole)
  return v.error.message
}

test('tokenFromAuthorization accepts the PagerDuty and Bearer forms only', () => {
  const k = 'y_NbAkKc66ryYTWUXYEu'
  for (const v of [`Token token=${k}`, `token TOKEN=${k}`, `  Token   token = "${k}"  `, `Bearer ${k}`, `bearer\t${k}`]) {
    assert.equal(tokenFromAuthorization(v), k, v)
  }
  for (const v of ['', k, `Token ${k}`, 'Token token=', `Basic ${k}`, `Bearer ${k} ${k}`, `Token token=${'a'.repeat(2000)}`]) {
    assert.equal(tokenFromAuthorization(v), null, v)
  }
})

test('an invalid route scope is refused when the route is declared', () => {
  assert.throws(() => apikeys(new Keyring()).rest('incidents'), (e) => e.code === 'ERR_INVALID_INPUT')
})

describe('express over loopback', { skip: skipExpress }, () => {
  let keys, server, port
  const stillServing = async () => assert.equal((await call(port, 'GET', '/incidents', auth(keys.full))).status, 200)

  before(async () => {
    keys = makeKeys()
    server = incidentsApp(keys.keyring).listen(0, '127.0.0.1')
    await new Promise((r) => server.once('listening', r))
    port = server.address().port
  })
  after(() => new Promise((r) => server.close(r)))

  test('a valid key reads, in every accepted header form', async () => {
    for (const h of [
      `Authorization: Token token=${keys.full}`,
      `authorization: token TOKEN=${keys.full}`,
      `Authorization:    Token   token = "${keys.full}"  `,
      `Authorization: Bearer ${keys.readOnly}`,
    ]) {
      const a = await call(port, 'GET', '/incidents', [h])
      assert.equal(a.status, 200, a.whole)
      assert.deepEqual(JSON.parse(a.body).incidents, [])
    }
    const a = await call(port, 'GET', '/whoami', auth(keys.full))
    assert.deepEqual(JSON.parse(a.body), { account: 'acme', kind: 'general' })
  })

  test('missing, empty and malformed headers are 401', async () => {
    for (const headers of [
      [],
      ['Authorization:'],
      ['Authorization:    '],
      [`Authorization: Basic ${keys.full}`],
      [`Authorization: ${keys.full}`],
      [`Authorization: Token ${keys.full}`],
      ['Authorization: Token token=not-a-key'],
      ['Authorization: Token token=aaaaaaaaaaaaaaaaaaaa'],
      [`Authorization: Token token=${'a'.repeat(2000)}`],
      auth(keys.integration),
    ]) {
      refused(keys, await call(port, 'GET', '/incidents', headers), 401, 2006)
    }
    await stillServing()
  })

  test('a 1 MB header is refused and the server goes on', async () => {
    const a = await send(port, build('GET', '/incidents', [`Authorization: Token token=${'a'.repeat(1 << 20)}`]))
    // Node's parser refuses a head over 16 KiB itself (431) before any middleware.
    if (a) {
      assert.ok([400, 401, 431].includes(a.status), a.whole)
      for (const k of keys.all) assert.ok(!a.whole.includes(k))
    }
    await stillServing()
  })

  test('two Authorization headers are 400', async () => {
    const h = `Authorization: Token token=${keys.full}`
    refused(keys, await call(port, 'GET', '/incidents', [h, h]), 400, 2001)
    refused(keys, await call(port, 'GET', '/incidents', [h, `Authorization: Bearer ${keys.readOnly}`]), 400, 2001)
    await stillServing()
  })

  test('a read-only key cannot POST; a full key can', async () => {
    const body = '{"incident":{"title":"db down"}}'
    const msg = refused(keys, await call(port, 'POST', '/incidents', auth(keys.readOnly), body), 403, 2010)
    assert.match(msg, /read-only/)
    const a = await call(port, 'POST', '/incidents', auth(keys.full), body)
    assert.equal(a.status, 201, a.whole)
    assert.equal(JSON.parse(a.body).incident.title, 'db down')
  })

  test('a disabled key is 401, and reads again once enabled', async () => {
    keys.keyring.disable(admin, keys.readOnlyId)
    try {
      refused(keys, await call(port, 'GET', '/incidents', auth(keys.readOnly)), 401, 2006)
    } finally {
      keys.keyring.enable(admin, keys.readOnlyId)
    }
    assert.equal((await call(port, 'GET', '/incidents', auth(keys.readOnly))).status, 200)
  })

  test('the route scope decides what a scoped token may do', async () => {
    assert.equal((await call(port, 'GET', '/incidents', auth(keys.scoped))).status, 200)
    const a = await call(port, 'POST', '/incidents', auth(keys.scoped), '{"incident":{"title":"t"}}')
    assert.equal(a.status, 201, a.whole)
    const id = JSON.parse(a.body).incident.id
    const ack = await call(port, 'PUT', `/incidents/${id}`, auth(keys.scoped), '{}')
    assert.equal(JSON.parse(ack.body).incident.status, 'acknowledged')
    refused(keys, await call(port, 'GET', '/whoami', auth(keys.scoped)), 403, 2010)
  })

  test('an Events key in the body is accepted with 202', async () => {
    const a = await call(port, 'POST', '/v2/enqueue', [], event(keys.integration))
    assert.equal(a.status, 202, a.whole)
    assert.equal(JSON.parse(a.body).target, 'PSERVICE1')
  })

  test('a REST key as routing key is refused', async () => {
    for (const k of [keys.full, keys.scoped]) {
      const msg = refused(keys, await call(port, 'POST', '/v2/enqueue', [], event(k)), 400, 2006)
      assert.match(msg.toLowerCase(), /rest api/)
    }
    refused(keys, await call(port, 'POST', '/v2/enqueue', [], event('0123456789abcdef0123456789abcdef')), 401, 2006)
    await stillServing()
  })

  test('bad Events bodies are 400', async () => {
    const huge = JSON.stringify({ routing_key: keys.integration, payload: 'x'.repeat(200 * 1024) })
    for (const body of [
      '',
      'not json',
      `routing_key=${keys.integration}`,
      `{"routing_key":"${keys.integration}"`,
      `["${keys.integration}"]`,
      '{"event_action":"trigger","payload":{}}',
      '{"routing_key":42}',
      huge,
    ]) {
      refused(keys, await call(port, 'POST', '/v2/enqueue', [], body), 400, 2001)
    }
    // Chunked, no Content-Length: cut off at the limit while reading.
    const first = `{"routing_key":"${keys.integration}","p":"`
    const chunk = 'x'.repeat(16 * 1024)
    let raw = 'POST /v2/enqueue HTTP/1.1\r\nHost: x\r\nConnection: close\r\nTransfer-Encoding: chunked\r\n\r\n'
    raw += `${first.length.toString(16)}\r\n${first}\r\n`
    for (let i = 0; i < 8; i++) raw += `${chunk.length.toString(16)}\r\n${chunk}\r\n`
    raw += '2\r\n"}\r\n0\r\n\r\n'
    const msg = refused(keys, await send(port, Buffer.from(raw)), 400, 2001)
    assert.match(msg, new RegExp(String(EVENT_LIMIT)))
    assert.equal((await call(port, 'POST', '/v2/enqueue', [], event(keys.integration))).status, 202)
    await stillServing()
  })
})

describe('rate limits over loopback', { skip: skipExpress }, () => {
  test('an exhausted limit is 429 with retry-after and the ratelimit headers', async () => {
    const keys = makeKeys(new Keyring({ rateLimits: { generalKey: { requests: 2, windowMs: 3600_000 } } }))
    const server = incidentsApp(keys.keyring).listen(0, '127.0.0.1')
    await new Promise((r) => server.once('listening', r))
    const port = server.address().port
    try {
      for (let i = 0; i < 2; i++) assert.equal((await call(port, 'GET', '/incidents', auth(keys.full))).status, 200)
      const a = await call(port, 'GET', '/incidents', auth(keys.full))
      refused(keys, a, 429, 2020)
      const retry = Number(a.headers['retry-after'])
      assert.ok(retry >= 1 && retry <= 3600, a.whole)
      assert.equal(a.headers['ratelimit-limit'], '2')
      assert.equal(a.headers['ratelimit-remaining'], '0')
      assert.equal(a.headers['ratelimit-reset'], String(retry))
      // Another key has its own budget.
      assert.equal((await call(port, 'GET', '/incidents', auth(keys.readOnly))).status, 200)
    } finally {
      await new Promise((r) => server.close(r))
    }
  })

  test('successful answers carry ratelimit-limit, -remaining and -reset; none without limits', async () => {
    const limits = { generalKey: { requests: 3, windowMs: 60_000 }, eventsKey: { requests: 5, windowMs: 30_000 } }
    const keys = makeKeys(new Keyring({ rateLimits: limits }))
    const server = incidentsApp(keys.keyring).listen(0, '127.0.0.1')
    await new Promise((r) => server.once('listening', r))
    const port = server.address().port
    try {
      const remaining = []
      for (let i = 0; i < 3; i++) {
        const a = await call(port, 'GET', '/incidents', auth(keys.full))
        assert.equal(a.status, 200, a.whole)
        assert.equal(a.headers['ratelimit-limit'], '3')
        assert.equal(a.headers['ratelimit-reset'], '60')
        remaining.push(a.headers['ratelimit-remaining'])
      }
      assert.deepEqual(remaining, ['2', '1', '0'])
      const ev = await call(port, 'POST', '/v2/enqueue', [], event(keys.integration))
      assert.equal(ev.status, 202, ev.whole)
      assert.deepEqual(
        [ev.headers['ratelimit-limit'], ev.headers['ratelimit-remaining'], ev.headers['ratelimit-reset']],
        ['5', '4', '30'],
      )
      // Refusals before the limiter (403) carry no budget and spend none.
      refused(keys, await call(port, 'POST', '/incidents', auth(keys.readOnly), '{}'), 403, 2010)
      const ro = await call(port, 'GET', '/incidents', auth(keys.readOnly))
      assert.equal(ro.headers['ratelimit-remaining'], '2')
      // A class without a limit (scoped tokens here): no headers.
      const sc = await call(port, 'GET', '/incidents', auth(keys.scoped))
      assert.equal(sc.status, 200)
      assert.equal(sc.headers['ratelimit-limit'], undefined)
    } finally {
      await new Promise((r) => server.close(r))
    }
    const plain = makeKeys()
    const srv = incidentsApp(plain.keyring).listen(0, '127.0.0.1')
    await new Promise((r) => srv.once('listening', r))
    try {
      const a = await call(srv.address().port, 'GET', '/incidents', auth(plain.full))
      assert.equal(a.status, 200)
      for (const h of ['ratelimit-limit', 'ratelimit-remaining', 'ratelimit-reset']) assert.equal(a.headers[h], undefined, h)
    } finally {
      await new Promise((r) => srv.close(r))
    }
  })
})

describe('offThread: authenticateAsync over a SQLite store', { skip: skipExpress }, () => {
  test('reads, refusals, events and limits answer as on the event loop', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'apikeys-express-'))
    const keyring = await Keyring.open({ store: { sqlite: path.join(dir, 'keys.db') }, rateLimits: { generalKey: { requests: 3, windowMs: 60_000 } } })
    const keys = makeKeys(keyring)
    const server = incidentsApp(keyring, { offThread: true }).listen(0, '127.0.0.1')
    await new Promise((r) => server.once('listening', r))
    const port = server.address().port
    try {
      const a = await call(port, 'GET', '/incidents', auth(keys.full))
      assert.equal(a.status, 200, a.whole)
      assert.deepEqual([a.headers['ratelimit-limit'], a.headers['ratelimit-remaining']], ['3', '2'])
      refused(keys, await call(port, 'POST', '/incidents', auth(keys.readOnly), '{}'), 403, 2010)
      refused(keys, await call(port, 'GET', '/incidents', []), 401, 2006)
      keyring.disable(admin, keys.readOnlyId)
      refused(keys, await call(port, 'GET', '/incidents', auth(keys.readOnly)), 401, 2006)
      assert.equal((await call(port, 'POST', '/v2/enqueue', [], event(keys.integration))).status, 202)
      refused(keys, await call(port, 'POST', '/v2/enqueue', [], event(keys.full)), 400, 2006)
      for (let i = 0; i < 2; i++) assert.equal((await call(port, 'GET', '/incidents', auth(keys.full))).status, 200)
      const over = await call(port, 'GET', '/incidents', auth(keys.full))
      refused(keys, over, 429, 2020)
      assert.ok(Number(over.headers['retry-after']) >= 1)
    } finally {
      await new Promise((r) => server.close(r))
      fs.rmSync(dir, { recursive: true, force: true })
    }
    assert.throws(() => apikeys(new Keyring(), { offThread: 'yes' }), TypeError)
  })
})

describe('offThread: a warm key is answered inline, a cold one on the thread pool', { skip: skipExpress }, () => {
  test('only checks the store must read go to authenticateAsync', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'apikeys-express-'))
    const real = await Keyring.open({ store: { sqlite: path.join(dir, 'keys.db') } })
    const keys = makeKeys(real)
    const n = { tries: 0, offloaded: 0 }
    const watched = {
      authenticate: (t, r) => real.authenticate(t, r),
      tryAuthenticate: (t, r) => (n.tries++, real.tryAuthenticate(t, r)),
      authenticateAsync: (t, r) => (n.offloaded++, real.authenticateAsync(t, r)),
    }
    const server = incidentsApp(watched, { offThread: true }).listen(0, '127.0.0.1')
    await new Promise((r) => server.once('listening', r))
    const port = server.address().port
    try {
      assert.equal((await call(port, 'GET', '/incidents', auth(keys.full))).status, 200)
      assert.deepEqual(n, { tries: 1, offloaded: 1 }, 'cold')
      for (let i = 0; i < 3; i++) assert.equal((await call(port, 'GET', '/incidents', auth(keys.full))).status, 200)
      assert.deepEqual(n, { tries: 4, offloaded: 1 }, 'warm: answered inline')
      assert.equal((await call(port, 'POST', '/v2/enqueue', [], event(keys.integration))).status, 202)
      assert.equal((await call(port, 'POST', '/v2/enqueue', [], event(keys.integration))).status, 202)
      assert.deepEqual(n, { tries: 6, offloaded: 2 }, 'events: cold, then warm')
      refused(keys, await call(port, 'GET', '/incidents', auth('nope')), 401, 2006)
      assert.deepEqual(n, { tries: 7, offloaded: 2 }, 'malformed: refused by the try')
      refused(keys, await call(port, 'POST', '/incidents', auth(keys.readOnly), '{}'), 403, 2010)
      refused(keys, await call(port, 'POST', '/incidents', auth(keys.readOnly), '{}'), 403, 2010)
      assert.deepEqual(n, { tries: 9, offloaded: 3 }, 'a cached refusal is answered inline')
      real.disable(admin, keys.readOnlyId)
      refused(keys, await call(port, 'GET', '/incidents', auth(keys.readOnly)), 401, 2006)
      assert.equal(n.offloaded, 4, 'disabled: dropped from the cache, read again')
    } finally {
      await new Promise((r) => server.close(r))
      fs.rmSync(dir, { recursive: true, force: true })
    }
  })
})

/** A keyring whose keys are over their limit for their first `refusals` requests. */
function limited(keyring, refusals) {
  const seen = new Map()
  return {
    seen,
    authenticate(token, request) {
      const who = keyring.authenticate(token, request)
      const n = (seen.get(token) ?? 0) + 1
      seen.set(token, n)
      if (n <= refusals) {
        throw Object.assign(new Error('rate limit of 960 requests exceeded; retry in 1500 ms'), {
          code: 'ERR_RATE_LIMITED',
          status: 429,
          pdCode: 2020,
          retryAfter: 1500,
        })
      }
      return who
    },
  }
}

function selfSignedCert() {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'apikeys-tls-'))
  try {
    execFileSync(
      'openssl',
      ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-days', '1', '-subj', '/CN=127.0.0.1',
        '-addext', 'subjectAltName=IP:127.0.0.1', '-keyout', path.join(dir, 'k.pem'), '-out', path.join(dir, 'c.pem')],
      { stdio: 'ignore' },
    )
    return { key: fs.readFileSync(path.join(dir, 'k.pem')), cert: fs.readFileSync(path.join(dir, 'c.pem')) }
  } catch {
    return null
  } finally {
    fs.rmSync(dir, { recursive: true, force: true })
  }
}

describe('@pagerduty/pdjs against the service', { skip: skipExpress || (pdjs ? false : '@pagerduty/pdjs is not installed') }, () => {
  // pdjs builds Events URLs as https://<server>, so the service runs behind TLS
  // with a throwaway self-signed certificate that the client's agent trusts.
  let keys, limiter, server, port, agent
  const tls = pdjs ? selfSignedCert() : null

  before(async () => {
    if (!tls) return
    keys = makeKeys()
    limiter = limited(keys.keyring, 0)
    server = https.createServer(tls, incidentsApp(limiter))
    port = await listen(server)
    agent = new https.Agent({ ca: tls.cert })
  })
  after(() => server && new Promise((r) => server.close(r)))

  const rest = (token, endpoint, opts = {}) =>
    pdjs.api({ token, server: `127.0.0.1:${port}`, endpoint, agent, retryTimeout: 10, ...opts })

  test('a valid key reads and writes; read-only POST is 403; disabled is 401', { skip: !tls && 'openssl is not available' }, async () => {
    const created = await rest(keys.full, '/incidents', { method: 'POST', data: { incident: { title: 'db down' } } })
    assert.equal(created.response.status, 201)
    const listed = await rest(keys.readOnly, '/incidents')
    assert.equal(listed.response.status, 200)
    assert.ok(listed.data.incidents.some((i) => i.id === created.data.incident.id))
    const forbidden = await rest(keys.readOnly, '/incidents', { method: 'POST', data: { incident: { title: 'x' } } })
    assert.equal(forbidden.response.status, 403)
    assert.equal(forbidden.data.error.code, 2010)
    keys.keyring.disable(admin, keys.readOnlyId)
    try {
      const gone = await rest(keys.readOnly, '/incidents')
      assert.equal(gone.response.status, 401)
      assert.equal(gone.response.headers.get('www-authenticate'), 'Token')
    } finally {
      keys.keyring.enable(admin, keys.readOnlyId)
    }
  })

  test('events: an integration key triggers (202); a REST key is refused (400)', { skip: !tls && 'openssl is not available' }, async () => {
    const ok = await pdjs.event({ server: `127.0.0.1:${port}`, agent, data: { routing_key: keys.integration, event_action: 'trigger', payload: { summary: 'disk full', source: 'db1', severity: 'critical' } } })
    assert.equal(ok.response.status, 202)
    assert.equal(ok.data.status, 'success')
    const bad = await pdjs.event({ server: `127.0.0.1:${port}`, agent, data: { routing_key: keys.full, event_action: 'trigger', payload: { summary: 'x', source: 'y', severity: 'info' } } })
    assert.equal(bad.response.status, 400)
    assert.ok(!JSON.stringify(bad.data).includes(keys.full))
  })

  test('with real limits: ratelimit headers on every answer, then 429 with retry-after after the client gives up', { skip: !tls && 'openssl is not available' }, async () => {
    const kr = new Keyring({ rateLimits: { generalKey: { requests: 2, windowMs: 3_600_000 }, eventsKey: { requests: 1, windowMs: 3_600_000 } } })
    const k = makeKeys(kr)
    const srv = https.createServer(tls, incidentsApp(kr))
    const p = await listen(srv)
    // requestTimeout 0: pdjs arms a do-nothing 30 s timer per request and
    // clears it only on an answer that is not a final 429, which would keep
    // the test process alive for 30 s.
    const call = (opts) => pdjs.api({ token: k.full, server: `127.0.0.1:${p}`, endpoint: '/incidents', agent, retryTimeout: 5, requestTimeout: 0, ...opts })
    try {
      const first = await call()
      assert.equal(first.response.status, 200)
      assert.equal(first.response.headers.get('ratelimit-limit'), '2')
      assert.equal(first.response.headers.get('ratelimit-remaining'), '1')
      assert.equal(first.response.headers.get('ratelimit-reset'), '3600')
      const second = await call()
      assert.equal(second.response.headers.get('ratelimit-remaining'), '0')
      // pdjs retries a 429 three times (after retryTimeout, not retry-after),
      // then hands back the last answer.
      const limited = await call()
      assert.equal(limited.response.status, 429)
      assert.equal(limited.data.error.code, 2020)
      const retry = Number(limited.response.headers.get('retry-after'))
      assert.ok(retry >= 1 && retry <= 3600, String(retry))
      assert.equal(limited.response.headers.get('ratelimit-limit'), '2')
      assert.equal(limited.response.headers.get('ratelimit-remaining'), '0')
      assert.equal(limited.response.headers.get('ratelimit-reset'), String(retry))
      // Events v2 through pdjs.event: one event, then 429.
      const data = { routing_key: k.integration, event_action: 'trigger', payload: { summary: 'disk full', source: 'db1', severity: 'critical' } }
      const ok = await pdjs.event({ server: `127.0.0.1:${p}`, agent, retryTimeout: 5, data })
      assert.equal(ok.response.status, 202)
      assert.equal(ok.response.headers.get('ratelimit-remaining'), '0')
      const over = await pdjs.event({ server: `127.0.0.1:${p}`, agent, retryTimeout: 5, requestTimeout: 0, data })
      assert.equal(over.response.status, 429)
      assert.ok(Number(over.response.headers.get('retry-after')) >= 1)
    } finally {
      await new Promise((r) => srv.close(r))
    }
  })

  test("a 429 is retried by the client's own retry handling", { skip: !tls && 'openssl is not available' }, async () => {
    const lim = limited(keys.keyring, 2)
    const srv = https.createServer(tls, incidentsApp(lim))
    const p = await listen(srv)
    try {
      const r = await pdjs.api({ token: keys.full, server: `127.0.0.1:${p}`, endpoint: '/incidents', agent, retryTimeout: 10 })
      assert.equal(r.response.status, 200)
      assert.equal(lim.seen.get(keys.full), 3) // two 429s, then the answer
    } finally {
      await new Promise((r) => srv.close(r))
    }
  })
})
