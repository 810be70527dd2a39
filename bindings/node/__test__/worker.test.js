'use strict'
// The addon loads and works in worker threads too (one Keyring per thread),
// and a keyring's Promise calls from the main thread run while workers do.
const test = require('node:test')
const assert = require('node:assert/strict')
const path = require('node:path')
const { Worker } = require('node:worker_threads')
const { Keyring } = require('..')

const WORKER = `
const { parentPort, workerData } = require('node:worker_threads')
const { Keyring } = require(workerData.pkg)
const kr = new Keyring()
const admin = { account: 'acme', user: 'PADMIN1', role: 'admin' }
const k = kr.createGeneralKey(admin, 'worker ' + workerData.n, { readOnly: true })
let ok = 0
for (let i = 0; i < 2000; i++) if (kr.authenticate(k.secret).keyId === k.record.id) ok++
let code
try { kr.authenticate(k.secret, { method: 'POST' }) } catch (e) { code = e.code }
parentPort.postMessage({ ok, code })
`

test('every worker thread gets a working keyring of its own', async () => {
  const pkg = path.join(__dirname, '..')
  const runs = [0, 1, 2].map(
    (n) =>
      new Promise((resolve, reject) => {
        const w = new Worker(WORKER, { eval: true, workerData: { pkg, n } })
        w.once('message', resolve)
        w.once('error', reject)
      }),
  )
  const kr = new Keyring()
  const k = await kr.createGeneralKeyAsync({ account: 'acme', user: 'P1', role: 'owner' }, 'main')
  const principals = await Promise.all(Array.from({ length: 50 }, () => kr.authenticateAsync(k.secret)))
  assert.ok(principals.every((p) => p === principals[0] && p.keyId === k.record.id))
  for (const r of await Promise.all(runs)) assert.deepEqual(r, { ok: 2000, code: 'ERR_FORBIDDEN' })
})
