// The quickstart story as an ES module, against the installed npm tarballs.
import assert from 'node:assert/strict'
import { createRequire } from 'node:module'
import apikeysDefault, { Keyring, isApiKeyError } from 'apikeys'
import { apikeys as middleware, Rejection } from 'apikeys/express'

// One package, two entry points, the same objects.
const require = createRequire(import.meta.url)
assert.equal(Keyring, require('apikeys').Keyring)
assert.equal(apikeysDefault, require('apikeys'))
assert.deepEqual(Object.keys(await import('apikeys')).filter((k) => k !== 'default').sort(), Object.keys(require('apikeys')).sort())
assert.equal(Rejection, require('apikeys/express').Rejection)

const keyring = new Keyring({ store: { memory: true } })
const admin = { account: 'acme', user: 'PADMIN1', role: 'admin' }
const manager = { account: 'acme', user: 'PMGR1', role: 'manager' }
const issued = keyring.createGeneralKey(admin, 'CI bot', { readOnly: true })
assert.equal(keyring.authenticate(issued.secret).account, 'acme')
assert.throws(() => keyring.authenticate(issued.secret, { method: 'DELETE' }), (e) => isApiKeyError(e) && e.status === 403)
keyring.disable(admin, issued.record.id)
assert.throws(() => keyring.authenticate(issued.secret), (e) => e.status === 401)
const events = keyring.createIntegrationKey(manager, 'PSERVICE1', 'Datadog')
assert.equal(keyring.authenticate(events.secret, { api: 'events' }).target, 'PSERVICE1')
assert.throws(() => keyring.authenticate(events.secret, { api: 'rest' }), (e) => e.code === 'ERR_WRONG_API')
assert.equal(typeof middleware(keyring).events, 'function')
console.log('node story (ES module): ok')
