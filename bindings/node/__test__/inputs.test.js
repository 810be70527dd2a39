'use strict'
// Wrong argument types, huge strings and NUL bytes: always a thrown Error that
// names the argument, never a crash of the process or a silently wrong answer.
const test = require('node:test')
const assert = require('node:assert/strict')
const { Keyring } = require('..')
const { fieldOf } = require('../args.js')
const { actor, throwsCode } = require('./helpers')

const BAD_VALUES = {
  undefined: undefined,
  null: null,
  number: 42,
  object: { toString: () => 'admin' },
  array: ['admin'],
  boolean: true,
  bigint: 10n,
  symbol: Symbol('x'),
  function: () => 'x',
}

const kr = new Keyring()
const owner = actor('owner')
const key = kr.createGeneralKey(owner, 'target')
const ID = key.record.id

// Every call with valid arguments: [name, args, names of the arguments, how many are optional at the end].
const CALLS = [
  ['createGeneralKey', [owner, 'CI', { readOnly: true }], ['actor', 'description', 'options'], 1],
  ['createUserToken', [owner, 'me', {}], ['actor', 'description', 'options'], 1],
  ['createIntegrationKey', [owner, 'PSVC', 'x', {}], ['actor', 'serviceId', 'description', 'options'], 1],
  ['createRoutingKey', [owner, 'orch', 'x', {}], ['actor', 'orchestrationId', 'description', 'options'], 1],
  ['createScopedToken', [owner, 'x', ['incidents.read'], {}], ['actor', 'description', 'scopes', 'options'], 1],
  ['disable', [owner, ID], ['actor', 'keyId'], 0],
  ['enable', [owner, ID], ['actor', 'keyId'], 0],
  ['get', [owner, ID], ['actor', 'keyId'], 0],
  ['list', [owner], ['actor'], 0],
  ['setAccount', ['acme', { restApi: true, advancedPermissions: true }], ['account', 'settings'], 0],
  ['account', ['acme'], ['account'], 0],
  ['setUserRole', ['acme', 'PUSER9', 'observer'], ['account', 'user', 'role'], 0],
  ['removeUser', ['acme', 'PUSER9'], ['account', 'user'], 0],
  ['setUserRoleAs', [owner, 'PUSER9', 'observer'], ['actor', 'user', 'role'], 0],
  ['removeUserAs', [owner, 'PUSER9'], ['actor', 'user'], 0],
  ['setAccountAs', [owner, { restApi: true, advancedPermissions: true }], ['actor', 'settings'], 0],
  ['authenticate', [key.secret, { api: 'rest', method: 'GET' }], ['token', 'request'], 1],
  ['rotate', [owner, ID, { graceMs: 60_000 }], ['actor', 'keyId', 'options'], 0],
  ['endRotation', [owner, ID], ['actor', 'keyId'], 0],
  ['auditRecords', [{ account: 'acme' }], ['query'], 0],
  ['pruneAudit', [60_000], ['olderThanMs'], 0],
]

function assertNamesArgument(e, name, what) {
  assert.ok(e instanceof Error, `${what}: threw ${String(e)}`)
  assert.ok(
    e.code === 'ERR_INVALID_ARG_TYPE' || e.code === 'ERR_INVALID_INPUT',
    `${what}: code ${e.code} (${e.message})`,
  )
  if (e.code === 'ERR_INVALID_ARG_TYPE') assert.ok(e instanceof TypeError, what)
  assert.equal(e.status, 400, what)
  assert.equal(e.pdCode, 2001, what)
  assert.ok(e.message.includes(name) || String(e.field).startsWith(name), `${what}: "${e.message}" names ${name}`)
}

for (const [method, args, names, optional] of CALLS) {
  test(`${method}: a wrong type in any argument is an error naming it`, async () => {
    for (let i = 0; i < args.length; i++) {
      const isOptional = i >= args.length - optional
      for (const [label, bad] of Object.entries(BAD_VALUES)) {
        if (isOptional && (bad === undefined || bad === null)) continue
        if (isOptional && label === 'object') continue // an options object without known fields is fine
        if (label === 'array' && Array.isArray(args[i])) continue // an array where one belongs is no type error
        if (label === 'number' && typeof args[i] === 'number') continue // a number where one belongs (milliseconds) neither
        const call = args.slice()
        call[i] = bad
        const what = `${method}(${names[i]} = ${label})`
        let thrown
        try {
          kr[method](...call)
        } catch (e) {
          thrown = e
        }
        assert.ok(thrown !== undefined, `${what} did not throw`)
        assertNamesArgument(thrown, names[i], what)
        // The Promise twin rejects the same way (authenticateAsync too).
        let rejected
        await kr[`${method}Async`](...call).then(
          () => {},
          (e) => {
            rejected = e
          },
        )
        assert.ok(rejected !== undefined, `${what} (Async) did not reject`)
        assert.equal(rejected.code, thrown.code, `${what} (Async)`)
      }
    }
  })
}

test('fields of objects are checked by name too', () => {
  const cases = [
    [() => kr.list({ account: 'acme', user: 'P1' }), 'actor.role'],
    [() => kr.list({ account: 1, user: 'P1', role: 'admin' }), 'actor.account'],
    [() => kr.list({ account: 'acme', user: null, role: 'admin' }), 'actor.user'],
    [() => kr.createGeneralKey(owner, 'x', { readOnly: 'yes' }), 'options.readOnly'],
    [() => kr.createGeneralKey(owner, 'x', { expiresAt: Date.now() + 1000 }), 'options.expiresAt'],
    [() => kr.createScopedToken(owner, 'x', ['incidents.read', 7]), 'scopes[1]'],
    [() => kr.setAccount('acme', { restApi: 'no', advancedPermissions: true }), 'settings.restApi'],
    [() => kr.setAccount('acme', { restApi: true }), 'settings.advancedPermissions'],
    [() => kr.authenticate(key.secret, { api: 1 }), 'request.api'],
    [() => kr.authenticate(key.secret, { method: ['GET'] }), 'request.method'],
    [() => kr.authenticate(key.secret, { scope: {} }), 'request.scope'],
    [() => new Keyring(5), 'options'],
    [() => new Keyring({ pepper: 5 }), 'options.pepper'],
    [() => new Keyring({ store: 'memory' }), 'options.store'],
    [() => new Keyring({ auditCapacity: -1 }), 'options.auditCapacity'],
  ]
  for (const [fn, name] of cases) {
    const e = throwsCode(fn, 'ERR_INVALID_ARG_TYPE', 400, 2001)
    assert.ok(e instanceof TypeError)
    assert.ok(e.message.includes(`"${name}"`), `${e.message} names ${name}`)
  }
})

test('a store this build does not have is refused, never silently replaced by memory', () => {
  const e = throwsCode(() => new Keyring({ store: { mongodb: 'mongodb://x' } }), 'ERR_INVALID_INPUT', 400, 2001)
  assert.match(e.message, /'mongodb'/)
  assert.match(e.message, /sqlite/)
  assert.equal(e.field, 'options.store')
  throwsCode(() => new Keyring({ store: {} }), 'ERR_INVALID_INPUT', 400, 2001)
  throwsCode(() => new Keyring({ store: { memory: true, sqlite: '/tmp/x.db' } }), 'ERR_INVALID_INPUT', 400, 2001)
  throwsCode(() => new Keyring({ store: { memory: false } }), 'ERR_INVALID_INPUT', 400, 2001)
  const k = new Keyring({ store: { memory: true } })
  assert.ok(k instanceof Keyring)
  assert.equal(k.storeKind, 'memory')
  assert.equal(k.flush(), 0)
})

test('bad values of the right type are ERR_INVALID_INPUT naming the field', () => {
  const cases = [
    [() => kr.createGeneralKey(owner, '   '), 'description'],
    [() => kr.createGeneralKey({ account: '', user: 'P1', role: 'admin' }, 'x'), 'account'],
    [() => kr.createGeneralKey({ account: 'acme', user: 'P 1', role: 'admin' }, 'x'), 'user'],
    [() => kr.createGeneralKey({ account: 'acme', user: 'P1', role: 'Admin' }, 'x'), 'role'],
    [() => kr.createIntegrationKey(owner, '', 'x'), 'serviceId'],
    [() => kr.createRoutingKey(owner, 'has space', 'x'), 'orchestrationId'],
    [() => kr.createScopedToken(owner, 'x', []), 'scopes'],
    [() => kr.createScopedToken(owner, 'x', ['incidents.delete']), 'scope'],
    [() => kr.get(owner, 'not-an-id'), 'keyId'],
    [() => kr.setUserRole('acme', 'P1', 'superuser'), 'role'],
    [() => kr.createGeneralKey(owner, 'x', { expiresAt: new Date('nope') }), 'expiresAt'],
  ]
  for (const [fn, field] of cases) {
    const e = throwsCode(fn, 'ERR_INVALID_INPUT', 400, 2001)
    assert.equal(e.field, fieldOf(field), e.message)
    assert.ok(e.message.includes(field), e.message)
  }
})

test('a 10 MB string anywhere is refused quickly, without a crash', () => {
  const huge = 'a'.repeat(10 * 1024 * 1024)
  const started = Date.now()
  throwsCode(() => kr.authenticate(huge), 'ERR_UNAUTHORIZED', 401, 2006)
  assert.equal(throwsCode(() => kr.createGeneralKey(owner, huge), 'ERR_INVALID_INPUT').field, 'description')
  assert.equal(throwsCode(() => kr.list({ account: huge, user: 'P1', role: 'admin' }), 'ERR_INVALID_INPUT').field, 'account')
  assert.equal(throwsCode(() => kr.get(owner, huge), 'ERR_INVALID_INPUT').field, 'key_id')
  assert.equal(throwsCode(() => kr.setUserRole('acme', 'P1', huge), 'ERR_INVALID_INPUT').field, 'role')
  assert.equal(throwsCode(() => kr.createScopedToken(owner, 'x', [huge + '.read']), 'ERR_INVALID_INPUT').field, 'scope')
  assert.equal(
    throwsCode(() => kr.authenticate(key.secret, { scope: huge }), 'ERR_INVALID_INPUT').field,
    'scope',
  )
  assert.equal(throwsCode(() => kr.authenticate(key.secret, { api: huge }), 'ERR_INVALID_INPUT').field, 'api')
  // An unknown method counts as a write: a full-access key may; the message never echoes it.
  assert.equal(kr.authenticate(key.secret, { method: huge }).keyId, ID)
  assert.ok(Date.now() - started < 5000, 'took too long')
})

test('NUL bytes are refused where text is expected, and never truncate a value', () => {
  const cases = [
    [() => kr.createGeneralKey(owner, 'CI\0bot'), 'description'],
    [() => kr.createGeneralKey({ account: 'ac\0me', user: 'P1', role: 'admin' }, 'x'), 'account'],
    [() => kr.createGeneralKey({ account: 'acme', user: 'P1\0', role: 'admin' }, 'x'), 'user'],
    [() => kr.createGeneralKey({ account: 'acme', user: 'P1', role: 'admin\0' }, 'x'), 'role'],
    [() => kr.get(owner, ID + '\0'), 'key_id'],
    [() => kr.get(owner, ID.slice(0, 13) + '\0'), 'key_id'],
    [() => kr.createIntegrationKey(owner, 'PSVC\0', 'x'), 'service_id'],
    [() => kr.createScopedToken(owner, 'x', ['incidents.read\0']), 'scope'],
    [() => kr.authenticate(key.secret, { scope: 'incidents.read\0' }), 'scope'],
  ]
  for (const [fn, field] of cases) {
    assert.equal(throwsCode(fn, 'ERR_INVALID_INPUT', 400, 2001).field, field)
  }
  throwsCode(() => kr.authenticate(key.secret + '\0'), 'ERR_UNAUTHORIZED', 401, 2006)
  throwsCode(() => kr.authenticate(key.secret.slice(0, 19) + '\0'), 'ERR_UNAUTHORIZED', 401, 2006)
})

test('the raw addon, called with wrong types directly, throws instead of crashing', () => {
  const native = require('../binding.js')
  const raw = new native.Keyring()
  const calls = [
    () => raw.createGeneralKey(undefined, 'x'),
    () => raw.createGeneralKey({}, 'x'),
    () => raw.createGeneralKey(owner, 5),
    () => raw.createScopedToken(owner, 'x', 'incidents.read'),
    () => raw.list(null),
    () => raw.authenticate(5),
    () => raw.authenticate('x', 'GET'),
    () => raw._authenticate(undefined, 'rest', 'GET'),
    () => raw._principal(-1),
    () => raw._principal(0xffffffff),
    () => raw.setAccount('acme', { restApi: 1 }),
    () => native.Keyring.prototype.list.call({}, owner),
  ]
  for (const fn of calls) assert.throws(fn, Error)
})
