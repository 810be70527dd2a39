'use strict'
// The Events API body, over a real socket: one parser (the Rust adapter's,
// apikeys_http::routing_key, through eventRoutingKey) gives the verdict for
// every body, so Express answers as axum and the Python middleware do; and
// auth.events() behind a body parser (json, text, raw, urlencoded) answers at
// once instead of waiting for a stream that has ended.
const { test, describe, before, after } = require('node:test')
const assert = require('node:assert/strict')
const net = require('node:net')

const { Keyring, eventRoutingKey } = require('..')
const { apikeys } = require('../express')

let express
try {
  express = require('express')
} catch {
  express = null
}
const required = Boolean(process.env.CI || process.env.APIKEYS_REQUIRE_TEST_DEPS)
const skip = express ? false : required ? false : 'express is not installed'

const manager = { account: 'acme', user: 'PMANAGER1', role: 'manager' }
const admin = { account: 'acme', user: 'PADMIN1', role: 'admin' }

/** Sends raw bytes; the answer, or a rejection after `ms` (the server hung). */
function send(port, head, body = Buffer.alloc(0), ms = 5000) {
  return new Promise((resolve, reject) => {
    const sock = net.connect(port, '127.0.0.1')
    let data = Buffer.alloc(0)
    let settled = false
    const finish = (err) => {
      if (settled) return
      settled = true
      clearTimeout(timer)
      sock.destroy()
      if (err) return reject(err)
      const at = data.indexOf('\r\n\r\n')
      if (at < 0) return reject(new Error(`no answer: ${data.toString('latin1')}`))
      const lines = data.subarray(0, at).toString('latin1').split('\r\n')
      const headers = {}
      for (const l of lines.slice(1)) headers[l.slice(0, l.indexOf(':')).toLowerCase()] = l.slice(l.indexOf(':') + 1).trim()
      resolve({ status: Number(lines[0].split(' ')[1]), headers, body: data.subarray(at + 4).toString('utf8') })
    }
    const timer = setTimeout(() => finish(new Error(`the server did not answer within ${ms} ms`)), ms)
    sock.on('data', (c) => {
      data = Buffer.concat([data, c])
      const at = data.indexOf('\r\n\r\n')
      if (at < 0) return
      const m = /\r\ncontent-length:\s*(\d+)/i.exec(data.subarray(0, at).toString('latin1'))
      if (m && data.length - at - 4 >= Number(m[1])) finish()
    })
    sock.on('end', () => finish())
    sock.on('error', () => finish())
    sock.write(Buffer.concat([Buffer.from(head, 'latin1'), body]))
  })
}

function post(port, body, type = 'application/json', ms) {
  const bytes = Buffer.isBuffer(body) ? body : Buffer.from(body, 'utf8')
  const head = `POST /v2/enqueue HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Type: ${type}\r\nContent-Length: ${bytes.length}\r\n\r\n`
  return send(port, head, bytes, ms)
}

function pagerDuty400(a, message, what) {
  assert.equal(a.status, 400, `${what}: ${a.status} ${a.body}`)
  assert.match(a.headers['content-type'] ?? '', /^application\/json/, what)
  const v = JSON.parse(a.body)
  assert.deepEqual(v, { error: { message, code: 2001 } }, what)
}

async function listen(app) {
  const server = app.listen(0, '127.0.0.1')
  await new Promise((r) => server.once('listening', r))
  return server
}

function makeKeys() {
  const keyring = new Keyring()
  return {
    keyring,
    events: keyring.createIntegrationKey(manager, 'PSERVICE1', 'Datadog').secret,
    rest: keyring.createGeneralKey(admin, 'rest').secret,
  }
}

const event = (key, extra = '') => `{"routing_key":"${key}","event_action":"trigger"${extra},"payload":{"summary":"s","source":"db1","severity":"critical"}}`

const NOT_JSON = 'the body is not valid JSON'
const NOT_OBJECT = 'the body must be a JSON object'
const NOT_STRING = "'routing_key' must be one string"
const MISSING = "the event has no 'routing_key' (the integration or routing key)"

// [label, body (string or Buffer), PagerDuty's message]: bodies the core refuses.
function badBodies(key) {
  return [
    ['NaN', event(key, ',"x":NaN'), NOT_JSON],
    ['Infinity', event(key, ',"x":Infinity'), NOT_JSON],
    ['-Infinity', event(key, ',"x":-Infinity'), NOT_JSON],
    ['a UTF-16LE body with its BOM', Buffer.concat([Buffer.from([0xff, 0xfe]), Buffer.from(event(key), 'utf16le')]), NOT_OBJECT],
    ['a UTF-16BE body with its BOM', Buffer.concat([Buffer.from([0xfe, 0xff]), Buffer.from(event(key), 'utf16le').swap16()]), NOT_OBJECT],
    ['a UTF-16LE body without a BOM', Buffer.from(event(key), 'utf16le'), NOT_JSON],
    ['a UTF-8 BOM', Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), Buffer.from(event(key))]), NOT_OBJECT],
    ['invalid UTF-8 in routing_key', Buffer.from(`{"routing_key":"${key.slice(0, 31)}\xff"}`, 'latin1'), NOT_JSON],
    ['invalid UTF-8 in a field name', Buffer.concat([Buffer.from(`{"routing_key":"${key}","`), Buffer.from([0xff]), Buffer.from('":1}')]), NOT_JSON],
    ['invalid UTF-8 outside strings', Buffer.concat([Buffer.from(`{"routing_key":"${key}","x":1`), Buffer.from([0xff]), Buffer.from('}')]), NOT_JSON],
    ['a lone surrogate escape in routing_key', `{"routing_key":"${key.slice(0, 30)}\\ud800"}`, NOT_JSON],
    ['a JSON string', JSON.stringify(event(key)), NOT_OBJECT],
    ['a JSON array', `[${event(key)}]`, NOT_OBJECT],
    ['a JSON number', '42', NOT_OBJECT],
    ['null', 'null', NOT_OBJECT],
    ['empty', '', NOT_OBJECT],
    ['routing_key a number', '{"routing_key":42}', NOT_STRING],
    ['routing_key an object', `{"routing_key":{"k":"${key}"}}`, NOT_STRING],
    ['routing_key an array', `{"routing_key":["${key}"]}`, NOT_STRING],
    ['routing_key true', '{"routing_key":true}', NOT_STRING],
    ['duplicate routing_key', `{"routing_key":"0123456789abcdef0123456789abcdef","routing_key":"${key}"}`, NOT_STRING],
    ['duplicate routing_key, same value', `{"routing_key":"${key}","routing_key":"${key}"}`, NOT_STRING],
    ['routing_key null', '{"routing_key":null}', MISSING],
    ['no routing_key', '{"event_action":"trigger"}', MISSING],
    ['trailing garbage', `${event(key)} x`, NOT_JSON],
    ['a trailing comma', `{"routing_key":"${key}",}`, NOT_JSON],
    ['two objects', `${event(key)}${event(key)}`, NOT_JSON],
  ]
}

// Bodies on which JavaScript's JSON.parse and the core could disagree. The
// answer must be the core's, whatever it is: today it takes the first four
// (serde_json skips the fields other than routing_key without bounding
// their depth, their numbers' range or checking the UTF-8 inside their
// strings), so Express, axum and the Python middleware all answer 202; a
// change of the core's rule changes all of them at once.
function edgeBodies(key) {
  const deep = 100_000
  return [
    [`nested ${deep} deep`, `{"routing_key":"${key}","a":${'['.repeat(deep)}${']'.repeat(deep)}}`],
    // Five bytes a level: 80,000 levels stay under the 512 KiB limit.
    ['objects nested 80000 deep, routing_key last', `{"a":${'{"b":'.repeat(80_000)}1${'}'.repeat(80_000)},"routing_key":"${key}"}`],
    ['1e999', event(key, ',"x":1e999')],
    ['invalid UTF-8 in another string', Buffer.concat([Buffer.from(`{"routing_key":"${key}","x":"`), Buffer.from([0xc3, 0x28, 0xff, 0xfe]), Buffer.from('"}')])],
    ['a huge integer', event(key, `,"x":${'9'.repeat(5000)}`)],
    ['-1e999', event(key, ',"x":-1e999')],
    ['a lone surrogate escape elsewhere', event(key, ',"x":"\\udfff"')],
    ['__proto__', `{"__proto__":{"routing_key":"x"},"routing_key":"${key}"}`],
  ]
}

const bytesOf = (body) => (Buffer.isBuffer(body) ? body : Buffer.from(body))

test('eventRoutingKey gives the Rust adapter verdict: the key, or PagerDuty 400', () => {
  const key = '0123456789abcdef0123456789abcdef'
  assert.equal(eventRoutingKey(Buffer.from(event(key))), key)
  assert.equal(eventRoutingKey(new Uint8Array(Buffer.from(` \n${event(key)}\n`))), key)
  assert.equal(eventRoutingKey(Buffer.from('{"routing_key":"\\u0030abc"}')), '0abc')
  for (const [label, body, message] of badBodies(key)) {
    const v = eventRoutingKey(bytesOf(body))
    assert.equal(typeof v, 'object', label)
    const { headers, body: answer, ...facts } = v
    const kind = message === MISSING ? 'missing_routing_key' : 'invalid_body'
    assert.deepEqual(facts, { status: 400, pdCode: 2001, kind, message, reason: message }, label)
    // The answer to send, as PagerDuty writes it (the message first, no blanks).
    assert.equal(answer, JSON.stringify({ error: { message, code: 2001 } }), label)
    const json = ['content-type', 'application/json; charset=utf-8']
    assert.deepEqual(headers, [json, ['content-length', String(Buffer.byteLength(answer))]], label)
  }
  for (const [label, body] of edgeBodies(key)) {
    const v = eventRoutingKey(bytesOf(body))
    assert.ok(v === key || (v.status === 400 && v.pdCode === 2001), label)
  }
  assert.throws(() => eventRoutingKey('{"routing_key":"x"}'))
  assert.throws(() => eventRoutingKey(new Uint16Array(4)))
})

describe('Events bodies over a socket: one verdict, the core one', { skip }, () => {
  let keys, server, port
  before(async () => {
    keys = makeKeys()
    const app = express()
    const auth = apikeys(keys.keyring)
    app.post('/v2/enqueue', auth.events(), (req, res) => res.status(202).json({ status: 'success', key: req.body.routing_key === keys.events, target: req.apikey.target }))
    server = await listen(app)
    port = server.address().port
  })
  after(() => new Promise((r) => server.close(r)))

  const stillServing = async () => {
    const a = await post(port, event(keys.events))
    assert.equal(a.status, 202, a.body)
    assert.deepEqual(JSON.parse(a.body), { status: 'success', key: true, target: 'PSERVICE1' })
  }

  test('every malformed body is PagerDuty 400, and the server goes on serving', async () => {
    await stillServing()
    for (const [label, body, message] of badBodies(keys.events)) {
      pagerDuty400(await post(port, body), message, label)
      await stillServing()
    }
  })

  test('where JSON.parse and the core could disagree, the answer is the core one', async () => {
    for (const [label, body] of edgeBodies(keys.events)) {
      const verdict = eventRoutingKey(bytesOf(body))
      const a = await post(port, body)
      if (typeof verdict === 'string') {
        assert.equal(a.status, 202, `${label}: ${a.body.slice(0, 200)}`)
        assert.deepEqual(JSON.parse(a.body), { status: 'success', key: true, target: 'PSERVICE1' }, label)
      } else {
        pagerDuty400(a, verdict.message, label)
      }
      await stillServing()
    }
  })
})

// Parsers mounted before auth.events(), as an application might.
const PARSERS = {
  json: () => express.json(),
  text: () => express.text({ type: '*/*' }),
  raw: () => express.raw({ type: '*/*' }),
  urlencoded: () => express.urlencoded({ extended: false }),
}

describe('auth.events() behind a body parser answers at once', { skip }, () => {
  const servers = []
  after(() => Promise.all(servers.map((s) => new Promise((r) => s.close(r)))))

  async function serve(parser) {
    const keys = makeKeys()
    const app = express()
    if (parser) app.use(parser)
    app.post('/v2/enqueue', apikeys(keys.keyring).events(), (req, res) => {
      res.status(202).json({ routing_key_matches: req.body?.routing_key === keys.events, target: req.apikey.target })
    })
    const server = await listen(app)
    servers.push(server)
    return { keys, port: server.address().port }
  }

  for (const [name, parser] of Object.entries(PARSERS)) {
    test(`behind express.${name}()`, async () => {
      const { keys, port } = await serve(parser())
      const valid = await post(port, event(keys.events))
      assert.equal(valid.status, 202, `${name}: ${valid.body}`)
      assert.deepEqual(JSON.parse(valid.body), { routing_key_matches: true, target: 'PSERVICE1' })
      // A REST key in the body: the core's refusal (400 on the Events API, 2006), at once.
      const rest = await post(port, event(keys.rest))
      assert.equal(rest.status, 400, rest.body)
      assert.equal(JSON.parse(rest.body).error.code, 2006)
      // routing_key not a string: the same 400 whichever parser read the body.
      pagerDuty400(await post(port, '{"routing_key":42}'), NOT_STRING, `${name} non-string`)
      // A form body is no Events body (behind express.urlencoded() too).
      pagerDuty400(await post(port, `routing_key=${keys.events}`, 'application/x-www-form-urlencoded'), NOT_OBJECT, `${name} form`)
    })
  }

  test('behind express.raw() and express.text(), the bytes still get the core verdict', async () => {
    for (const parser of [PARSERS.raw(), PARSERS.text()]) {
      const { keys, port } = await serve(parser)
      pagerDuty400(await post(port, `{"routing_key":"x","routing_key":"${keys.events}"}`), NOT_STRING, 'duplicate')
      pagerDuty400(await post(port, event(keys.events, ',"x":NaN')), NOT_JSON, 'NaN')
      pagerDuty400(await post(port, `[${event(keys.events)}]`), NOT_OBJECT, 'array')
    }
  })

  test('a string body with a lone surrogate (left by some middleware) is 400, never U+FFFD', async () => {
    const keys = makeKeys()
    const app = express()
    app.use((req, res, next) => {
      req.resume()
      req.on('end', () => {
        req.body = `{"routing_key":"${keys.events}","x":"\ud800"}`
        next()
      })
    })
    app.post('/v2/enqueue', apikeys(keys.keyring).events(), (req, res) => res.sendStatus(202))
    const server = await listen(app)
    servers.push(server)
    pagerDuty400(await post(server.address().port, '{}'), NOT_JSON, 'lone surrogate')
  })

  test('behind a non-strict express.json(), a bare number, true or null is 400', async () => {
    const { keys, port } = await serve(express.json({ strict: false }))
    for (const body of ['42', 'true', 'null', '"text"', `["${keys.events}"]`]) {
      pagerDuty400(await post(port, body), NOT_OBJECT, body)
    }
    assert.equal((await post(port, event(keys.events))).status, 202)
  })

  test('behind express.raw(), a body over maxEventBytes is refused', async () => {
    const keys = makeKeys()
    const app = express()
    app.use(express.raw({ type: '*/*' }))
    app.post('/v2/enqueue', apikeys(keys.keyring, { maxEventBytes: 100 }).events(), (req, res) => res.sendStatus(202))
    const server = await listen(app)
    servers.push(server)
    pagerDuty400(await post(server.address().port, event(keys.events)), 'the request body is larger than the limit of 100 bytes', 'too large')
  })

  test('a body read by a middleware that left no req.body is a 500 at once, with a warning', async () => {
    const warnings = []
    const onWarning = (w) => warnings.push(w)
    process.on('warning', onWarning)
    try {
      const keys = makeKeys()
      const app = express()
      app.use((req, res, next) => {
        req.resume()
        req.on('end', () => next())
      })
      app.post('/v2/enqueue', apikeys(keys.keyring).events(), (req, res) => res.sendStatus(202))
      const server = await listen(app)
      servers.push(server)
      const a = await post(server.address().port, event(keys.events))
      assert.equal(a.status, 500, a.body)
      assert.deepEqual(JSON.parse(a.body), { error: { message: 'an internal error occurred', code: 2000 } })
      assert.ok(!a.body.includes(keys.events))
      await new Promise((r) => setImmediate(r))
      assert.ok(warnings.some((w) => w.code === 'APIKEYS_EVENTS_BODY_READ'), 'a process warning says why')
    } finally {
      process.off('warning', onWarning)
    }
  })
})
