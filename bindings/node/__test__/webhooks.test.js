'use strict'
// Lifecycle webhooks from Node (docs/webhooks.md): a SQLite store's outbox
// delivered by a WebhookWorker thread to a real local receiver, signatures
// checked with verifyWebhook, dead rows, and bad input refused.
const { test, after } = require('node:test')
const assert = require('node:assert/strict')
const fs = require('node:fs')
const http = require('node:http')
const os = require('node:os')
const path = require('node:path')

const { Keyring, WebhookWorker, generateWebhookSecret, verifyWebhook } = require('..')
const { throwsCode } = require('./helpers')

const admin = { account: 'acme', user: 'PADMIN1', role: 'admin' }
const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'apikeys-node-webhooks-'))
after(() => fs.rmSync(dir, { recursive: true, force: true }))
let n = 0
const dbPath = () => path.join(dir, `k${n++}.db`)

/** A receiver on 127.0.0.1:0 answering `status` (204), recording each request. */
async function receiver(status = 204) {
  const got = []
  const server = http.createServer((req, res) => {
    const chunks = []
    req.on('data', (c) => chunks.push(c))
    req.on('end', () => {
      got.push({
        id: req.headers['webhook-id'],
        ts: req.headers['webhook-timestamp'],
        sig: req.headers['webhook-signature'],
        body: Buffer.concat(chunks),
      })
      res.writeHead(status, { 'content-length': '0' })
      res.end()
    })
  })
  await new Promise((r) => server.listen(0, '127.0.0.1', r))
  return { got, server, url: `http://127.0.0.1:${server.address().port}/hooks` }
}

async function until(fn, what) {
  const deadline = Date.now() + 20000
  while (!fn()) {
    assert.ok(Date.now() < deadline, what)
    await new Promise((r) => setTimeout(r, 20))
  }
}

test('changes reach the receiver signed, from a worker thread', async () => {
  const r = await receiver()
  const secret = generateWebhookSecret()
  assert.match(secret, /^whsec_/)
  const kr = new Keyring({ store: { sqlite: dbPath(), outbox: true } })
  const key = kr.createGeneralKey(admin, 'ci')
  kr.disable(admin, key.record.id)
  const w = new WebhookWorker(kr, [{ name: 'ops', url: r.url, secret }], { pollIntervalMs: 10 })
  w.start()
  assert.equal(w.running, true)
  await until(() => r.got.length >= 2, 'two events')
  w.stop()
  assert.equal(w.running, false)
  r.server.close()
  assert.deepEqual(r.got.map((g) => JSON.parse(g.body).type), ['key.created', 'key.disabled'])
  for (const g of r.got) {
    assert.equal(verifyWebhook(secret, g.id, g.ts, g.sig, g.body), true)
    assert.equal(verifyWebhook(secret, g.id, g.ts, g.sig, Buffer.concat([g.body, Buffer.from(' ')])), false)
    assert.equal(verifyWebhook(generateWebhookSecret(), g.id, g.ts, g.sig, g.body), false)
    assert.ok(!g.body.includes(key.secret))
    assert.equal(JSON.parse(g.body).data.key_id, key.record.id)
  }
  const rows = w.outbox()
  assert.deepEqual(rows.map((x) => x.status), ['delivered', 'delivered'])
  assert.ok(rows[0].at instanceof Date)
  assert.equal(rows[0].eventId, r.got[0].id)
  assert.equal(rows[0].type, 'key.created')
  assert.deepEqual(rows[0].deliveredTo, ['ops'])
})

test('a receiver that keeps failing leaves a dead row with its last error', async () => {
  const r = await receiver(500)
  const kr = new Keyring({ store: { sqlite: dbPath(), outbox: true } })
  kr.createGeneralKey(admin, 'ci')
  const w = new WebhookWorker(kr, [{ name: 'ops', url: r.url, secret: generateWebhookSecret() }], {
    pollIntervalMs: 10,
    maxAttempts: 2,
    backoffBaseMs: 10,
    backoffMaxMs: 20,
  })
  w.start()
  await until(() => w.outbox('dead').length === 1, 'a dead row')
  w.stop()
  r.server.close()
  const [dead] = w.outbox('dead')
  assert.equal(dead.attempts, 2)
  assert.equal(dead.lastError, 'ops: HTTP 500')
  assert.equal(r.got.length, 2)
  assert.equal(new Set(r.got.map((g) => g.id)).size, 1)
})

test('bad endpoints, options and stores are refused naming the field', () => {
  const secret = generateWebhookSecret()
  const kr = new Keyring({ store: { sqlite: dbPath() } })
  const ep = (over) => [{ name: 'ops', url: 'http://127.0.0.1:9/', secret, ...over }]
  for (const url of ['ftp://example.com/', 'example.com/hook', 'http://u:p@h/', '']) {
    const e = throwsCode(() => new WebhookWorker(kr, ep({ url })), 'ERR_INVALID_INPUT')
    assert.equal(e.field, 'url')
  }
  for (const bad of ['', 'nope', 'whsec_', 'whsec_c2hvcnQ=']) {
    const e = throwsCode(() => new WebhookWorker(kr, ep({ secret: bad })), 'ERR_INVALID_INPUT')
    assert.equal(e.field, 'secret')
    if (bad.length > 6) assert.ok(!e.message.includes(bad.slice(6)))
  }
  assert.equal(throwsCode(() => new WebhookWorker(kr, ep({ name: 'a b' })), 'ERR_INVALID_INPUT').field, 'name')
  assert.equal(throwsCode(() => new WebhookWorker(kr, ep({ events: ['key.nope'] })), 'ERR_INVALID_INPUT').field, 'events')
  assert.equal(throwsCode(() => new WebhookWorker(kr, []), 'ERR_INVALID_INPUT').field, 'endpoints')
  assert.equal(throwsCode(() => new WebhookWorker(kr, ep({}), { batch: 0 }), 'ERR_INVALID_INPUT').field, 'batch')
  assert.equal(throwsCode(() => new WebhookWorker(kr, ep({}), { timeoutMs: -1 }), 'ERR_INVALID_INPUT').field, 'timeout_ms')
  assert.equal(
    throwsCode(() => new WebhookWorker(kr, ep({}), { timeoutMs: 2000, leaseMs: 2000 }), 'ERR_INVALID_INPUT').field,
    'lease',
  )
  assert.equal(throwsCode(() => new WebhookWorker(new Keyring(), ep({})), 'ERR_INVALID_INPUT').field, 'keyring')
  const w = new WebhookWorker(kr, ep({}))
  assert.equal(throwsCode(() => w.outbox('lost'), 'ERR_INVALID_INPUT').field, 'status')
  assert.equal(throwsCode(() => verifyWebhook('nope', 'evt_1', '1', 'v1,x', Buffer.from('{}')), 'ERR_INVALID_INPUT').field, 'secret')
  assert.equal(verifyWebhook(secret, 'evt_1', 'not a time', 'v1,x', Buffer.from('{}')), false)
  const s = throwsCode(() => new Keyring({ store: { memory: true, outbox: true } }), 'ERR_INVALID_INPUT')
  assert.equal(s.field, 'options.store.outbox')
  throwsCode(() => new Keyring({ store: { sqlite: dbPath(), outbox: 'yes' } }), 'ERR_INVALID_ARG_TYPE')
})
