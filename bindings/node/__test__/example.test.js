'use strict'
// examples/http_incidents.js runs as its header says, from the root of a
// fresh clone once `npm ci` and `npm run build` ran in bindings/node: express
// comes from bindings/node's node_modules, not from NODE_PATH or a global.
const test = require('node:test')
const assert = require('node:assert/strict')
const path = require('node:path')
const http = require('node:http')
const { spawn } = require('node:child_process')

const root = path.join(__dirname, '..', '..', '..')
let hasExpress = true
try {
  require.resolve('express')
} catch {
  hasExpress = false
}
const required = Boolean(process.env.CI || process.env.APIKEYS_REQUIRE_TEST_DEPS)

function get(url, headers) {
  return new Promise((resolve, reject) => {
    const req = http.get(url, { headers, timeout: 5000 }, (res) => {
      let body = ''
      res.setEncoding('utf8')
      res.on('data', (c) => (body += c))
      res.on('end', () => resolve({ status: res.statusCode, body }))
    })
    req.on('timeout', () => req.destroy(new Error('timeout')))
    req.on('error', reject)
  })
}

test('node examples/http_incidents.js serves, run from the repository root', { skip: !hasExpress && !required && 'express is not installed' }, async () => {
  const env = { ...process.env }
  delete env.NODE_PATH
  const child = spawn(process.execPath, ['examples/http_incidents.js', '0'], { cwd: root, env, stdio: ['ignore', 'pipe', 'pipe'] })
  let out = ''
  let err = ''
  child.stdout.setEncoding('utf8').on('data', (c) => (out += c))
  child.stderr.setEncoding('utf8').on('data', (c) => (err += c))
  const exited = new Promise((r) => child.once('exit', (code) => r(code)))
  try {
    const ready = await Promise.race([
      new Promise((resolve) => {
        const poll = setInterval(() => {
          if (/events: \S+/.test(out)) {
            clearInterval(poll)
            resolve(true)
          }
        }, 20)
        child.once('exit', () => clearInterval(poll))
      }),
      exited.then((code) => assert.fail(`the example exited (${code}): ${err}`)),
      new Promise((_, reject) => setTimeout(() => reject(new Error(`no banner within 15 s: ${out} ${err}`)), 15_000)),
    ])
    assert.ok(ready)
    const base = /incidents API on (http:\/\/127\.0\.0\.1:\d+)/.exec(out)[1]
    const readOnly = /read-only: (\S+)/.exec(out)[1]
    const ok = await get(`${base}/incidents`, { Authorization: `Token token=${readOnly}` })
    assert.equal(ok.status, 200, ok.body)
    assert.deepEqual(JSON.parse(ok.body), { incidents: [], more: false })
    const no = await get(`${base}/incidents`, {})
    assert.equal(no.status, 401)
  } finally {
    child.kill()
    await exited
  }
})
