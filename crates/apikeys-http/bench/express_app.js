'use strict'
// Express with (`auth`) or without (`plain`) require('apikeys/express'), for wrk.sh;
// `noop` mounts a middleware that only calls next(), to tell Express's cost of
// one more route handler from the middleware's own.
//   node express_app.js plain|auth|noop PORT
// Prints a full-access key on its first line, then serves GET /incidents
// (needing incidents.read when protected) on 127.0.0.1:PORT. With
// APIKEYS_BENCH_LIMITS=1 in the environment the keyring enforces a rate limit
// no run reaches, so every protected answer carries the ratelimit-* headers.
const path = require('node:path')
const node = path.join(__dirname, '..', '..', '..', 'bindings', 'node')
// express: wherever NODE_PATH says, else the package's dev dependency
// (bindings/node/node_modules, installed by `npm ci` there).
const express = require(require.resolve('express', { paths: [__dirname, node] }))
const { Keyring } = require(node)
const { apikeys } = require(path.join(node, 'express.js'))

const [mode, port] = [process.argv[2], Number(process.argv[3])]
const keyring = new Keyring(process.env.APIKEYS_BENCH_LIMITS === '1' ? { rateLimits: { generalKey: { requests: 0xffffffff, windowMs: 60_000 } } } : undefined)
const key = keyring.createGeneralKey({ account: 'acme', user: 'PADMIN1', role: 'admin' }, 'bench').secret
console.log(key)
const body = { incidents: [], limit: 25, offset: 0, more: false }
const app = express()
const handler = (req, res) => res.json(body)
if (mode === 'auth') app.get('/incidents', apikeys(keyring).rest('incidents.read'), handler)
else if (mode === 'noop') app.get('/incidents', (req, res, next) => next(), handler)
else app.get('/incidents', handler)
app.listen(port, '127.0.0.1')
// A normal exit on SIGTERM/SIGINT, so that `node --cpu-prof express_app.js …`
// writes its profile when stopped (wrk.sh stops its servers with SIGTERM).
for (const signal of ['SIGTERM', 'SIGINT']) process.on(signal, () => process.exit(0))
