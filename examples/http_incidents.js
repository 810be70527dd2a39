'use strict'
// The incidents API of examples/http_incidents.rs, in Express with require('apikeys/express').
// From a fresh clone, at its root:
//   (cd bindings/node && npm ci && npm run build)   # the addon, and express (a dev dependency there)
//   node examples/http_incidents.js [PORT]          # default 3000; 0 picks a free port
// express is taken from bindings/node's node_modules (or from wherever Node
// finds it from here, e.g. NODE_PATH). GET /incidents needs incidents.read;
// POST /incidents and PUT /incidents/:id need incidents.write; POST /v2/enqueue
// takes an Events API v2 body (202).
const path = require('node:path')
const pkg = path.join(__dirname, '..', 'bindings', 'node') // require('apikeys') once installed
const express = require(require.resolve('express', { paths: [pkg, __dirname] }))
const { Keyring } = require(pkg)
const { apikeys } = require(path.join(pkg, 'express.js')) // require('apikeys/express')

const keyring = new Keyring({ rateLimits: 'pagerduty' })
const admin = { account: 'acme', user: 'PADMIN1', role: 'admin' }
const manager = { account: 'acme', user: 'PMANAGER1', role: 'manager' }
const full = keyring.createGeneralKey(admin, 'ops bot').secret
const readOnly = keyring.createGeneralKey(admin, 'dashboard', { readOnly: true }).secret
const scoped = keyring.createScopedToken(manager, 'ack bot', ['incidents.write']).secret
const events = keyring.createIntegrationKey(manager, 'PSERVICE1', 'Datadog').secret

const auth = apikeys(keyring)
const app = express()
const incidents = []
const open = (account, title, via) => {
  const i = { id: `Q${String(incidents.length + 1).padStart(6, '0')}`, title, status: 'triggered', account, created_via: via }
  incidents.push(i)
  return i
}
app.get('/incidents', auth.rest('incidents.read'), (req, res) => {
  res.json({ incidents: incidents.filter((i) => i.account === req.apikey.account), more: false })
})
app.post('/incidents', auth.rest('incidents.write'), express.json(), (req, res) => {
  res.status(201).json({ incident: open(req.apikey.account, req.body?.incident?.title ?? 'untitled', 'rest') })
})
app.put('/incidents/:id', auth.rest('incidents.write'), (req, res) => {
  const i = incidents.find((x) => x.id === req.params.id && x.account === req.apikey.account)
  if (!i) return res.status(404).json({ error: { message: 'Not Found', code: 2100 } })
  i.status = 'acknowledged'
  res.json({ incident: i })
})
app.post('/v2/enqueue', auth.events(), (req, res) => {
  const i = open(req.apikey.account, String(req.body.payload?.summary ?? 'event'), 'events')
  res.status(202).json({ status: 'success', message: 'Event processed', dedup_key: i.id })
})

const port = Number(process.argv[2] ?? 3000)
const server = app.listen(port, '127.0.0.1', () => {
  const base = `http://127.0.0.1:${server.address().port}`
  console.log(`incidents API on ${base}\n  full: ${full}\n  read-only: ${readOnly}\n  scoped: ${scoped}\n  events: ${events}`)
  console.log(`  curl -i -H 'Authorization: Token token=${readOnly}' ${base}/incidents`)
  console.log(`  curl -i -H 'Authorization: Token token=${readOnly}' -H 'Content-Type: application/json' -d '{"incident":{"title":"db down"}}' ${base}/incidents   # 403`)
  console.log(`  curl -i -H 'Content-Type: application/json' -d '{"routing_key":"${events}","event_action":"trigger","payload":{"summary":"disk full","source":"db1","severity":"critical"}}' ${base}/v2/enqueue   # 202`)
})
