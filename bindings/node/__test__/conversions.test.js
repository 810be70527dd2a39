'use strict'
// Values that napi cannot convert, or that change while they are converted,
// are the package's own errors naming the argument, never napi's raw ones
// (DateExpected, StringExpected, InvalidArg …): dates out of range, Proxies,
// getters that answer differently on a second read, arrays whose length lies.
const test = require('node:test')
const assert = require('node:assert/strict')
const vm = require('node:vm')
const { Keyring } = require('..')
const { fieldOf } = require('../args.js')
const { actor } = require('./helpers')

const owner = actor('owner')
const manager = actor('user', 'PMANAGER1')
const NAPI_CODES = /^(InvalidArg|ObjectExpected|StringExpected|NameExpected|FunctionExpected|NumberExpected|BooleanExpected|ArrayExpected|GenericFailure|PendingException|Cancelled|EscapeCalledTwice|HandleScopeMismatch|CallbackScopeMismatch|QueueFull|Closing|BigintExpected|DateExpected|ArrayBufferExpected|DetachableArraybufferExpected|WouldDeadlock|NoExternalBuffersAllowed|Unknown)$/

function caught(fn) {
  try {
    fn()
  } catch (e) {
    return e
  }
  assert.fail('did not throw')
}

async function rejected(promise) {
  try {
    await promise
  } catch (e) {
    return e
  }
  assert.fail('did not reject')
}

function ours(e, code, field, what) {
  assert.ok(e instanceof Error, `${what}: ${String(e)}`)
  assert.ok(!NAPI_CODES.test(String(e.code)), `${what}: a raw napi error ${e.code}: ${e.message}`)
  assert.equal(e.code, code, `${what}: ${e.code} ${e.message}`)
  assert.equal(e.status, 400, what)
  assert.equal(e.pdCode, 2001, what)
  if (code === 'ERR_INVALID_INPUT') assert.equal(e.field, fieldOf(field), `${what}: field ${e.field} (${e.message})`)
  else assert.ok(e.message.includes(`"${field}"`), `${what}: ${e.message} names ${field}`)
}

test('expiry dates out of range are ERR_INVALID_INPUT naming expiresAt, on every create call and its twin', async () => {
  const kr = new Keyring()
  const dates = [
    ['the last Date JavaScript has', new Date(8.64e15)],
    ['one past it (an invalid Date)', new Date(8.64e15 + 1)],
    ['NaN', new Date(NaN)],
    ['an unparsable string', new Date('not a date')],
    ['before 1970', new Date(-1)],
    ['year -271821', new Date(-8.64e15)],
    ['1970 itself', new Date(0)],
    ['a second ago', new Date(Date.now() - 1000)],
  ]
  const calls = [
    ['createGeneralKey', (o) => [owner, 'x', o]],
    ['createUserToken', (o) => [owner, 'x', o]],
    ['createIntegrationKey', (o) => [manager, 'PSVC', 'x', o]],
    ['createRoutingKey', (o) => [manager, 'orch', 'x', o]],
    ['createScopedToken', (o) => [manager, 'x', ['incidents.read'], o]],
  ]
  for (const [label, date] of dates) {
    for (const [method, args] of calls) {
      const what = `${method} ${label}`
      ours(caught(() => kr[method](...args({ expiresAt: date }))), 'ERR_INVALID_INPUT', 'expiresAt', what)
      ours(await rejected(kr[`${method}Async`](...args({ expiresAt: date }))), 'ERR_INVALID_INPUT', 'expiresAt', `${what} (Async)`)
    }
  }
  assert.equal(kr.list(owner).length, 0, 'no key was made')
})

test('dates that are Dates are taken, whatever their realm or class; lookalikes are TypeErrors', () => {
  const kr = new Keyring()
  const when = Date.now() + 3_600_000
  const other = vm.runInNewContext(`new Date(${when})`)
  assert.ok(!(other instanceof Date))
  assert.equal(kr.createGeneralKey(owner, 'x', { expiresAt: other }).record.expiresAt.getTime(), when)
  class Deadline extends Date {}
  assert.equal(kr.createGeneralKey(owner, 'x', { expiresAt: new Deadline(when) }).record.expiresAt.getTime(), when)
  // Far future, but a date the records can give back.
  const far = Date.UTC(9999, 11, 31)
  assert.equal(kr.createGeneralKey(owner, 'x', { expiresAt: new Date(far) }).record.expiresAt.getTime(), far)

  const proxy = new Proxy(new Date(when), {})
  const lookalike = { getTime: () => when, valueOf: () => when, toISOString: () => new Date(when).toISOString() }
  Object.setPrototypeOf(lookalike, Date.prototype)
  for (const [label, v] of [['a Proxy of a Date', proxy], ['an object with Date.prototype', lookalike], ['a number', when], ['a string', new Date(when).toISOString()]]) {
    ours(caught(() => kr.createGeneralKey(owner, 'x', { expiresAt: v })), 'ERR_INVALID_ARG_TYPE', 'options.expiresAt', label)
  }
})

test('each option and actor field is read once: a getter cannot change it after the check', () => {
  const kr = new Keyring()
  const later = new Date(Date.now() + 3_600_000)
  let reads = 0
  const options = {
    get expiresAt() {
      reads++
      return reads === 1 ? later : 'not a date'
    },
    get readOnly() {
      return reads < 2 ? true : 42
    },
  }
  const k = kr.createGeneralKey(owner, 'x', options)
  assert.equal(reads, 1)
  assert.equal(k.record.expiresAt.getTime(), later.getTime())
  assert.equal(k.record.access, 'read_only')

  let accountReads = 0
  const fickle = {
    get account() {
      accountReads++
      return accountReads === 1 ? 'acme' : 7
    },
    user: 'POWNER',
    role: 'owner',
  }
  assert.equal(kr.list(fickle).length, 1)
  assert.equal(accountReads, 1)

  let settingsReads = 0
  const settings = {
    get restApi() {
      settingsReads++
      return settingsReads === 1 ? true : 'no'
    },
    advancedPermissions: true,
  }
  kr.setAccount('acme', settings)
  assert.equal(settingsReads, 1)
})

test('a scopes array that changes while it is read is copied once, or refused naming the element', async () => {
  const kr = new Keyring()
  // A getter element that answers a string, then a number.
  let n = 0
  const arr = ['incidents.read', 'services.read']
  Object.defineProperty(arr, 1, {
    get() {
      n++
      return n === 1 ? 'services.read' : 5
    },
  })
  const t = kr.createScopedToken(manager, 'x', arr)
  assert.deepEqual([...t.record.scopes].sort(), ['incidents.read', 'services.read'])

  // A Proxy whose length grows after it was read, and whose element turns into a number.
  let lengthReads = 0
  let elementReads = 0
  const changing = new Proxy(['incidents.read'], {
    get(target, prop) {
      if (prop === 'length') return ++lengthReads <= 2 ? 1 : 2
      if (prop === '0') return ++elementReads === 1 ? 'incidents.read' : 42
      return Reflect.get(target, prop)
    },
  })
  assert.deepEqual([...kr.createScopedToken(manager, 'x', changing).record.scopes], ['incidents.read'])
  assert.deepEqual([lengthReads, elementReads], [1, 1])

  // A Proxy whose elements turn into a non-string mid-iteration.
  const turning = new Proxy(['incidents.read', 'services.read', 'users.read'], {
    get(target, prop) {
      if (prop === '2') return { toString: () => 'users.read' }
      return Reflect.get(target, prop)
    },
  })
  ours(caught(() => kr.createScopedToken(manager, 'x', turning)), 'ERR_INVALID_ARG_TYPE', 'scopes[2]', 'turning proxy')
  ours(await rejected(kr.createScopedTokenAsync(manager, 'x', turning)), 'ERR_INVALID_ARG_TYPE', 'scopes[2]', 'turning proxy (Async)')

  // A length that lies: refused at once, without reading 4 billion elements.
  const started = Date.now()
  const huge = new Proxy([], { get: (t, p) => (p === 'length' ? 2 ** 32 - 1 : 'incidents.read') })
  ours(caught(() => kr.createScopedToken(manager, 'x', huge)), 'ERR_INVALID_INPUT', 'scopes', 'huge length')
  const weird = new Proxy([], { get: (t, p) => (p === 'length' ? -1 : undefined) })
  ours(caught(() => kr.createScopedToken(manager, 'x', weird)), 'ERR_INVALID_ARG_TYPE', 'scopes', 'negative length')
  assert.ok(Date.now() - started < 1000)
  // Holes are missing strings.
  // eslint-disable-next-line no-sparse-arrays
  ours(caught(() => kr.createScopedToken(manager, 'x', ['incidents.read', , 'services.read'])), 'ERR_INVALID_ARG_TYPE', 'scopes[1]', 'hole')
  // 65 scopes: the core's own rule and message.
  const many = Array.from({ length: 65 }, (_, i) => `r${i}.read`)
  assert.equal(caught(() => kr.createScopedToken(manager, 'x', many)).code, 'ERR_INVALID_INPUT')
})

test('a request, store or limit object read through getters is read once', () => {
  const kr = new Keyring()
  const key = kr.createGeneralKey(owner, 'x', { readOnly: true }).secret
  let reads = 0
  const request = {
    get method() {
      reads++
      return reads === 1 ? 'GET' : 'POST'
    },
  }
  assert.equal(kr.authenticate(key, request).access, 'read_only')
  assert.equal(reads, 1)
  let storeReads = 0
  const store = {
    get memory() {
      storeReads++
      return storeReads === 1 ? true : 'yes'
    },
  }
  assert.equal(new Keyring({ store }).storeKind, 'memory')
  assert.equal(storeReads, 1)
  let limitReads = 0
  const limit = {
    get requests() {
      limitReads++
      return limitReads === 1 ? 2 : -5
    },
    windowMs: 60_000,
  }
  const limited = new Keyring({ rateLimits: { generalKey: limit } })
  assert.equal(limitReads, 1)
  const k = limited.createGeneralKey(owner, 'y').secret
  assert.equal(limited.authenticate(k).rateLimit.limit, 2)
})
