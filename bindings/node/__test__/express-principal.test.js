'use strict'
// How the principal reaches the handler (`req.apikey`) through
// require('apikeys/express'), over a real loopback socket: the same value in
// every place a handler can be (the route, a later middleware, a mounted
// sub-application and the application around it), assignable by the
// application, absent from requests the middleware did not pass, and the
// same without Express (node:http). And the Events middleware answering from
// the stream's own listeners: a body read by the middleware, one read by
// express.raw() / express.json() in front, and offThread.
const { test, describe } = require('node:test')
const assert = require('node:assert/strict')
const http = require('node:http')

const { Keyring } = require('..')
const { apikeys } = require('../express')

function optional(name) {
  try {
    return require(name)
  } catch {
    return null
  }
}
const express = optional('express')
const skipExpress = express ? false : 'express is not installed'

const admin = { account: 'acme', user: 'PADMIN1', role: 'admin' }

function keys() {
  const keyring = new Keyring()
  const rest = keyring.createGeneralKey(admin, 'rest')
  const events = keyring.createIntegrationKey(admin, 'PSERVICE1', 'Datadog')
  return { keyring, rest: rest.secret, restId: rest.record.id, events: events.secret, eventsId: events.record.id }
}

function listen(server) {
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve(server.address().port)))
}

function request(port, method, path, headers = {}, body) {
  return new Promise((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port, method, path, headers: { connection: 'close', ...headers } }, (res) => {
      const chunks = []
      res.on('data', (c) => chunks.push(c))
      res.on('end', () => {
        const text = Buffer.concat(chunks).toString('utf8')
        let json
        try {
          json = JSON.parse(text)
        } catch {
          json = undefined
        }
        resolve({ status: res.statusCode, headers: res.headers, text, json })
      })
    })
    req.on('error', reject)
    if (body !== undefined) req.write(body)
    req.end()
  })
}

const token = (key) => ({ authorization: `Token token=${key}` })
const event = (routingKey, pad = 0) =>
  JSON.stringify({ routing_key: routingKey, event_action: 'trigger', payload: { summary: 'x'.repeat(pad), source: 'db1', severity: 'critical' } })

async function serving(app, fn) {
  const server = http.createServer(app)
  const port = await listen(server)
  try {
    await fn(port)
  } finally {
    await new Promise((r) => server.close(r))
  }
}

describe('req.apikey', { skip: skipExpress }, () => {
  test('the handler, a later middleware and the error handler see the principal of the key checked', async () => {
    const k = keys()
    const auth = apikeys(k.keyring)
    const app = express()
    const seen = []
    app.get(
      '/incidents',
      auth.rest('incidents.read'),
      (req, res, next) => {
        seen.push(req.apikey.keyId)
        next()
      },
      (req, res, next) => {
        seen.push(req.apikey.keyId)
        next(new Error('boom'))
      },
    )
    app.use((err, req, res, _next) => res.status(500).json({ keyId: req.apikey?.keyId ?? null, message: err.message }))
    await serving(app, async (port) => {
      const a = await request(port, 'GET', '/incidents', token(k.rest))
      assert.equal(a.status, 500)
      assert.deepEqual(a.json, { keyId: k.restId, message: 'boom' })
      assert.deepEqual(seen, [k.restId, k.restId])
    })
  })

  test('each request sees its own principal, never the one before it', async () => {
    const k = keys()
    const other = k.keyring.createGeneralKey({ account: 'acme', user: 'PADMIN2', role: 'admin' }, 'other')
    const auth = apikeys(k.keyring)
    const app = express()
    app.get('/whoami', auth.rest(), (req, res) => res.json({ keyId: req.apikey.keyId }))
    app.get('/open', (req, res) => res.json({ apikey: req.apikey === undefined ? 'absent' : 'present', own: Object.hasOwn(req, 'apikey') }))
    await serving(app, async (port) => {
      for (let i = 0; i < 20; i++) {
        const [key, id] = i % 2 ? [k.rest, k.restId] : [other.secret, other.record.id]
        const a = await request(port, 'GET', '/whoami', token(key))
        assert.equal(a.status, 200)
        assert.equal(a.json.keyId, id)
        // A route without the middleware, on the same app and connection pool: nothing there.
        assert.deepEqual((await request(port, 'GET', '/open', token(key))).json, { apikey: 'absent', own: false })
      }
    })
  })

  test('a mounted sub-application and the application around it both see it', async () => {
    const k = keys()
    const auth = apikeys(k.keyring)
    const outer = express()
    const inner = express()
    inner.use(auth.rest('incidents.read'))
    inner.get('/incidents', (req, res, next) => {
      res.locals.inner = req.apikey.keyId
      next()
    })
    outer.use('/api', inner)
    // After the sub-application hands the request back (Express restores the outer prototype).
    outer.use('/api', (req, res) => res.json({ inner: res.locals.inner, outer: req.apikey?.keyId ?? null }))
    await serving(outer, async (port) => {
      const a = await request(port, 'GET', '/api/incidents', token(k.rest))
      assert.equal(a.status, 200)
      assert.deepEqual(a.json, { inner: k.restId, outer: k.restId })
      assert.equal((await request(port, 'GET', '/api/incidents')).status, 401)
    })
  })

  test('the application may assign req.apikey, before or after the middleware', async () => {
    const k = keys()
    const auth = apikeys(k.keyring)
    const app = express()
    app.get('/after', auth.rest(), (req, res) => {
      const checked = req.apikey.keyId
      req.apikey = { replaced: true }
      res.json({ checked, now: req.apikey, own: Object.hasOwn(req, 'apikey') })
    })
    app.get(
      '/before',
      (req, res, next) => {
        req.apikey = 'set by the application'
        next()
      },
      auth.rest(),
      (req, res) => res.json({ keyId: req.apikey.keyId }),
    )
    await serving(app, async (port) => {
      assert.deepEqual((await request(port, 'GET', '/after', token(k.rest))).json, { checked: k.restId, now: { replaced: true }, own: true })
      // The middleware's principal replaces what was there, as an assignment did.
      assert.deepEqual((await request(port, 'GET', '/before', token(k.rest))).json, { keyId: k.restId })
    })
  })

  test('two applications with two keyrings in one process keep their own principals', async () => {
    const a = keys()
    const b = keys()
    const appA = express()
    const appB = express()
    appA.get('/k', apikeys(a.keyring).rest(), (req, res) => res.json({ keyId: req.apikey.keyId }))
    appB.get('/k', apikeys(b.keyring).rest(), (req, res) => res.json({ keyId: req.apikey.keyId }))
    await serving(appA, async (pa) => {
      await serving(appB, async (pb) => {
        assert.equal((await request(pa, 'GET', '/k', token(a.rest))).json.keyId, a.restId)
        assert.equal((await request(pb, 'GET', '/k', token(b.rest))).json.keyId, b.restId)
        assert.equal((await request(pa, 'GET', '/k', token(b.rest))).status, 401)
      })
    })
  })

  test('without Express (node:http) it is an own property of the request', async () => {
    const k = keys()
    const mw = apikeys(k.keyring).rest('incidents.read')
    const server = http.createServer((req, res) =>
      mw(req, res, () => {
        res.setHeader('content-type', 'application/json')
        res.end(JSON.stringify({ keyId: req.apikey.keyId, own: Object.hasOwn(req, 'apikey') }))
      }),
    )
    await serving(server.listeners('request')[0], async (port) => {
      const a = await request(port, 'GET', '/incidents', token(k.rest))
      assert.deepEqual(a.json, { keyId: k.restId, own: true })
    })
  })
})

describe('auth.events() answers from the stream', { skip: skipExpress }, () => {
  const handler = (req, res) => res.status(202).json({ keyId: req.apikey.keyId, routingKey: req.body.routing_key === undefined ? null : 'same' })

  test('a body read by the middleware, in one chunk or many, and every refusal', async () => {
    const k = keys()
    const app = express()
    app.post('/v2/enqueue', apikeys(k.keyring, { maxEventBytes: 4096 }).events(), handler)
    await serving(app, async (port) => {
      const ok = await request(port, 'POST', '/v2/enqueue', { 'content-type': 'application/json' }, event(k.events))
      assert.equal(ok.status, 202, ok.text)
      assert.deepEqual(ok.json, { keyId: k.eventsId, routingKey: 'same' })
      // Many chunks: a chunked upload, written in pieces.
      const body = Buffer.from(event(k.events, 3000))
      const parts = await new Promise((resolve, reject) => {
        const req = http.request({ host: '127.0.0.1', port, method: 'POST', path: '/v2/enqueue', headers: { 'transfer-encoding': 'chunked' } }, (res) => {
          const c = []
          res.on('data', (x) => c.push(x))
          res.on('end', () => resolve({ status: res.statusCode, json: JSON.parse(Buffer.concat(c).toString()) }))
        })
        req.on('error', reject)
        for (let i = 0; i < body.length; i += 100) req.write(body.subarray(i, i + 100))
        req.end()
      })
      assert.deepEqual(parts, { status: 202, json: { keyId: k.eventsId, routingKey: 'same' } })
      assert.equal((await request(port, 'POST', '/v2/enqueue', {}, event('R'.repeat(32)))).status, 401)
      assert.equal((await request(port, 'POST', '/v2/enqueue', {}, event(k.rest))).status, 400)
      assert.equal((await request(port, 'POST', '/v2/enqueue', {}, '{"routing_key":')).status, 400)
      assert.equal((await request(port, 'POST', '/v2/enqueue', {}, '[]')).status, 400)
      assert.equal((await request(port, 'POST', '/v2/enqueue', {}, '')).status, 400)
      const big = await request(port, 'POST', '/v2/enqueue', {}, event(k.events, 5000))
      assert.equal(big.status, 400)
      assert.equal(big.headers.connection, 'close')
      // Still serving.
      assert.equal((await request(port, 'POST', '/v2/enqueue', {}, event(k.events))).status, 202)
    })
  })

  test('a body read in front by express.raw() or express.json() is judged at once', async () => {
    const k = keys()
    const auth = apikeys(k.keyring)
    const app = express()
    app.post('/raw', express.raw({ type: () => true }), auth.events(), handler)
    app.post('/json', express.json(), auth.events(), handler)
    await serving(app, async (port) => {
      for (const path of ['/raw', '/json']) {
        const a = await request(port, 'POST', path, { 'content-type': 'application/json' }, event(k.events))
        assert.equal(a.status, 202, `${path}: ${a.text}`)
        assert.deepEqual(a.json, { keyId: k.eventsId, routingKey: 'same' })
        assert.equal((await request(port, 'POST', path, { 'content-type': 'application/json' }, event('R'.repeat(32)))).status, 401, path)
      }
    })
  })

  test('without Express, a next() that throws is answered 500 and the server goes on', async () => {
    const k = keys()
    const mw = apikeys(k.keyring).events()
    let calls = 0
    const server = http.createServer((req, res) =>
      mw(req, res, () => {
        calls++
        if (calls === 1) throw new Error('the handler failed')
        res.statusCode = 202
        res.end(JSON.stringify({ keyId: req.apikey.keyId }))
      }),
    )
    await serving(server.listeners('request')[0], async (port) => {
      const a = await request(port, 'POST', '/v2/enqueue', {}, event(k.events))
      assert.equal(a.status, 500, a.text)
      assert.ok(!a.text.includes('the handler failed'), a.text)
      const b = await request(port, 'POST', '/v2/enqueue', {}, event(k.events))
      assert.equal(b.status, 202, b.text)
      assert.deepEqual(b.json, { keyId: k.eventsId })
    })
  })

  test('offThread: the check on the thread pool lets the request through the same way', async () => {
    const k = keys()
    const stand = {
      authenticate: (...a) => k.keyring.authenticate(...a),
      authenticateAsync: (...a) => k.keyring.authenticateAsync(...a),
    }
    const app = express()
    app.post('/v2/enqueue', apikeys(stand, { offThread: true }).events(), handler)
    await serving(app, async (port) => {
      const a = await request(port, 'POST', '/v2/enqueue', {}, event(k.events))
      assert.equal(a.status, 202, a.text)
      assert.deepEqual(a.json, { keyId: k.eventsId, routingKey: 'same' })
      assert.equal((await request(port, 'POST', '/v2/enqueue', {}, event('R'.repeat(32)))).status, 401)
    })
  })
})
