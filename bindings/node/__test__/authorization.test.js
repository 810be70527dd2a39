'use strict'
// The Express middleware takes `Token token=<key>` exactly with one regular
// expression and hands every other spelling to the Rust adapter's parse
// (apikeys_http::token_from_authorization, Keyring._tokenFromAuthorization):
// every value must be read exactly as the Rust adapter reads it.
const test = require('node:test')
const assert = require('node:assert/strict')
const { tokenFromAuthorization, MAX_AUTHORIZATION_BYTES } = require('../express')
const { Keyring } = require('..')

const rust = (v) => Keyring._tokenFromAuthorization(v)
const KEY = 'y_NbAkKc66ryYTWUXYEu'

test('the JavaScript parse of Authorization agrees with the Rust one on known values', () => {
  const values = [
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
  for (const v of values) assert.equal(tokenFromAuthorization(v), rust(v), JSON.stringify(v))
})

test('the JavaScript parse of Authorization agrees with the Rust one on 20,000 generated values', () => {
  // A small deterministic generator (xorshift), so a failure can be replayed.
  let seed = 0x9e3779b9
  const next = () => {
    seed ^= seed << 13
    seed ^= seed >>> 17
    seed ^= seed << 5
    return (seed >>> 0) / 0x100000000
  }
  const pieces = ['Token', 'token', 'TOKEN', 'Bearer', 'bearer', 'Basic', ' ', '  ', '\t', '=', '"', KEY, 'abc', ',', '\u00e9', '\u007f', 'x"y', '']
  for (let i = 0; i < 20_000; i++) {
    let v = ''
    const n = 1 + Math.floor(next() * 7)
    for (let j = 0; j < n; j++) v += pieces[Math.floor(next() * pieces.length)]
    assert.equal(tokenFromAuthorization(v), rust(v), JSON.stringify(v))
  }
})
