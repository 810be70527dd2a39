'use strict'
// Shared by rotation.test.js and audit-trail.test.js, which mirror the core's
// own checks of rotation and the audit trail (crates/apikeys/src/testing/
// lifecycle.rs) through the Node API: the stores they run on, a clock that
// moves by hand, and a few assertions.
//
// Every keyring gets a store of its own (a fresh SQLite file, a fresh
// PostgreSQL schema) and every check a fresh account, so no check sees
// another's records; PostgreSQL is the real server of scripts/services.sh
// (APIKEYS_TEST_POSTGRES_URL): without it those tests fail, never skip.
const assert = require('node:assert/strict')
const crypto = require('node:crypto')
const fs = require('node:fs')
const os = require('node:os')
const path = require('node:path')
const { after } = require('node:test')

const { Keyring, ManualClock } = require('..')
const { throwsCode } = require('./helpers')

const MINUTE = 60_000
const HOUR = 60 * MINUTE
const DAY = 24 * HOUR
const QUIET = 15 * MINUTE
/** How far behind a stored last use may be (the core's slack, docs/design.md §8). */
const SLACK = 2 * MINUTE
/** A fixed, recent moment (the core's checks start there too): audit windows are relative to it. */
const START = 1_790_000_000_000

// Made when a test file requires this module (at its top level, so that the
// clean-up runs after the whole file, not after the first test).
const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'apikeys-node-lifecycle-'))
after(() => fs.rmSync(dir, { recursive: true, force: true }))

function postgresUrl() {
  const url = process.env.APIKEYS_TEST_POSTGRES_URL
  if (!url) assert.fail('APIKEYS_TEST_POSTGRES_URL is not set: run scripts/test.sh, or `source scripts/services.sh` first')
  return url
}

const fresh = () => crypto.randomBytes(6).toString('hex')

/** The stores every check runs on: [name, (options) => the options with a fresh store of that kind]. */
const STORES = [
  ['memory', (o) => ({ ...o, store: { memory: true } })],
  ['SQLite', (o) => ({ ...o, store: { sqlite: path.join(dir, `${fresh()}.db`) } })],
  ['PostgreSQL', (o) => ({ ...o, store: { postgres: postgresUrl(), schema: `node_life_${fresh()}` } })],
]

/** A keyring on a fresh store of this kind, telling the time by a fresh ManualClock at START. */
function setup(withStore, { quiet = QUIET } = {}) {
  const clock = new ManualClock(new Date(START))
  const kr = new Keyring(withStore({ clock, rotationQuietMs: quiet }))
  return { kr, clock }
}

/** A fresh account id (stores may be shared). */
const uniqueAccount = (prefix) => `${prefix}-${fresh()}`

const admin = (account) => ({ account, user: 'PADMIN1', role: 'admin' })

/** Whether `key` authenticates a REST GET (or an Events request, for an Events key). */
function works(kr, key) {
  const api = key.record.kind === 'integration' || key.record.kind === 'routing' ? 'events' : 'rest'
  return kr.authenticate(key.secret, { api })
}

/** Asserts that `key` is refused as a rotated key whose overlap has ended. */
function refusedAsRotated(kr, key) {
  const e = throwsCode(() => works(kr, key), 'ERR_UNAUTHORIZED', 401, 2006)
  assert.equal(e.reason, 'the key was rotated and its overlap has ended')
  return e
}

/** Every record of an account in the default window, newest first, page by page. */
function allRecords(kr, account, query = {}) {
  const out = []
  let cursor
  for (;;) {
    const page = kr.auditRecords({ account, limit: 1000, ...query, cursor })
    out.push(...page.records)
    if (page.nextCursor === undefined) return out
    cursor = page.nextCursor
  }
}

module.exports = {
  MINUTE,
  HOUR,
  DAY,
  QUIET,
  SLACK,
  START,
  STORES,
  setup,
  uniqueAccount,
  admin,
  works,
  refusedAsRotated,
  allRecords,
}
