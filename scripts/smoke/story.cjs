// The quickstart story in CommonJS, against the installed npm tarballs.
'use strict'
const assert = require('node:assert/strict')
const { Keyring, isApiKeyError } = require('apikeys')
const { apikeys: middleware, tokenFromAuthorization } = require('apikeys/express')

// The addon comes from the per-platform package, not from the main one.
const platform = require.resolve('apikeys-linux-x64-gnu')
assert.match(platform, /node_modules[\\/]apikeys-linux-x64-gnu[\\/]/)

const keyring = new Keyring()
const admin = { account: 'acme', user: 'PADMIN1', role: 'admin' }
const issued = keyring.createGeneralKey(admin, 'CI bot', { readOnly: true })
const token = issued.secret
assert.equal(token.length, 20)
assert.equal(keyring.authenticate(token, { method: 'GET' }).account, 'acme')
assert.throws(() => keyring.authenticate(token, { method: 'POST', scope: 'incidents.write' }), (e) => isApiKeyError(e) && e.status === 403 && e.pdCode === 2010)
keyring.disable(admin, issued.record.id)
assert.throws(() => keyring.authenticate(token), (e) => e.code === 'ERR_UNAUTHORIZED' && e.status === 401 && !e.message.includes(token))
keyring.enable(admin, issued.record.id)
assert.equal(keyring.authenticate(token).keyId, issued.record.id)
keyring.delete(admin, issued.record.id)
assert.throws(() => keyring.authenticate(token), (e) => e.status === 401)
assert.equal(tokenFromAuthorization(`Token token=${token}`), token)
assert.equal(typeof middleware(keyring).rest, 'function')
console.log('node story (CommonJS): ok')
