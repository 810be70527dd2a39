'use strict'
// The package's entry point: a thin layer over the generated loader
// (binding.js, written by `napi build`). Its types are index.d.ts, generated
// from the Rust doc comments. This layer holds no policy: it
//   - checks argument types, so a wrong type is a TypeError naming the argument
//     (code 'ERR_INVALID_ARG_TYPE') instead of a conversion error,
//   - refuses, as ERR_INVALID_INPUT naming the argument, every string that is
//     not well-formed UTF-16 (a lone surrogate would reach Rust as U+FFFD, so
//     two different strings would become one) and every unknown option name:
//     every string passes through `text`, every options object through `known`,
//   - reads each argument and each option field exactly once, into a fresh
//     object or array of plain values, so getters and Proxies cannot hand the
//     addon something other than what was checked,
//   - reads the request object in JavaScript and hands the addon plain strings,
//   - answers principals from the principal cache (principals.js: one frozen
//     object per (key, role) handle the addon answers, so authenticate builds
//     no object per call),
//   - throws authentication failures as Errors built here from the addon's
//     error templates (a native throw costs twice as much),
//   - hides the key of an IssuedKey from util.inspect and JSON.stringify,
//   - gives each audit event its toPagerDuty() method, over the JSON the core
//     wrote for it (the shape is the core's, never rebuilt here).

const { inspect } = require('node:util')
const binding = require('./binding.js')
const { Principals, withStatus } = require('./principals.js')
const { argTypeError, invalidInput, optionName } = require('./args.js')

const Native = binding.Keyring
const ERROR_CODES = new Set(Object.values(binding.ErrorCode ?? {}))

function isPlainObject(v) {
  return typeof v === 'object' && v !== null && !Array.isArray(v)
}

// Every string argument and option field passes through here: of type string,
// and well-formed UTF-16. napi converts a lone surrogate to U+FFFD, so
// 'tenant\ud800' and 'tenant\udfff' would both reach Rust as 'tenant\ufffd'.
function text(value, name) {
  if (typeof value !== 'string') throw argTypeError(name, 'of type string', value)
  if (!value.isWellFormed()) throw invalidInput(`invalid ${name}: must be valid Unicode (no lone surrogates)`, name)
  return value
}

// Every options object passes through here: a name it does not know is an
// error (a misspelt option would otherwise be ignored, silently). Names on the
// prototype chain count, as reading the options reads them too.
function known(object, names, name) {
  for (const k in object) {
    if (!names.includes(k)) {
      throw invalidInput(
        `invalid ${name}: unknown option ${optionName(k)}; the options are ${names.join(', ')}`,
        name,
      )
    }
  }
}

const CONTEXT_OPTIONS = ['requestId', 'remoteAddress', 'callerKey']

// An actor's call context: an options object of strings, each optional.
function checkContext(context, name) {
  if (!isPlainObject(context)) throw argTypeError(name, 'an object { requestId, remoteAddress, callerKey }', context)
  known(context, CONTEXT_OPTIONS, name)
  const out = {}
  for (const k of CONTEXT_OPTIONS) {
    const v = context[k]
    if (v !== undefined && v !== null) out[k] = text(v, `${name}.${k}`)
  }
  return out
}

function checkActor(actor, name = 'actor') {
  if (!isPlainObject(actor)) throw argTypeError(name, 'an object { account, user, role, context? }', actor)
  // Each field read once; a fresh object: the addon reads exactly these (other fields are ignored).
  const { account, user, role, context } = actor
  const out = { account: text(account, `${name}.account`), user: text(user, `${name}.user`), role: text(role, `${name}.role`) }
  if (context !== undefined && context !== null) out.context = checkContext(context, `${name}.context`)
  return out
}

const getTime = Date.prototype.getTime

// A Date's time value, read from its internal slot (a Date of another realm
// works; a Proxy or an object posing as a Date does not). The addon takes the
// number and checks its range (NaN, before 1970, beyond what it can give back
// are ERR_INVALID_INPUT from Rust).
function checkDate(value, name) {
  try {
    return getTime.call(value)
  } catch {
    throw argTypeError(name, 'a Date', value)
  }
}

const GENERAL_KEY_OPTIONS = ['readOnly', 'expiresAt']
const KEY_OPTIONS = ['expiresAt']

function checkKeyOptions(options, name, general) {
  if (options === undefined || options === null) return undefined
  if (!isPlainObject(options)) throw argTypeError(name, 'an object', options)
  known(options, general ? GENERAL_KEY_OPTIONS : KEY_OPTIONS, name)
  const out = {}
  if (general) {
    const readOnly = options.readOnly
    if (readOnly !== undefined) {
      if (typeof readOnly !== 'boolean') throw argTypeError(`${name}.readOnly`, 'of type boolean', readOnly)
      out.readOnly = readOnly
    }
  }
  const expiresAt = options.expiresAt
  if (expiresAt !== undefined && expiresAt !== null) out.expiresAt = checkDate(expiresAt, `${name}.expiresAt`)
  return out
}

// Far more than the core takes (it refuses more than 64 with its own message):
// only a bound on what is read from an array-like whose length lies.
const MAX_SCOPES_READ = 4096

function checkScopes(scopes, name = 'scopes') {
  if (!Array.isArray(scopes)) throw argTypeError(name, 'an array of strings', scopes)
  // The length and each element read once, into a fresh array: a Proxy or a
  // getter that changes the array while it is read cannot reach the addon.
  const n = scopes.length
  if (!Number.isSafeInteger(n) || n < 0) throw argTypeError(name, 'an array of strings', scopes)
  if (n > MAX_SCOPES_READ) throw invalidInput(`invalid ${name}: too many scopes`, name)
  const out = new Array(n)
  for (let i = 0; i < n; i++) out[i] = text(scopes[i], `${name}[${i}]`)
  return out
}

const ROTATE_OPTIONS = ['graceMs']

function checkRotateOptions(options, name = 'options') {
  if (!isPlainObject(options)) throw argTypeError(name, 'an object { graceMs }', options)
  known(options, ROTATE_OPTIONS, name)
  const graceMs = options.graceMs
  // NaN, negative and huge numbers are the addon's to refuse (ERR_INVALID_INPUT, field 'grace').
  if (typeof graceMs !== 'number') throw argTypeError(`${name}.graceMs`, 'a number of milliseconds', graceMs)
  return { graceMs }
}

// A number of milliseconds; its range is the addon's to check.
const millis = (name) => (v) => {
  if (typeof v !== 'number') throw argTypeError(name, 'a number of milliseconds', v)
  return v
}

// An array of strings, its length and each element read once into a fresh array.
function checkStrings(values, name, max) {
  if (!Array.isArray(values)) throw argTypeError(name, 'an array of strings', values)
  const n = values.length
  if (!Number.isSafeInteger(n) || n < 0) throw argTypeError(name, 'an array of strings', values)
  if (n > max) throw invalidInput(`invalid ${name}: too many values`, name)
  const out = new Array(n)
  for (let i = 0; i < n; i++) out[i] = text(values[i], `${name}[${i}]`)
  return out
}

const AUDIT_QUERY = ['account', 'keyId', 'actor', 'actions', 'since', 'until', 'limit', 'cursor']

function checkAuditQuery(query, name = 'query') {
  if (!isPlainObject(query)) throw argTypeError(name, 'an object { account, keyId, actor, actions, since, until, limit, cursor }', query)
  known(query, AUDIT_QUERY, name)
  const { account, keyId, actor, actions, since, until, limit, cursor } = query
  const out = { account: text(account, `${name}.account`) }
  if (keyId !== undefined && keyId !== null) out.keyId = text(keyId, `${name}.keyId`)
  if (actor !== undefined && actor !== null) out.actor = text(actor, `${name}.actor`)
  // Far more than there are actions: a bound on what is read from an array-like whose length lies.
  if (actions !== undefined && actions !== null) out.actions = checkStrings(actions, `${name}.actions`, 64)
  if (since !== undefined && since !== null) out.since = checkDate(since, `${name}.since`)
  if (until !== undefined && until !== null) out.until = checkDate(until, `${name}.until`)
  if (limit !== undefined && limit !== null) {
    // Whole numbers from 1 to 1000 are the addon's to check (ERR_INVALID_INPUT, field 'limit').
    if (typeof limit !== 'number') throw argTypeError(`${name}.limit`, 'a number', limit)
    out.limit = limit
  }
  if (cursor !== undefined && cursor !== null) out.cursor = text(cursor, `${name}.cursor`)
  return out
}

const SETTINGS = ['restApi', 'advancedPermissions']

function checkSettings(settings, name = 'settings') {
  if (!isPlainObject(settings)) throw argTypeError(name, 'an object { restApi, advancedPermissions }', settings)
  known(settings, SETTINGS, name)
  const { restApi, advancedPermissions } = settings
  if (typeof restApi !== 'boolean') throw argTypeError(`${name}.restApi`, 'of type boolean', restApi)
  if (typeof advancedPermissions !== 'boolean') {
    throw argTypeError(`${name}.advancedPermissions`, 'of type boolean', advancedPermissions)
  }
  return { restApi, advancedPermissions }
}

const STORE_KINDS = ['memory', 'sqlite', 'postgres']
const STORE_OPTIONS = [...STORE_KINDS, 'schema', 'outbox']

function checkStore(store) {
  const name = 'options.store'
  if (!isPlainObject(store)) throw argTypeError(name, "an object such as { memory: true }, { sqlite: path } or { postgres: url }", store)
  // Each field read once.
  const given = {}
  for (const k in store) {
    if (!STORE_OPTIONS.includes(k)) {
      throw invalidInput(
        `invalid ${name}: unknown option ${optionName(k)}; name exactly one store, ${STORE_KINDS.map((s) => `{ ${s}: … }`).join(', ')}`,
        name,
      )
    }
    given[k] = store[k]
  }
  const kinds = STORE_KINDS.filter((k) => given[k] !== undefined)
  if (kinds.length !== 1) {
    throw invalidInput(`invalid ${name}: name exactly one store, ${STORE_KINDS.map((k) => `{ ${k}: … }`).join(', ')}`, name)
  }
  const kind = kinds[0]
  if (given.schema !== undefined && kind !== 'postgres') {
    throw invalidInput(`invalid ${name}: 'schema' goes only with { postgres: url }`, `${name}.schema`)
  }
  if (given.outbox !== undefined) {
    if (kind === 'memory') {
      throw invalidInput(`invalid ${name}: 'outbox' goes only with { sqlite: path } or { postgres: url }`, `${name}.outbox`)
    }
    if (typeof given.outbox !== 'boolean') throw argTypeError(`${name}.outbox`, 'of type boolean', given.outbox)
  }
  if (kind === 'memory') {
    if (typeof given.memory !== 'boolean') throw argTypeError(`${name}.memory`, 'of type boolean', given.memory)
    return { memory: given.memory }
  }
  if (kind === 'sqlite') {
    let path = given.sqlite
    if (path instanceof URL) path = require('node:url').fileURLToPath(path)
    if (typeof path !== 'string') throw argTypeError(`${name}.sqlite`, 'a path (string or file: URL)', path)
    text(path, `${name}.sqlite`)
    if (path.length === 0) throw invalidInput(`invalid ${name}.sqlite: must not be empty`, `${name}.sqlite`)
    if (path.includes('\0')) throw invalidInput(`invalid ${name}.sqlite: contains a NUL character`, `${name}.sqlite`)
    if (Buffer.byteLength(path) > 4096) throw invalidInput(`invalid ${name}.sqlite: must be at most 4096 bytes`, `${name}.sqlite`)
    return given.outbox === undefined ? { sqlite: path } : { sqlite: path, outbox: given.outbox }
  }
  // Never echo the URL: it may hold a password.
  const url = given.postgres
  if (typeof url !== 'string') throw argTypeError(`${name}.postgres`, "a URL string ('postgres://user@host:port/db')", url)
  text(url, `${name}.postgres`)
  if (url.length === 0) throw invalidInput(`invalid ${name}.postgres: must not be empty`, `${name}.postgres`)
  const out = { postgres: url }
  if (given.schema !== undefined) out.schema = text(given.schema, `${name}.schema`)
  if (given.outbox !== undefined) out.outbox = given.outbox
  return out
}

const FALLBACKS = ['local', 'deny', 'allow']
const LIMITER_OPTIONS = ['redis', 'fallback', 'prefix', 'timeoutMs']

function checkRateLimiter(limiter) {
  const name = 'options.rateLimiter'
  if (!isPlainObject(limiter)) throw argTypeError(name, 'an object { redis: url }', limiter)
  known(limiter, LIMITER_OPTIONS, name)
  const { redis, fallback, prefix, timeoutMs } = limiter
  if (typeof redis !== 'string') throw argTypeError(`${name}.redis`, "a URL string ('redis://host:port/')", redis)
  const out = { redis: text(redis, `${name}.redis`) }
  if (fallback !== undefined) {
    if (typeof fallback === 'string') text(fallback, `${name}.fallback`)
    if (!FALLBACKS.includes(fallback)) throw argTypeError(`${name}.fallback`, "'local', 'deny' or 'allow'", fallback)
    out.fallback = fallback
  }
  if (prefix !== undefined) out.prefix = text(prefix, `${name}.prefix`)
  if (timeoutMs !== undefined) {
    if (!Number.isInteger(timeoutMs) || timeoutMs < 1 || timeoutMs > 0xffffffff) {
      throw argTypeError(`${name}.timeoutMs`, 'a positive integer', timeoutMs)
    }
    out.timeoutMs = timeoutMs
  }
  return out
}

const KEYRING_OPTIONS = ['pepper', 'store', 'rateLimits', 'rateLimiter', 'auditCapacity', 'rotationQuietMs', 'metrics', 'clock']

// [the options for the addon, the clock it takes on its own].
function checkKeyringOptions(options) {
  if (options === undefined || options === null) return [undefined, undefined]
  if (!isPlainObject(options)) throw argTypeError('options', 'an object', options)
  known(options, KEYRING_OPTIONS, 'options')
  const { pepper, store, rateLimits, rateLimiter, auditCapacity, rotationQuietMs, metrics, clock } = options
  if (clock !== undefined && !(clock instanceof binding.ManualClock)) throw argTypeError('options.clock', 'a ManualClock', clock)
  const out = {}
  if (pepper !== undefined) {
    if (typeof pepper === 'string') out.pepper = text(pepper, 'options.pepper')
    else if (pepper instanceof Uint8Array) out.pepper = new Uint8Array(pepper)
    else throw argTypeError('options.pepper', 'a string or a Uint8Array', pepper)
  }
  if (store !== undefined) out.store = checkStore(store)
  if (rateLimiter !== undefined) out.rateLimiter = checkRateLimiter(rateLimiter)
  if (rateLimits !== undefined) out.rateLimits = checkRateLimits(rateLimits)
  if (auditCapacity !== undefined) {
    if (!Number.isInteger(auditCapacity) || auditCapacity < 1 || auditCapacity > 0xffffffff) {
      throw argTypeError('options.auditCapacity', 'a positive integer', auditCapacity)
    }
    out.auditCapacity = auditCapacity
  }
  if (rotationQuietMs !== undefined) {
    if (!Number.isSafeInteger(rotationQuietMs) || rotationQuietMs < 0) {
      throw argTypeError('options.rotationQuietMs', 'a non-negative integer (milliseconds)', rotationQuietMs)
    }
    out.rotationQuietMs = rotationQuietMs
  }
  if (metrics !== undefined) {
    if (typeof metrics !== 'boolean') throw argTypeError('options.metrics', 'a boolean', metrics)
    out.metrics = metrics
  }
  return [out, clock]
}

const LIMIT_CLASSES = ['generalKey', 'user', 'scopedAccount', 'eventsKey']
const LIMIT_FIELDS = ['requests', 'windowMs']

// A limit, or false for one made unlimited (`null`): napi reads null and an
// absent field alike, so the addon takes `false` for it.
function checkLimit(l, name) {
  if (l === null) return false
  if (!isPlainObject(l)) throw argTypeError(name, 'an object { requests, windowMs } or null', l)
  known(l, LIMIT_FIELDS, name)
  const limit = {}
  for (const f of LIMIT_FIELDS) {
    const v = l[f]
    if (!Number.isInteger(v) || v < 1 || v > 0xffffffff) throw argTypeError(`${name}.${f}`, 'a positive integer', v)
    limit[f] = v
  }
  return limit
}

// The classes named in `limits` (refusing any other name but `others`), checked, into `out`.
function checkClassLimits(limits, name, others, out) {
  for (const k in limits) {
    if (!LIMIT_CLASSES.includes(k) && !others.includes(k)) {
      const all = [...others, ...LIMIT_CLASSES]
      throw invalidInput(`invalid ${name}: unknown option ${optionName(k)}; the options are ${all.join(', ')}`, name)
    }
  }
  for (const cls of LIMIT_CLASSES) {
    const l = limits[cls]
    if (l !== undefined) out[cls] = checkLimit(l, `${name}.${cls}`)
  }
  return out
}

// An object of names to values (account ids, key ids), each read once into a fresh object.
function checkRecord(record, name, each) {
  if (!isPlainObject(record)) throw argTypeError(name, 'an object', record)
  const out = {}
  for (const k of Object.keys(record)) {
    text(k, name)
    out[k] = each(record[k], `${name}[${optionName(k)}]`)
  }
  return out
}

function checkRateLimits(limits) {
  const name = 'options.rateLimits'
  if (typeof limits === 'string') return text(limits, name)
  if (!isPlainObject(limits)) {
    throw argTypeError(name, "'pagerduty' or an object { pagerduty, generalKey, user, scopedAccount, eventsKey, accounts, keys }", limits)
  }
  const out = checkClassLimits(limits, name, ['pagerduty', 'accounts', 'keys'], {})
  const { pagerduty, accounts, keys } = limits
  if (pagerduty !== undefined) {
    if (typeof pagerduty !== 'boolean') throw argTypeError(`${name}.pagerduty`, 'of type boolean', pagerduty)
    out.pagerduty = pagerduty
  }
  if (accounts !== undefined) {
    out.accounts = checkRecord(accounts, `${name}.accounts`, (per, at) => {
      if (!isPlainObject(per)) throw argTypeError(at, 'an object { generalKey, user, scopedAccount, eventsKey }', per)
      return checkClassLimits(per, at, [], {})
    })
  }
  if (keys !== undefined) out.keys = checkRecord(keys, `${name}.keys`, checkLimit)
  return out
}

// Reads { api, method, scope } in JavaScript (cheaper than through napi) and
// turns the common requests into one number for the addon: 0 for the Events
// API, 1..7 for a REST GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS; -1 for
// anything else, which goes to the addon by name.
function requestCode(api, method) {
  if (api === 'events') return 0
  if (api !== 'rest') return -1
  switch (method) {
    case 'GET':
      return 1
    case 'HEAD':
      return 2
    case 'POST':
      return 3
    case 'PUT':
      return 4
    case 'PATCH':
      return 5
    case 'DELETE':
      return 6
    case 'OPTIONS':
      return 7
    default:
      return -1
  }
}

const REQUEST_FIELDS = ['api', 'method', 'scope', 'remoteAddress', 'path']

// A name other than those of REQUEST_FIELDS in a request object.
function unknownRequestField(request) {
  for (const k in request) {
    if (k !== 'api' && k !== 'method' && k !== 'scope' && k !== 'remoteAddress' && k !== 'path') {
      return invalidInput(`invalid request: unknown option ${optionName(k)}; the options are ${REQUEST_FIELDS.join(', ')}`, 'request')
    }
  }
  return null
}

// An optional string field of a request: the string, or undefined.
const optionalText = (v, name) => (v === undefined || v === null ? undefined : text(v, name))

// The request's fields, checked: [api, method, scope, remoteAddress, path],
// the last three undefined when not given. Each read once.
function requestParts(request) {
  if (request === undefined || request === null) return ['rest', 'GET', undefined, undefined, undefined]
  if (!isPlainObject(request)) throw argTypeError('request', 'an object { api, method, scope, remoteAddress, path }', request)
  const unknown = unknownRequestField(request)
  if (unknown !== null) throw unknown
  const { api = 'rest', method = 'GET', scope, remoteAddress, path } = request
  if (typeof api !== 'string') throw argTypeError('request.api', "'rest' or 'events'", api)
  text(api, 'request.api')
  text(method, 'request.method')
  return [
    api,
    method,
    optionalText(scope, 'request.scope'),
    optionalText(remoteAddress, 'request.remoteAddress'),
    optionalText(path, 'request.path'),
  ]
}

// Answers of the addon's _authenticate with this bit set name an error template.
const ERROR_BIT = 0x80000000
// What the addon's _tryAuthenticate answers when only authenticate can.
const WOULD_BLOCK = 0xffffffff

const ACTOR = (v) => checkActor(v)
const str = (name) => (v) => text(v, name)

// Argument checks of every management call; the Promise twin `<name>Async`
// takes the same arguments.
const CALLS = {
  createGeneralKey: [ACTOR, str('description'), (v) => checkKeyOptions(v, 'options', true)],
  createUserToken: [ACTOR, str('description'), (v) => checkKeyOptions(v, 'options', false)],
  createIntegrationKey: [ACTOR, str('serviceId'), str('description'), (v) => checkKeyOptions(v, 'options', false)],
  createRoutingKey: [ACTOR, str('orchestrationId'), str('description'), (v) => checkKeyOptions(v, 'options', false)],
  createScopedToken: [ACTOR, str('description'), (v) => checkScopes(v), (v) => checkKeyOptions(v, 'options', false)],
  disable: [ACTOR, str('keyId')],
  enable: [ACTOR, str('keyId')],
  delete: [ACTOR, str('keyId')],
  get: [ACTOR, str('keyId')],
  list: [ACTOR],
  setAccount: [str('account'), (v) => checkSettings(v)],
  account: [str('account')],
  setUserRole: [str('account'), str('user'), str('role')],
  removeUser: [str('account'), str('user')],
  user: [str('account'), str('user')],
  // setUserRole, removeUser and setAccount made for a person: decided (and recorded) by the core.
  setUserRoleAs: [ACTOR, str('user'), str('role')],
  removeUserAs: [ACTOR, str('user')],
  setAccountAs: [ACTOR, (v) => checkSettings(v)],
  rotate: [ACTOR, str('keyId'), (v) => checkRotateOptions(v)],
  endRotation: [ACTOR, str('keyId')],
  auditRecords: [(v) => checkAuditQuery(v)],
  pruneAudit: [millis('olderThanMs')],
}

// The audit events' PagerDuty JSON, as the addon wrote it, by event object.
const pagerDutyJson = new WeakMap()

/** PagerDuty's `GET /audit/records` shape of this audit event: the core's JSON, parsed (a fresh object each call). */
function toPagerDuty() {
  const json = pagerDutyJson.get(this)
  if (json === undefined) throw new TypeError('toPagerDuty() is a method of the audit events this package answers')
  return JSON.parse(json)
}

// An audit event from the addon: its `toPagerDuty` field holds the core's
// JSON; it becomes the (non-enumerable) method that parses it.
function auditEvent(e) {
  pagerDutyJson.set(e, e.toPagerDuty)
  Object.defineProperty(e, 'toPagerDuty', { value: toPagerDuty, writable: true, configurable: true, enumerable: false })
  return e
}

function auditPage(page) {
  for (const e of page.records) auditEvent(e)
  return page
}

// What a call's answer goes through before the caller gets it (sync and Promise twin alike).
const RESULTS = { auditRecords: auditPage }

function checked(checks, args) {
  const out = new Array(checks.length)
  for (let i = 0; i < checks.length; i++) out[i] = checks[i](args[i])
  return out
}

// Passed by Keyring.open to the constructor, with the keyring it opened.
const OPENED = Symbol('apikeys.opened')

class Keyring extends Native {
  // One frozen principal per handle the addon answers (principals.js).
  #principals = new Principals(this)
  // errors[id]: the addon's error templates, fetched once each.
  #errors = []
  // With rate limits: the addon writes each call's status here
  // ([limit, remaining, reset ms, 1 if a limit applied]); null without.
  #status = null

  constructor(options, opened) {
    if (options === OPENED) {
      super(undefined, opened)
    } else {
      const [checked, clock] = checkKeyringOptions(options)
      super(checked, undefined, clock)
    }
    if (this.hasRateLimits) this.#status = new Float64Array(4)
  }

  /**
   * A Keyring as `options` say, its store opened (a PostgreSQL server
   * connected to) off the JavaScript thread.
   */
  static open(options) {
    try {
      return Native.open(...checkKeyringOptions(options)).then((opened) => new this(OPENED, opened))
    } catch (err) {
      return Promise.reject(err)
    }
  }

  authenticate(token, request) {
    text(token, 'token')
    const status = this.#status
    let handle
    if (request === undefined || request === null) {
      handle = status === null ? this._authenticate(token, 1, undefined) : this._authenticateLimited(token, 1, undefined, status)
    } else {
      // requestParts, inlined: no array per call.
      if (!isPlainObject(request)) throw argTypeError('request', 'an object { api, method, scope, remoteAddress, path }', request)
      for (const k in request) {
        if (k !== 'api' && k !== 'method' && k !== 'scope' && k !== 'remoteAddress' && k !== 'path') throw unknownRequestField(request)
      }
      const { api = 'rest', method = 'GET', scope, remoteAddress, path } = request
      if (typeof api !== 'string') throw argTypeError('request.api', "'rest' or 'events'", api)
      text(api, 'request.api')
      text(method, 'request.method')
      if (scope !== undefined && scope !== null) text(scope, 'request.scope')
      // Where the request came from: the addon keeps it with the key's last use (once a minute at most).
      if (remoteAddress !== undefined && remoteAddress !== null) text(remoteAddress, 'request.remoteAddress')
      if (path !== undefined && path !== null) text(path, 'request.path')
      const code = requestCode(api, method)
      if (code < 0) {
        handle = this._authenticateNamed(token, api, method, scope ?? undefined, status ?? undefined, remoteAddress ?? undefined, path ?? undefined)
      } else if (status === null) {
        // Without a place, the three-argument call: napi checks every argument it is given.
        handle =
          remoteAddress == null && path == null
            ? this._authenticate(token, code, scope ?? undefined)
            : this._authenticatePlaced(token, code, scope ?? undefined, remoteAddress ?? undefined, path ?? undefined)
      } else {
        handle = this._authenticateLimited(token, code, scope ?? undefined, status, remoteAddress ?? undefined, path ?? undefined)
      }
    }
    if (handle >= ERROR_BIT) throw this.#error(handle - ERROR_BIT)
    const p = this.#principals.get(handle)
    if (status === null || status[3] === 0) return p
    return withStatus(p, status[0], status[1], status[2])
  }

  // null when only authenticateAsync can answer (the store must read, or a
  // Redis limiter); otherwise exactly what authenticate answers or throws.
  tryAuthenticate(token, request) {
    text(token, 'token')
    const [api, method, scope, remoteAddress, path] = requestParts(request)
    const status = this.#status
    const handle = this._tryAuthenticate(token, api, method, scope, status ?? undefined, remoteAddress, path)
    if (handle === WOULD_BLOCK) return null
    if (handle >= ERROR_BIT) throw this.#error(handle - ERROR_BIT)
    const p = this.#principals.get(handle)
    if (status === null || status[3] === 0) return p
    return withStatus(p, status[0], status[1], status[2])
  }

  authenticateAsync(token, request) {
    try {
      text(token, 'token')
      const [api, method, scope, remoteAddress, path] = requestParts(request)
      return this._authenticateAsync(token, api, method, scope, remoteAddress, path).then((answer) => {
        const p = this.#principals.get(answer[0])
        return answer.length < 4 ? p : withStatus(p, answer[1], answer[2], answer[3])
      })
    } catch (err) {
      return Promise.reject(err)
    }
  }

  /**
   * apikeys/express's REST check for one route, in one addon call: a
   * function `(authorization, method, remoteAddress, path)` — the request's
   * Authorization values as node:http gives them (one string; for none or
   * several it answers `undefined`), its method and place —
   * answering the principal `authenticate` answers, throwing `reject(refusal)`
   * for the refusal the Rust adapter renders (a missing or malformed header,
   * or any error of the check), or answering `undefined` when this call
   * cannot take the request (a method without a number, a place that is
   * not text): then the middleware takes the general path, which answers
   * as before. `null` instead of a function for a keyring whose principals
   * carry a per-call rate limit status, or whose `authenticate` a subclass
   * replaced: the middleware must call that one. Throws `ERR_INVALID_INPUT`
   * for a scope that does not parse.
   * @internal
   */
  _restChecker(scope, reject) {
    if (this.#status !== null || this.authenticate !== Keyring.prototype.authenticate) return null
    const route = this._restRoute(scope ?? undefined) * 8
    const principals = this.#principals
    return (authorization, method, remoteAddress, path) => {
      // An authenticate put on the instance later (a test's spy) is called, as before.
      if (this.authenticate !== Keyring.prototype.authenticate) return undefined
      // One Authorization header, the usual request; none or several: the general path.
      if (typeof authorization !== 'string') return undefined
      const code = requestCode('rest', method)
      if (code < 0) return undefined
      if (remoteAddress !== undefined && remoteAddress !== null && typeof remoteAddress !== 'string') return undefined
      if (path !== undefined && path !== null && typeof path !== 'string') return undefined
      const answer = this._restCheck(authorization, route + code, remoteAddress ?? undefined, path ?? undefined)
      if (typeof answer !== 'number') throw reject(answer)
      return principals.get(answer)
    }
  }

  auditTrail() {
    const events = super.auditTrail()
    for (const e of events) auditEvent(e)
    return events
  }

  // The same Error the addon throws for this failure: code, status, pdCode
  // (and field) enumerable, reason not.
  #error(id) {
    let t = this.#errors[id]
    if (t === undefined) {
      t = this._errorTemplate(id)
      while (this.#errors.length <= id) this.#errors.push(undefined)
      this.#errors[id] = t
    }
    const [code, message, status, pdCode, reason, field] = t
    const err = new Error(message)
    err.code = code
    err.status = status
    err.pdCode = pdCode
    if (field !== undefined && field !== null) err.field = field
    Object.defineProperty(err, 'reason', { value: reason, writable: true, configurable: true })
    return err
  }
}

for (const [name, checks] of Object.entries(CALLS)) {
  const sync = Native.prototype[name]
  const promise = Native.prototype[`${name}Async`]
  if (typeof sync !== 'function' || typeof promise !== 'function') {
    throw new Error(`apikeys: the native addon lacks ${name}; rebuild it with \`npm run build\``)
  }
  const after = RESULTS[name]
  Object.defineProperty(Keyring.prototype, name, {
    configurable: true,
    writable: true,
    value: {
      [name](...args) {
        const answer = sync.apply(this, checked(checks, args))
        return after === undefined ? answer : after(answer)
      },
    }[name],
  })
  Object.defineProperty(Keyring.prototype, `${name}Async`, {
    configurable: true,
    writable: true,
    value: {
      [`${name}Async`](...args) {
        try {
          const answer = promise.apply(this, checked(checks, args))
          return after === undefined ? answer : answer.then(after)
        } catch (err) {
          return Promise.reject(err)
        }
      },
    }[`${name}Async`],
  })
}

// A clock for tests: its times are Dates read as checkDate reads them.
class ManualClock extends binding.ManualClock {
  constructor(start) {
    super(checkDate(start, 'start'))
  }

  set(at) {
    return super.set(checkDate(at, 'at'))
  }

  advance(ms) {
    if (typeof ms !== 'number') throw argTypeError('ms', 'a number of milliseconds', ms)
    return super.advance(ms)
  }
}

// An issued key: `secret` is a getter on the prototype, so it is in no own
// property that util.inspect or JSON.stringify could show (toJSON gives the
// record only). The record is converted once and kept.
const IssuedKey = binding.IssuedKey
const records = new WeakMap()
const nativeRecord = Object.getOwnPropertyDescriptor(IssuedKey.prototype, 'record').get
Object.defineProperty(IssuedKey.prototype, 'record', {
  configurable: true,
  enumerable: false,
  get() {
    let r = records.get(this)
    if (r === undefined) {
      r = nativeRecord.call(this)
      records.set(this, r)
    }
    return r
  },
})
Object.defineProperty(IssuedKey.prototype, 'toJSON', {
  configurable: true,
  writable: true,
  value: function toJSON() {
    return { record: this.record }
  },
})
Object.defineProperty(IssuedKey.prototype, inspect.custom, {
  configurable: true,
  value: function (depth, options, inspectFn = inspect) {
    if (depth < 0) return '[IssuedKey]'
    const inner = inspectFn({ secret: '[REDACTED]', record: this.record }, { ...options, depth: options.depth === null ? null : options.depth - 1 })
    return `IssuedKey ${inner}`
  },
})

function isApiKeyError(e) {
  return (
    e instanceof Error &&
    (ERROR_CODES.has(e.code) || e.code === 'ERR_INVALID_ARG_TYPE') &&
    typeof e.status === 'number' &&
    typeof e.pdCode === 'number'
  )
}

module.exports = { ...binding, Keyring, IssuedKey, ManualClock, isApiKeyError }
