'use strict'
// The Express middleware reads the Authorization values of a request in
// JavaScript (every one, in node:http's rawHeaders) and leaves the decision to
// the Rust adapter's code (apikeys_http::token_from_authorizations, through
// the addon): a value is a key exactly when apikeys_http::token_from_authorization
// (Keyring._tokenFromAuthorization) reads one, and two values are a 400.
const test = require('node:test')
const assert = require('node:assert/strict')
const { apikeys, tokenFromAuthorization, MAX_AUTHORIZATION_BYTES } = require('../express')
const { Keyring } = require('..')

const rust = (v) => Keyring._tokenFromAuthorization(v)
const keyring = new Keyring()
const issued = keyring.createGeneralKey({ account: 'acme', user: 'PADMIN1', role: 'admin' }, 'reader')
const middleware = apikeys(keyring).rest()

/** What the middleware does with a request carrying these raw headers: 'next', or the refusal's kind. */
function outcome(rawHeaders) {
  const req = { method: 'GET', rawHeaders, headers: {} }
  const res = { statusCode: 200, locals: {}, headers: {}, setHeader(n, v) { this.headers[n] = v }, end(b) { this.body = b } }
  let passed = false
  middleware(req, res, () => (passed = true))
  if (passed) return 'next'
  assert.equal(res.body, res.locals.apikeysRejection.body)
  return res.locals.apikeysRejection.kind
}

/** What the middleware must do with one Authorization value v. */
function expected(v) {
  const key = rust(v)
  if (key === null) return 'malformed_authorization'
  return key === issued.secret ? 'next' : 'unauthorized'
}

const KEY = 'y_NbAkKc66ryYTWUXYEu'

test('tokenFromAuthorization is the Rust parse', () => {
  assert.equal(tokenFromAuthorization(`Token token=${KEY}`), KEY)
  assert.equal(tokenFromAuthorization(`  token TOKEN = "${KEY}" `), KEY)
  assert.equal(tokenFromAuthorization(`Basic ${KEY}`), null)
  assert.equal(tokenFromAuthorization(42), null)
  assert.equal(MAX_AUTHORIZATION_BYTES, 1024)
})

test('the middleware decides each known value as the Rust parse reads it', () => {
  const values = [
    `Token token=${issued.secret}`,
    `bearer ${issued.secret}`,
    `Token token=${KEY}`,
    `token TOKEN=${KEY}`,
    `  Token   token = "${KEY}"  `,
    `Token\ttoken=\t${KEY}`,
    `Token token="${KEY}`,
    `Token token=${KEY}"`,
    `Token token=""`,
    `Token token="`,
    'Token token=',
    `Token token= ${KEY}`,
    `Token token=${KEY} extra`,
    `Token tokens=${KEY}`,
    `Token token ${KEY}`,
    `Tokentoken=${KEY}`,
    `Bearer ${KEY}`,
    `bearer\t${KEY} `,
    'Bearer',
    'Bearer ',
    `Bearer ${KEY} ${KEY}`,
    `Basic ${KEY}`,
    KEY,
    '',
    '   ',
    'Token token=ab"cd',
    'Token token=cl\u00e9',
    'Token token=\u007f',
    'Token token=\u0000abc',
    `Token token=${'a'.repeat(MAX_AUTHORIZATION_BYTES - 12)}`,
    `Token token=${'a'.repeat(MAX_AUTHORIZATION_BYTES - 11)}`,
    `Token token=${'a'.repeat(MAX_AUTHORIZATION_BYTES)}`,
    `Token\u00a0token=${KEY}`,
    `Token token=${KEY}\r`,
    `Token token=${KEY}\n`,
  ]
  for (const v of values) {
    assert.equal(outcome(['Authorization', v]), expected(v), JSON.stringify(v))
    assert.equal(outcome(['Host', 'x', 'AUTHORIZATION', v]), expected(v), JSON.stringify(v))
    assert.equal(outcome(['authorization', v, 'authorization', v]), 'duplicate_authorization', JSON.stringify(v))
  }
  assert.equal(outcome([]), 'missing_key')
  assert.equal(outcome(['Authorizations', `Token token=${issued.secret}`]), 'missing_key')
})

test('the middleware decides 20,000 generated values as the Rust parse reads them', () => {
  // A small deterministic generator (xorshift), so a failure can be replayed.
  let seed = 0x9e3779b9
  const next = () => {
    seed ^= seed << 13
    seed ^= seed >>> 17
    seed ^= seed << 5
    return (seed >>> 0) / 0x100000000
  }
  const pieces = ['Token', 'token', 'TOKEN', 'Bearer', 'bearer', 'Basic', ' ', '  ', '\t', '=', '"', KEY, issued.secret, 'abc', ',', '\u00e9', '\u007f', 'x"y', '']
  for (let i = 0; i < 20_000; i++) {
    let v = ''
    const n = 1 + Math.floor(next() * 7)
    for (let j = 0; j < n; j++) v += pieces[Math.floor(next() * pieces.length)]
    assert.equal(outcome(['Authorization', v]), expected(v), JSON.stringify(v))
  }
})
