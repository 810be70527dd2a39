'use strict'
// Express with (`auth`) or without (`plain`) require('apikeys/express'), for wrk.sh.
//   node express_app.js plain|auth PORT
// Prints a full-access key on its first line, then serves GET /incidents
// (needing incidents.read when protected) on 127.0.0.1:PORT.
const path = require('node:path')
const express = require('express')
const node = path.join(__dirname, '..', '..', '..', 'bindings', 'node')
const { Keyring } = require(node)
const { apikeys } = require(path.join(node, 'express.js'))

const [mode, port] = [process.argv[2], Number(process.argv[3])]
const keyring = new Keyring()
const key = keyring.createGeneralKey({ account: 'acme', user: 'PADMIN1', role: 'admin' }, 'bench').secret
console.log(key)
const body = { incidents: [], limit: 25, offset: 0, more: false }
const app = express()
const handler = (req, res) => res.json(body)
if (mode === 'auth') app.get('/incidents', apikeys(keyring).rest('incidents.read'), handler)
else app.get('/incidents', handler)
app.listen(port, '127.0.0.1')
