// The CommonJS side of the types: `import x = require()` under node16 resolution.
import apikeys = require('apikeys')
import express = require('apikeys/express')

const keyring: apikeys.Keyring = new apikeys.Keyring()
const key: apikeys.IssuedKey = keyring.createGeneralKey({ account: 'acme', user: 'PADMIN1', role: 'admin' }, 'CI bot')
const principal: apikeys.Principal = keyring.authenticate(key.secret)
const middleware: express.ApiKeys = express.apikeys(keyring)
export const checked = [principal.account, typeof middleware.rest]
