'use strict'
// ManualClock, as Python's: a keyring given one tells the time by it, so a
// test can move time to expire a key (and sees the times it stamps).
const test = require('node:test')
const assert = require('node:assert/strict')
const { Keyring, ManualClock } = require('..')
const { actor, throwsCode } = require('./helpers')

const START = new Date('2030-01-01T00:00:00Z')
const HOUR = 3_600_000

test('a keyring tells the time by its clock: records, expiry and the audit trail', async () => {
  const clock = new ManualClock(START)
  assert.deepEqual(clock.now(), START)
  const kr = new Keyring({ clock })
  const admin = actor('admin')
  const k = kr.createGeneralKey(admin, 'CI', { expiresAt: new Date(START.getTime() + HOUR) })
  assert.deepEqual(k.record.createdAt, START)
  assert.equal(kr.authenticate(k.secret).keyId, k.record.id)
  clock.advance(HOUR - 1)
  assert.equal(kr.authenticate(k.secret).keyId, k.record.id)
  clock.advance(1)
  throwsCode(() => kr.authenticate(k.secret), 'ERR_UNAUTHORIZED', 401, 2006)
  clock.set(new Date('2030-06-01T00:00:00Z'))
  kr.disable(admin, k.record.id)
  assert.deepEqual(kr.get(admin, k.record.id).disabled.at, new Date('2030-06-01T00:00:00Z'))
  assert.deepEqual(kr.auditTrail().at(-1).at, new Date('2030-06-01T00:00:00Z'))
  // An expiry is "in the future" by the clock too.
  throwsCode(() => kr.createGeneralKey(admin, 'late', { expiresAt: START }), 'ERR_INVALID_INPUT', 400, 2001)
  // Keyring.open takes it as well, and one clock moves every keyring it was given to.
  const opened = await Keyring.open({ clock })
  assert.deepEqual(opened.createGeneralKey(admin, 'x').record.createdAt, clock.now())
})

test('bad times and clocks are refused, naming the argument', () => {
  for (const bad of [undefined, 'yesterday', 5, {}]) throwsCode(() => new ManualClock(bad), 'ERR_INVALID_ARG_TYPE', 400, 2001)
  assert.equal(throwsCode(() => new ManualClock(new Date(0)), 'ERR_INVALID_INPUT', 400, 2001).field, 'start')
  assert.equal(throwsCode(() => new ManualClock(new Date(NaN)), 'ERR_INVALID_INPUT', 400, 2001).field, 'start')
  const clock = new ManualClock(START)
  assert.equal(throwsCode(() => clock.advance(-1), 'ERR_INVALID_INPUT', 400, 2001).field, 'ms')
  assert.equal(throwsCode(() => clock.advance(Infinity), 'ERR_INVALID_INPUT', 400, 2001).field, 'ms')
  assert.equal(throwsCode(() => clock.advance(8.64e15), 'ERR_INVALID_INPUT', 400, 2001).field, 'ms')
  throwsCode(() => clock.advance('1'), 'ERR_INVALID_ARG_TYPE', 400, 2001)
  assert.equal(throwsCode(() => clock.set(new Date(NaN)), 'ERR_INVALID_INPUT', 400, 2001).field, 'at')
  assert.deepEqual(clock.now(), START, 'a refused move leaves the clock where it was')
  const e = throwsCode(() => new Keyring({ clock: { now: () => START } }), 'ERR_INVALID_ARG_TYPE', 400, 2001)
  assert.equal(e.field, 'options.clock')
})
