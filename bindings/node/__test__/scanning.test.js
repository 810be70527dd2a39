'use strict'
// `secretScanning` of apikeys/express: GitHub's secret-scanning receiver
// written in Rust (apikeys_http::SecretScanning) mounted in Express, on a
// loopback port, called with the global fetch. Reports are signed exactly as
// GitHub signs them: ECDSA P-256, SHA-256 over the raw body, the DER
// signature base64 in Github-Public-Key-Signature. Memory and SQLite stores.
const { test, describe, before, after } = require('node:test')
const assert = require('node:assert/strict')
const crypto = require('node:crypto')
const fs = require('node:fs')
const os = require('node:os')
const path = require('node:path')
const http = require('node:http')

const { Keyring } = require('..')
const { secretScanning } = require('../express')

let express = null
try {
  express = require('express')
} catch {}
const skip = express ? false : 'express is not installed'

const PATH = '/github/secret-scanning'
const admin = { account: 'acme', user: 'PADMIN1', role: 'admin' }

function github(identifier) {
  const { privateKey, publicKey } = crypto.generateKeyPairSync('ec', { namedCurve: 'prime256v1' })
  return {
    identifier,
    pem: publicKey.export({ type: 'spki', format: 'pem' }),
    der: publicKey.export({ type: 'spki', format: 'der' }),
    sign: (body) => crypto.sign('sha256', Buffer.from(body), privateKey).toString('base64'),
    headers(body) {
      return {
        'content-type': 'application/json',
        'Github-Public-Key-Identifier': identifier,
        'Github-Public-Key-Signature': this.sign(body),
      }
    },
  }
}

const report = (...tokens) =>
  JSON.stringify(tokens.map((token) => ({ token, type: 'apikeys_general', url: 'https://github.com/octo/repo/blob/main/.env', source: 'content' })))
const tokenHash = (t) => crypto.createHash('sha256').update(t).digest('hex')

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'apikeys-node-scanning-'))

for (const kind of ['memory', 'sqlite']) {
  describe(`secret scanning over ${kind}`, { skip }, () => {
    let keyring, server, url
    const gh = github('gh-key-1')
    const other = github('gh-key-2')
    const stranger = github('gh-key-1')
    const listed = github('gh-listed')
    before(async () => {
      keyring = kind === 'sqlite' ? new Keyring({ store: { sqlite: path.join(dir, 'keys.db') } }) : new Keyring()
      const app = express()
      const githubKeys = JSON.stringify({ public_keys: [{ key_identifier: listed.identifier, key: listed.pem, is_current: true }] })
      app.use(PATH, secretScanning(keyring, { publicKeys: { [gh.identifier]: gh.pem, [other.identifier]: other.der }, githubKeys }))
      app.use('/delete', secretScanning(keyring, { publicKeys: { [gh.identifier]: gh.pem }, onLiveKey: 'delete' }))
      app.use('/small', secretScanning(keyring, { publicKeys: { [gh.identifier]: gh.pem }, maxBodyBytes: 1024 }))
      // Behind express.raw(): the Buffer is handed over as it is.
      app.use('/raw', express.raw({ type: '*/*' }), secretScanning(keyring, { publicKeys: { [gh.identifier]: gh.pem } }))
      server = http.createServer(app)
      await new Promise((r) => server.listen(0, '127.0.0.1', r))
      url = `http://127.0.0.1:${server.address().port}`
    })
    after(() => server.close())

    const post = async (body, headers = gh.headers(body), p = PATH) => {
      const r = await fetch(url + p, { method: 'POST', body, headers })
      const text = await r.text()
      return { status: r.status, headers: r.headers, text, json: () => JSON.parse(text) }
    }

    test('a reported live key is disabled and labelled a true positive', async () => {
      const live = keyring.createGeneralKey(admin, 'leaked')
      const fine = keyring.createGeneralKey(admin, 'fine')
      const r = await post(report(live.secret, 'not-one-of-ours-0123456789abcdef'))
      assert.equal(r.status, 200, r.text)
      assert.deepEqual(r.json(), [
        { token_hash: tokenHash(live.secret), token_type: 'apikeys_general', label: 'true_positive' },
        { token_hash: tokenHash('not-one-of-ours-0123456789abcdef'), token_type: 'apikeys_general', label: 'false_positive' },
      ])
      assert.ok(!r.text.includes(live.secret))
      assert.throws(() => keyring.authenticate(live.secret), { code: 'ERR_UNAUTHORIZED' })
      assert.equal(keyring.get(admin, live.record.id).disabled.by, 'system:leak')
      // The audit record keeps where the report says the key was seen.
      const leak = keyring.auditRecords({ account: 'acme', keyId: live.record.id, actions: ['disable'] }).records
      assert.equal(leak.length, 1)
      assert.equal(leak[0].context.reportUrl, 'https://github.com/octo/repo/blob/main/.env')
      assert.equal(leak[0].context.reportSource, 'content')
      assert.ok(!JSON.stringify(leak[0]).includes(live.secret))
      keyring.authenticate(fine.secret)
    })

    test('the same report twice answers the same and writes nothing more', async () => {
      const live = keyring.createGeneralKey(admin, 'leaked twice')
      const body = report(live.secret)
      const first = await post(body)
      const count = keyring.auditRecords({ account: 'acme', keyId: live.record.id }).records.length
      const second = await post(body)
      assert.deepEqual(second.json(), first.json())
      assert.equal(keyring.auditRecords({ account: 'acme', keyId: live.record.id }).records.length, count)
    })

    test('keys given as DER and in GitHub\'s list are trusted; express.raw() in front works', async () => {
      const a = keyring.createGeneralKey(admin, 'der')
      assert.equal((await post(report(a.secret), other.headers(report(a.secret)))).json()[0].label, 'true_positive')
      const b = keyring.createGeneralKey(admin, 'listed')
      assert.equal((await post(report(b.secret), listed.headers(report(b.secret)))).json()[0].label, 'true_positive')
      const c = keyring.createGeneralKey(admin, 'raw')
      const r = await post(report(c.secret), gh.headers(report(c.secret)), '/raw')
      assert.equal(r.json()[0].label, 'true_positive', r.text)
    })

    test('unsigned or badly signed reports are refused before any key is touched', async () => {
      const live = keyring.createGeneralKey(admin, 'not yet')
      const body = report(live.secret)
      const good = gh.headers(body)
      const without = (name) => Object.fromEntries(Object.entries(good).filter(([k]) => k !== name))
      for (const headers of [
        { 'content-type': 'application/json' },
        without('Github-Public-Key-Signature'),
        without('Github-Public-Key-Identifier'),
        { ...good, 'Github-Public-Key-Identifier': 'unknown-key' },
        { ...good, 'Github-Public-Key-Signature': 'not base64!' },
        { ...good, 'Github-Public-Key-Signature': Buffer.from('not DER').toString('base64') },
        stranger.headers(body),
        { ...good, 'Github-Public-Key-Signature': gh.sign(body + ' ') },
      ]) {
        const r = await post(body, headers)
        assert.equal(r.status, 401, `${JSON.stringify(headers)}: ${r.text}`)
        assert.equal(r.json().error.code, 2006)
        assert.ok(!r.text.includes(live.secret))
      }
      assert.equal((await post(report(live.secret, 'x'), good)).status, 401, 'a changed body')
      keyring.authenticate(live.secret)
      assert.equal(keyring.get(admin, live.record.id).disabled, undefined)
    })

    test('onLiveKey: delete deletes', async () => {
      const live = keyring.createGeneralKey(admin, 'to delete')
      const r = await post(report(live.secret), gh.headers(report(live.secret)), '/delete')
      assert.equal(r.json()[0].label, 'true_positive')
      assert.throws(() => keyring.get(admin, live.record.id), { code: 'ERR_NOT_FOUND' })
    })

    test('bad bodies, methods and sizes', async () => {
      for (const body of ['{', '{}', '"x"', Buffer.from([0xff])]) {
        const r = await post(body)
        assert.equal(r.status, 400, `${body}: ${r.text}`)
        assert.equal(r.json().error.code, 2001)
      }
      const get = await fetch(url + PATH)
      assert.equal(get.status, 405)
      assert.equal(get.headers.get('allow'), 'POST')
      assert.equal((await post(report('x'.repeat(2000)), undefined, '/small')).status, 413)
      const odd = JSON.stringify([{ token: 5 }, { type: 'x' }, { token: 'ghp_' + 'a'.repeat(36) }])
      assert.deepEqual((await post(odd)).json().map((f) => f.label), ['false_positive', 'false_positive', 'false_positive'])
    })
  })
}

describe('secretScanning: arguments', () => {
  test('wrong arguments are errors naming them', () => {
    const kr = new Keyring()
    const gh = github('k')
    assert.throws(() => secretScanning(null, {}), { code: 'ERR_INVALID_ARG_TYPE', message: /keyring/ })
    assert.throws(() => secretScanning(kr, { publicKeys: [['k', gh.pem]] }), { code: 'ERR_INVALID_ARG_TYPE' })
    assert.throws(() => secretScanning(kr, { publicKeys: { k: 5 } }), { code: 'ERR_INVALID_ARG_TYPE' })
    assert.throws(() => secretScanning(kr, { publicKeys: { k: 'not a key' } }), /publicKeys/)
    assert.throws(() => secretScanning(kr, { publicKeys: { k: Buffer.from('not DER') } }), /publicKeys/)
    assert.throws(() => secretScanning(kr, { publicKeys: { 'k\ud800': gh.pem } }), { code: 'ERR_INVALID_INPUT' })
    assert.throws(() => secretScanning(kr, { publicKeys: { k: gh.pem + '\ud800' } }), { code: 'ERR_INVALID_ARG_TYPE' })
    assert.throws(() => secretScanning(kr, { publicKeys: { '': gh.pem } }), /publicKeys/)
    assert.throws(() => secretScanning(kr, { githubKeys: '{' }), /githubKeys/)
    assert.throws(() => secretScanning(kr, { githubKeys: 5 }), { code: 'ERR_INVALID_ARG_TYPE' })
    assert.throws(() => secretScanning(kr, { onLiveKey: 'burn' }), { code: 'ERR_INVALID_INPUT' })
    assert.throws(() => secretScanning(kr, { maxBodyBytes: 0 }), { code: 'ERR_INVALID_ARG_TYPE' })
    assert.throws(() => secretScanning(kr, { maxBodyBytes: 1.5 }), { code: 'ERR_INVALID_ARG_TYPE' })
    assert.throws(() => secretScanning(kr, { colour: 1 }), { code: 'ERR_INVALID_INPUT' })
    assert.equal(typeof secretScanning(kr, { publicKeys: { k: gh.pem } }), 'function')
  })
})
