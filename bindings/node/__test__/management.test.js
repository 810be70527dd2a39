'use strict'
// `management` of apikeys/express: the management API and page written in
// Rust (apikeys_http::Management) mounted in Express, listening on a loopback
// port, called with the global fetch. On the in-memory store (answered on the
// JavaScript thread) and on SQLite (answered on libuv's thread pool).
const { test, describe, before, after } = require('node:test')
const assert = require('node:assert/strict')
const fs = require('node:fs')
const os = require('node:os')
const path = require('node:path')
const http = require('node:http')
const net = require('node:net')

const { Keyring } = require('..')
const { management } = require('../express')

let express = null
try {
  express = require('express')
} catch {}
const skip = express ? false : 'express is not installed'

const BASE = '/admin/keys'
const INTERNAL = { error: { message: 'an internal error occurred', code: 2000 } }
const ADMIN = 'acme/PADMIN1/admin'

// The test host's "login": an `x-user: account/user/role` header.
function who(req) {
  const v = req.headers['x-user']
  if (!v) return null
  const [account, user, role] = v.split('/')
  return { account, user, role }
}

function listen(server) {
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve(server.address().port)))
}

async function host(keyring) {
  const errors = []
  const onError = (e) => errors.push(e)
  const app = express()
  app.use(BASE, management(keyring, { actor: who, onError }))
  app.use('/async', management(keyring, { actor: async (req) => who(req), onError }))
  app.use('/throws', management(keyring, { actor: () => { throw new Error('session store down: secret-detail-xyz') }, onError }))
  app.use('/rejects', management(keyring, { actor: () => Promise.reject(new Error('secret-detail-xyz')), onError }))
  app.use('/wrong', management(keyring, { actor: () => 'acme/PADMIN1/admin', onError }))
  app.use('/surrogate', management(keyring, { actor: () => ({ account: 'acme\ud800', user: 'PADMIN1', role: 'admin' }), onError }))
  app.use('/bad-role', management(keyring, { actor: () => ({ account: 'acme', user: 'PADMIN1', role: 'emperor' }), onError }))
  app.use('/api-only', management(keyring, { actor: who, page: false, onError }))
  // After express.json(): the parsed object is handed over as JSON.
  app.use('/parsed', express.json(), management(keyring, { actor: who, onError }))
  const server = http.createServer(app)
  const port = await listen(server)
  const url = `http://127.0.0.1:${port}`
  async function call(method, p, { as = ADMIN, body, headers = {}, base = BASE } = {}) {
    const h = { ...headers }
    if (as !== null) h['x-user'] = as
    let payload
    if (body !== undefined) {
      payload = typeof body === 'string' || body instanceof Uint8Array ? body : JSON.stringify(body)
      h['content-type'] ??= 'application/json'
    } else if (method === 'POST' || method === 'DELETE') {
      h['content-type'] ??= 'application/json'
    }
    const r = await fetch(url + base + p, { method, headers: h, body: payload })
    const text = await r.text()
    return { status: r.status, headers: r.headers, text, json: () => JSON.parse(text) }
  }
  return { keyring, server, url, port, call, errors }
}

function pdError(r, status, code) {
  assert.equal(r.status, status, r.text)
  assert.match(r.headers.get('content-type'), /^application\/json/)
  const body = r.json()
  assert.deepEqual(Object.keys(body), ['error'])
  assert.deepEqual(Object.keys(body.error).sort(), ['code', 'message'])
  assert.equal(body.error.code, code, r.text)
  assert.ok(!r.text.includes('    at '), 'no stack')
  return body.error.message
}

async function createGeneral(h, { description = 'CI bot', readOnly = false, as = ADMIN } = {}) {
  const r = await h.call('POST', '/api_keys', { as, body: { api_key: { type: 'general', description, read_only: readOnly } } })
  assert.equal(r.status, 201, r.text)
  return r.json().api_key
}

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'apikeys-node-management-'))

for (const kind of ['memory', 'sqlite']) {
  describe(`management over ${kind}`, { skip }, () => {
    let h
    before(async () => {
      const keyring = kind === 'sqlite' ? new Keyring({ store: { sqlite: path.join(dir, 'keys.db') } }) : new Keyring()
      assert.equal(keyring.mayBlock, kind === 'sqlite')
      h = await host(keyring)
    })
    after(() => h.server.close())

    test('create shows the key once and it is never cached', async () => {
      const r = await h.call('POST', '/api_keys', { body: { api_key: { type: 'general', description: 'once', read_only: true } } })
      assert.equal(r.status, 201, r.text)
      assert.equal(r.headers.get('cache-control'), 'no-store')
      const made = r.json().api_key
      assert.equal(made.read_only, true)
      const p = h.keyring.authenticate(made.token)
      assert.equal(p.account, 'acme')
      for (const p2 of ['/api_keys', `/api_keys/${made.id}`, '/audit/records']) {
        const again = await h.call('GET', p2)
        assert.equal(again.status, 200, again.text)
        assert.equal(again.headers.get('cache-control'), 'no-store')
        assert.ok(!again.text.includes(made.token), p2)
      }
      const listed = (await h.call('GET', '/api_keys?limit=100')).json().api_keys
      assert.ok(listed.some((k) => k.id === made.id))
      assert.ok(listed.every((k) => !('token' in k)))
    })

    test('get, disable, enable, rotate, end the rotation, delete, and their audit records', async () => {
      const made = await createGeneral(h)
      const id = made.id
      assert.equal((await h.call('GET', `/api_keys/${id}`)).json().api_key.id, id)
      const off = await h.call('POST', `/api_keys/${id}/disable`)
      assert.equal(off.status, 200, off.text)
      assert.equal(off.json().api_key.disabled, true)
      assert.equal(off.json().api_key.disabled_by, 'PADMIN1')
      assert.throws(() => h.keyring.authenticate(made.token), { code: 'ERR_UNAUTHORIZED' })
      const on = await h.call('POST', `/api_keys/${id}/enable`)
      assert.equal(on.json().api_key.disabled, false)
      h.keyring.authenticate(made.token)
      const rot = await h.call('POST', `/api_keys/${id}/rotate`, { body: { rotation: { grace_seconds: 3600 } } })
      assert.equal(rot.status, 201, rot.text)
      assert.equal(rot.headers.get('cache-control'), 'no-store')
      const fresh = rot.json().api_key
      assert.equal(rot.json().rotated.id, id)
      h.keyring.authenticate(made.token)
      h.keyring.authenticate(fresh.token)
      assert.equal((await h.call('POST', `/api_keys/${id}/end_rotation`)).status, 200)
      assert.throws(() => h.keyring.authenticate(made.token), { code: 'ERR_UNAUTHORIZED' })
      assert.equal((await h.call('DELETE', `/api_keys/${fresh.id}`)).status, 204)
      pdError(await h.call('GET', `/api_keys/${fresh.id}`), 404, 2100)
      const records = await h.call('GET', '/audit/records')
      assert.equal(records.status, 200, records.text)
      const actions = records.json().records.map((r) => r.action)
      for (const a of ['create', 'disable', 'enable', 'rotate', 'delete']) {
        assert.ok(actions.some((x) => x.includes(a)), `${a} in ${actions}`)
      }
      assert.ok(!records.text.includes(made.token) && !records.text.includes(fresh.token))
    })

    test('the page is served with its policy, under the mount point Express gives', async () => {
      const r = await h.call('GET', '/')
      assert.equal(r.status, 200, r.text)
      assert.match(r.headers.get('content-type'), /^text\/html/)
      assert.match(r.headers.get('content-security-policy'), /default-src 'none'/)
      assert.ok(r.text.includes(`${BASE}/assets/page.js`))
      const js = await h.call('GET', '/assets/page.js')
      assert.equal(js.status, 200)
      assert.ok((await h.call('GET', '/', { base: '/async' })).text.includes('/async/assets/page.js'))
      assert.equal((await h.call('GET', '/', { base: '/api-only' })).status, 404)
      assert.equal((await h.call('GET', '/api_keys', { base: '/api-only' })).status, 200)
    })

    test('401 without an actor, 403 for a role that may not act, 404 for another account', async () => {
      pdError(await h.call('GET', '/api_keys', { as: null }), 401, 2006)
      const made = await createGeneral(h)
      pdError(await h.call('POST', '/api_keys', { as: 'acme/PRESP1/responder', body: { api_key: { type: 'general', description: 'x' } } }), 403, 2010)
      pdError(await h.call('POST', `/api_keys/${made.id}/disable`, { as: 'acme/PRESP1/responder' }), 403, 2010)
      for (const [m, p] of [['GET', ''], ['POST', '/disable'], ['DELETE', '']]) {
        pdError(await h.call(m, `/api_keys/${made.id}${p}`, { as: 'globex/PADMIN9/admin' }), 404, 2100)
      }
      h.keyring.authenticate(made.token)
      const a = await h.call('GET', `/api_keys/${made.id}`, { base: '/async' })
      assert.equal(a.status, 200, a.text)
    })

    test('bad JSON, wrong types, unknown fields: 400', async () => {
      const before = (await h.call('GET', '/api_keys?limit=100')).json().total
      for (const body of [
        '{',
        '',
        '[]',
        '"x"',
        new Uint8Array([0xff, 0xfe]),
        { api_key: { type: 'general', description: 5 } },
        { api_key: { type: 'general', description: 'x', read_only: 'yes' } },
        { api_key: { type: 'nope', description: 'x' } },
        { api_key: { type: 'general', description: 'x', colour: 'red' } },
      ]) {
        pdError(await h.call('POST', '/api_keys', { body }), 400, 2001)
      }
      assert.equal((await h.call('GET', '/api_keys?limit=100')).json().total, before)
    })

    test('a body over 64 KiB is 413, read no further, and the server keeps serving', async () => {
      pdError(await h.call('POST', '/api_keys', { body: { api_key: { type: 'general', description: 'x'.repeat(70000) } } }), 413, 2001)
      // 8 MiB offered on a raw socket: answered 413 once 64 KiB + 1 are in, the connection closed.
      const answer = await new Promise((resolve, reject) => {
        const s = net.connect(h.port, '127.0.0.1')
        let data = ''
        s.on('data', (c) => (data += c.toString('latin1')))
        s.on('close', () => resolve(data))
        s.on('error', () => resolve(data))
        s.write(`POST ${BASE}/api_keys HTTP/1.1\r\nHost: x\r\nx-user: ${ADMIN}\r\ncontent-type: application/json\r\ncontent-length: ${8 << 20}\r\n\r\n`)
        const chunk = Buffer.alloc(65536, 0x20)
        let sent = 0
        const pump = () => {
          while (sent < 8 << 20) {
            sent += chunk.length
            if (!s.write(chunk)) return s.once('drain', pump)
          }
        }
        pump()
        setTimeout(() => reject(new Error('no answer')), 20000).unref()
      })
      assert.match(answer, /^HTTP\/1\.1 413/)
      assert.match(answer, /connection: close/i)
      await createGeneral(h)
    })

    test('cross-site calls that change keys are refused', async () => {
      const made = await createGeneral(h)
      for (const headers of [
        { origin: 'https://evil.example' },
        { 'sec-fetch-site': 'cross-site' },
        { 'content-type': 'text/plain' },
        { 'content-type': 'application/x-www-form-urlencoded' },
      ]) {
        const r = await h.call('POST', `/api_keys/${made.id}/disable`, { headers })
        assert.ok([403, 415].includes(r.status), `${JSON.stringify(headers)}: ${r.status} ${r.text}`)
      }
      h.keyring.authenticate(made.token)
      const ok = await h.call('POST', `/api_keys/${made.id}/disable`, { headers: { origin: h.url, 'sec-fetch-site': 'same-origin' } })
      assert.equal(ok.status, 200, ok.text)
    })

    test('an actor function that throws, rejects or answers garbage: 500 that says nothing, server survives', async () => {
      h.errors.length = 0
      for (const base of ['/throws', '/rejects', '/wrong', '/surrogate', '/bad-role']) {
        const r = await h.call('GET', '/api_keys', { base })
        assert.equal(r.status, 500, `${base}: ${r.text}`)
        assert.deepEqual(r.json(), INTERNAL)
        assert.ok(!r.text.includes('secret-detail'))
      }
      assert.equal(h.errors.length, 4, 'onError heard each failure but the bad role (refused by the core: answered 500 too)')
      await createGeneral(h)
    })

    test('behind express.json() the parsed body is handed over', async () => {
      const r = await h.call('POST', '/api_keys', { base: '/parsed', body: { api_key: { type: 'general', description: 'parsed' } } })
      assert.equal(r.status, 201, r.text)
    })

    test('concurrent creates each get their own key', async () => {
      const made = await Promise.all(Array.from({ length: 16 }, (_, i) => createGeneral(h, { description: `c${i}` })))
      assert.equal(new Set(made.map((k) => k.token)).size, 16)
    })

    test('a stale caller is decided on its stored standing (demoted, then removed)', async () => {
      const made = await createGeneral(h, { as: 'acme/PSTALE1/admin' })
      h.keyring.setUserRole('acme', 'PSTALE1', 'observer')
      pdError(await h.call('POST', `/api_keys/${made.id}/disable`, { as: 'acme/PSTALE1/admin' }), 403, 2010)
      h.keyring.removeUser('acme', 'PSTALE1')
      pdError(await h.call('GET', '/api_keys', { as: 'acme/PSTALE1/admin' }), 403, 2010)
      h.keyring.authenticate(made.token)
      h.keyring.setUserRole('acme', 'PSTALE1', 'admin')
      assert.equal((await h.call('POST', `/api_keys/${made.id}/disable`, { as: 'acme/PSTALE1/admin' })).status, 200)
    })

    test('unknown paths and methods', async () => {
      pdError(await h.call('GET', '/nope'), 404, 2100)
      const r = await h.call('PUT', '/api_keys')
      assert.equal(r.status, 405)
      assert.match(r.headers.get('allow'), /POST/)
    })
  })
}

describe('management: arguments', () => {
  test('wrong arguments are TypeErrors naming them', () => {
    const kr = new Keyring()
    assert.throws(() => management({}, { actor: who }), { code: 'ERR_INVALID_ARG_TYPE', message: /keyring/ })
    assert.throws(() => management(kr), { code: 'ERR_INVALID_ARG_TYPE', message: /options\.actor/ })
    assert.throws(() => management(kr, { actor: 'admin' }), { code: 'ERR_INVALID_ARG_TYPE', message: /options\.actor/ })
    assert.throws(() => management(kr, { actor: who, page: 'yes' }), { code: 'ERR_INVALID_ARG_TYPE', message: /options\.page/ })
    assert.throws(() => management(kr, { actor: who, mountPath: 5 }), { code: 'ERR_INVALID_ARG_TYPE' })
    assert.throws(() => management(kr, { actor: who, mountPath: '/x\ud800' }), { code: 'ERR_INVALID_ARG_TYPE' })
    assert.throws(() => management(kr, { actor: who, mountPath: 'no slash' }), { code: 'ERR_INVALID_INPUT' })
    assert.throws(() => management(kr, { actor: who, colour: 1 }), { code: 'ERR_INVALID_INPUT', message: /colour/ })
    assert.throws(() => management(kr, { actor: who, onError: 1 }), { code: 'ERR_INVALID_ARG_TYPE' })
    assert.equal(typeof management(kr, { actor: who, mountPath: '/admin/keys/' }), 'function')
  })

  test('the addon takes only what it can convert: odd heads are a 400, never a crash', () => {
    const kr = new Keyring()
    const ep = Keyring._management(kr, null, null)
    const admin = { account: 'acme', user: 'PADMIN1', role: 'admin' }
    const handle = (method, target, raw, actor = admin) => Keyring._endpointHandle(ep, method, target, raw, Buffer.alloc(0), null, null, null, actor)
    assert.equal(handle('GET', '/api_keys', [])[0], 200)
    for (const [m, t, raw] of [
      ['G T', '/api_keys', []],
      ['GET', '/api_keys', ['bad name', 'v']],
      ['GET', '/api_keys', ['x', 'a\r\nb']],
      ['GET\ud800', '/api_keys', []],
      ['GET', '/api_keys\ud800', ['x-\udfff', 'v\ud800']],
      ['GET', '/api_keys', ['x', '\u20ac']],
    ]) {
      const [status, , body] = handle(m, t, raw)
      assert.ok([200, 400, 404].includes(status), `${m} ${t}: ${status}`)
      if (status !== 200) assert.ok([2001, 2100].includes(JSON.parse(body).error.code))
    }
    // An odd number of raw header strings: the last is dropped.
    assert.equal(handle('GET', '/api_keys', ['x'])[0], 200)
    // Not an endpoint, wrong types: thrown by the addon, no crash.
    assert.throws(() => Keyring._endpointHandle({}, 'GET', '/', [], Buffer.alloc(0), null, null, null, null))
    assert.throws(() => Keyring._endpointHandle(ep, 5, '/', [], Buffer.alloc(0), null, null, null, null))
    assert.throws(() => Keyring._endpointHandle(ep, 'GET', '/', [5], Buffer.alloc(0), null, null, null, null))
    assert.throws(() => Keyring._endpointHandle(ep, 'GET', '/', [], 'body', null, null, null, null))
    assert.throws(() => Keyring._endpointHandle(ep, 'GET', '/', [], Buffer.alloc(0), null, null, null, { account: 1 }))
    // A role the core does not know: the host's fault, a 500.
    assert.equal(handle('GET', '/api_keys', [], { account: 'acme', user: 'u', role: 'emperor' })[0], 500)
  })
})

describe('management: a client that goes away', { skip }, () => {
  test('mid-body: nothing reported, the server keeps serving', async () => {
    const keyring = new Keyring()
    const errors = []
    const app = express()
    app.use(BASE, management(keyring, { actor: who, onError: (e) => errors.push(e) }))
    const server = http.createServer(app)
    const port = await listen(server)
    await new Promise((resolve) => {
      const s = net.connect(port, '127.0.0.1', () => {
        s.write(`POST ${BASE}/api_keys HTTP/1.1\r\nHost: x\r\nx-user: ${ADMIN}\r\ncontent-type: application/json\r\ncontent-length: 1000\r\n\r\n{"api_key":`)
        setTimeout(() => s.destroy(), 50)
      })
      s.on('close', resolve)
    })
    await new Promise((r) => setTimeout(r, 100))
    assert.deepEqual(errors, [])
    const r = await fetch(`http://127.0.0.1:${port}${BASE}/api_keys`, { headers: { 'x-user': ADMIN } })
    assert.equal(r.status, 200)
    server.close()
  })
})
