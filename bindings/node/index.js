'use strict'
// The package's entry point: a thin layer over the generated loader
// (binding.js, written by `napi build`). Its types are index.d.ts, generated
// from the Rust doc comments. This layer holds no policy: it
//   - checks argument types, so a wrong type is a TypeError naming the argument
//     (code 'ERR_INVALID_ARG_TYPE') instead of a conversion error,
//   - reads the request object in JavaScript and hands the addon plain strings,
//   - keeps one frozen principal object per (key, role) handle the addon
//     answers, so authenticate builds no object per call (with rate limits,
//     one small frozen copy per call carrying `rateLimit`). Every call still runs
//     every check in Rust: a disabled, deleted or expired key, or a user whose
//     role changed, never gets an old answer (a changed role is another handle),
//   - throws authentication failures as Errors built here from the addon's
//     error templates (a native throw costs twice as much),
//   - hides the key of an IssuedKey from util.inspect and JSON.stringify.

const { inspect } = require('node:util')
const binding = require('./binding.js')

const Native = binding.Keyring
const ERROR_CODES = new Set(Object.values(binding.ErrorCode ?? {}))

function describe(value) {
  if (value === null) return 'null'
  if (Array.isArray(value)) return 'an array'
  return `type ${typeof value}`
}

// Never echoes the value itself: a misplaced argument may be a key.
function argTypeError(name, expected, value) {
  const err = new TypeError(`The "${name}" argument must be ${expected}. Received ${describe(value)}`)
  err.code = 'ERR_INVALID_ARG_TYPE'
  err.status = 400
  err.pdCode = 2001
  err.field = name
  return err
}

function isPlainObject(v) {
  return typeof v === 'object' && v !== null && !Array.isArray(v)
}

function checkString(value, name) {
  if (typeof value !== 'string') throw argTypeError(name, 'of type string', value)
}

function checkActor(actor, name = 'actor') {
  if (!isPlainObject(actor)) throw argTypeError(name, 'an object { account, user, role }', actor)
  checkString(actor.account, `${name}.account`)
  checkString(actor.user, `${name}.user`)
  checkString(actor.role, `${name}.role`)
  // A fresh object: the addon reads exactly these three fields, once.
  return { account: actor.account, user: actor.user, role: actor.role }
}

function checkDate(value, name) {
  if (!(value instanceof Date)) throw argTypeError(name, 'a Date', value)
  if (Number.isNaN(value.getTime())) throw argTypeError(name, 'a valid Date', value)
}

function checkKeyOptions(options, name, general) {
  if (options === undefined || options === null) return undefined
  if (!isPlainObject(options)) throw argTypeError(name, 'an object', options)
  const out = {}
  if (general && options.readOnly !== undefined) {
    if (typeof options.readOnly !== 'boolean') throw argTypeError(`${name}.readOnly`, 'of type boolean', options.readOnly)
    out.readOnly = options.readOnly
  }
  if (options.expiresAt !== undefined && options.expiresAt !== null) {
    checkDate(options.expiresAt, `${name}.expiresAt`)
    out.expiresAt = options.expiresAt
  }
  return out
}

function checkScopes(scopes, name = 'scopes') {
  if (!Array.isArray(scopes)) throw argTypeError(name, 'an array of strings', scopes)
  for (let i = 0; i < scopes.length; i++) checkString(scopes[i], `${name}[${i}]`)
  return scopes.slice()
}

function checkSettings(settings, name = 'settings') {
  if (!isPlainObject(settings)) throw argTypeError(name, 'an object { restApi, advancedPermissions }', settings)
  if (typeof settings.restApi !== 'boolean') throw argTypeError(`${name}.restApi`, 'of type boolean', settings.restApi)
  if (typeof settings.advancedPermissions !== 'boolean') {
    throw argTypeError(`${name}.advancedPermissions`, 'of type boolean', settings.advancedPermissions)
  }
  return { restApi: settings.restApi, advancedPermissions: settings.advancedPermissions }
}

const STORE_KINDS = ['memory', 'sqlite', 'postgres']

function invalidInput(message, field) {
  const err = new Error(message)
  Object.assign(err, { code: 'ERR_INVALID_INPUT', status: 400, pdCode: 2001, field })
  return err
}

function checkStore(store) {
  const name = 'options.store'
  if (!isPlainObject(store)) throw argTypeError(name, "an object such as { memory: true }, { sqlite: path } or { postgres: url }", store)
  const keys = Object.keys(store).filter((k) => store[k] !== undefined)
  const kinds = keys.filter((k) => STORE_KINDS.includes(k))
  const unknown = keys.filter((k) => !STORE_KINDS.includes(k) && k !== 'schema')
  if (unknown.length > 0 || kinds.length !== 1) {
    throw invalidInput(
      `invalid ${name}: name exactly one store, ${STORE_KINDS.map((k) => `{ ${k}: … }`).join(', ')}` +
        (unknown.length > 0 ? ` (not ${unknown.map((k) => `'${k}'`).join(', ')})` : ''),
      name,
    )
  }
  const kind = kinds[0]
  if (store.schema !== undefined && kind !== 'postgres') {
    throw invalidInput(`invalid ${name}: 'schema' goes only with { postgres: url }`, `${name}.schema`)
  }
  if (kind === 'memory') {
    if (typeof store.memory !== 'boolean') throw argTypeError(`${name}.memory`, 'of type boolean', store.memory)
    return { memory: store.memory }
  }
  if (kind === 'sqlite') {
    let path = store.sqlite
    if (path instanceof URL) path = require('node:url').fileURLToPath(path)
    if (typeof path !== 'string') throw argTypeError(`${name}.sqlite`, 'a path (string or file: URL)', path)
    if (path.length === 0) throw invalidInput(`invalid ${name}.sqlite: must not be empty`, `${name}.sqlite`)
    if (path.includes('\0')) throw invalidInput(`invalid ${name}.sqlite: contains a NUL character`, `${name}.sqlite`)
    if (Buffer.byteLength(path) > 4096) throw invalidInput(`invalid ${name}.sqlite: must be at most 4096 bytes`, `${name}.sqlite`)
    return { sqlite: path }
  }
  // Never echo the URL: it may hold a password.
  const url = store.postgres
  if (typeof url !== 'string') throw argTypeError(`${name}.postgres`, "a URL string ('postgres://user@host:port/db')", url)
  if (url.length === 0) throw invalidInput(`invalid ${name}.postgres: must not be empty`, `${name}.postgres`)
  const out = { postgres: url }
  if (store.schema !== undefined) {
    if (typeof store.schema !== 'string') throw argTypeError(`${name}.schema`, 'of type string', store.schema)
    out.schema = store.schema
  }
  return out
}

const FALLBACKS = ['local', 'deny', 'allow']

function checkRateLimiter(limiter) {
  const name = 'options.rateLimiter'
  if (!isPlainObject(limiter)) throw argTypeError(name, 'an object { redis: url }', limiter)
  const unknown = Object.keys(limiter).filter((k) => !['redis', 'fallback', 'prefix', 'timeoutMs'].includes(k))
  if (unknown.length > 0) {
    throw invalidInput(`invalid ${name}: unknown option ${unknown.map((k) => `'${k}'`).join(', ')}; the limiter is { redis: url, fallback?, prefix?, timeoutMs? }`, name)
  }
  if (typeof limiter.redis !== 'string') throw argTypeError(`${name}.redis`, "a URL string ('redis://host:port/')", limiter.redis)
  const out = { redis: limiter.redis }
  if (limiter.fallback !== undefined) {
    if (!FALLBACKS.includes(limiter.fallback)) throw argTypeError(`${name}.fallback`, "'local', 'deny' or 'allow'", limiter.fallback)
    out.fallback = limiter.fallback
  }
  if (limiter.prefix !== undefined) {
    if (typeof limiter.prefix !== 'string') throw argTypeError(`${name}.prefix`, 'of type string', limiter.prefix)
    out.prefix = limiter.prefix
  }
  if (limiter.timeoutMs !== undefined) {
    const t = limiter.timeoutMs
    if (!Number.isInteger(t) || t < 1 || t > 0xffffffff) throw argTypeError(`${name}.timeoutMs`, 'a positive integer', t)
    out.timeoutMs = t
  }
  return out
}

function checkKeyringOptions(options) {
  if (options === undefined || options === null) return undefined
  if (!isPlainObject(options)) throw argTypeError('options', 'an object', options)
  const out = {}
  if (options.pepper !== undefined) {
    if (typeof options.pepper !== 'string' && !(options.pepper instanceof Uint8Array)) {
      throw argTypeError('options.pepper', 'a string or a Uint8Array', options.pepper)
    }
    out.pepper = options.pepper
  }
  if (options.store !== undefined) out.store = checkStore(options.store)
  if (options.rateLimiter !== undefined) out.rateLimiter = checkRateLimiter(options.rateLimiter)
  if (options.rateLimits !== undefined) out.rateLimits = checkRateLimits(options.rateLimits)
  if (options.auditCapacity !== undefined) {
    const c = options.auditCapacity
    if (!Number.isInteger(c) || c < 1 || c > 0xffffffff) {
      throw argTypeError('options.auditCapacity', 'a positive integer', c)
    }
    out.auditCapacity = c
  }
  return out
}

const LIMIT_CLASSES = ['generalKey', 'user', 'scopedAccount', 'eventsKey']

function checkRateLimits(limits) {
  const name = 'options.rateLimits'
  if (typeof limits === 'string') return limits
  if (!isPlainObject(limits)) throw argTypeError(name, "'pagerduty' or an object { generalKey, user, scopedAccount, eventsKey }", limits)
  const unknown = Object.keys(limits).filter((k) => !LIMIT_CLASSES.includes(k))
  if (unknown.length > 0) {
    const err = new Error(`invalid ${name}: unknown class ${unknown.map((k) => `'${k}'`).join(', ')}; the classes are ${LIMIT_CLASSES.join(', ')}`)
    Object.assign(err, { code: 'ERR_INVALID_INPUT', status: 400, pdCode: 2001, field: name })
    throw err
  }
  const out = {}
  for (const cls of LIMIT_CLASSES) {
    const l = limits[cls]
    if (l === undefined || l === null) continue
    if (!isPlainObject(l)) throw argTypeError(`${name}.${cls}`, 'an object { requests, windowMs }', l)
    for (const f of ['requests', 'windowMs']) {
      if (!Number.isInteger(l[f]) || l[f] < 1 || l[f] > 0xffffffff) {
        throw argTypeError(`${name}.${cls}.${f}`, 'a positive integer', l[f])
      }
    }
    out[cls] = { requests: l.requests, windowMs: l.windowMs }
  }
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

function requestParts(request) {
  if (request === undefined || request === null) return ['rest', 'GET', undefined]
  if (!isPlainObject(request)) throw argTypeError('request', 'an object { api, method, scope }', request)
  const { api = 'rest', method = 'GET', scope } = request
  if (typeof api !== 'string') throw argTypeError('request.api', "'rest' or 'events'", api)
  if (typeof method !== 'string') throw argTypeError('request.method', 'of type string', method)
  if (scope !== undefined && scope !== null && typeof scope !== 'string') {
    throw argTypeError('request.scope', 'of type string', scope)
  }
  return [api, method, scope ?? undefined]
}

// Answers of the addon's _authenticate with this bit set name an error template.
const ERROR_BIT = 0x80000000
// What the addon's _tryAuthenticate answers when only authenticate can.
const WOULD_BLOCK = 0xffffffff

const ACTOR = (v) => checkActor(v)
const str = (name) => (v) => (checkString(v, name), v)

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
}

function checked(checks, args) {
  const out = new Array(checks.length)
  for (let i = 0; i < checks.length; i++) out[i] = checks[i](args[i])
  return out
}

// Passed by Keyring.open to the constructor, with the keyring it opened.
const OPENED = Symbol('apikeys.opened')

class Keyring extends Native {
  // principals[slot][role]: one frozen principal per handle the addon answers.
  #principals = []
  // errors[id]: the addon's error templates, fetched once each.
  #errors = []
  // With rate limits: the addon writes each call's status here
  // ([limit, remaining, reset ms, 1 if a limit applied]); null without.
  #status = null

  constructor(options, opened) {
    if (options === OPENED) super(undefined, opened)
    else super(checkKeyringOptions(options))
    if (this.hasRateLimits) this.#status = new Float64Array(4)
  }

  /**
   * A Keyring as `options` say, its store opened (a PostgreSQL server
   * connected to) off the JavaScript thread.
   */
  static open(options) {
    try {
      return Native.open(checkKeyringOptions(options)).then((opened) => new this(OPENED, opened))
    } catch (err) {
      return Promise.reject(err)
    }
  }

  authenticate(token, request) {
    if (typeof token !== 'string') throw argTypeError('token', 'of type string', token)
    const status = this.#status
    let handle
    if (request === undefined || request === null) {
      handle = status === null ? this._authenticate(token, 1, undefined) : this._authenticateLimited(token, 1, undefined, status)
    } else {
      // requestParts, inlined: no array per call.
      if (!isPlainObject(request)) throw argTypeError('request', 'an object { api, method, scope }', request)
      const { api = 'rest', method = 'GET', scope } = request
      if (typeof api !== 'string') throw argTypeError('request.api', "'rest' or 'events'", api)
      if (typeof method !== 'string') throw argTypeError('request.method', 'of type string', method)
      if (scope !== undefined && scope !== null && typeof scope !== 'string') {
        throw argTypeError('request.scope', 'of type string', scope)
      }
      const code = requestCode(api, method)
      if (code < 0) handle = this._authenticateNamed(token, api, method, scope ?? undefined, status ?? undefined)
      else if (status === null) handle = this._authenticate(token, code, scope ?? undefined)
      else handle = this._authenticateLimited(token, code, scope ?? undefined, status)
    }
    if (handle >= ERROR_BIT) throw this.#error(handle - ERROR_BIT)
    const bySlot = this.#principals[handle >>> 4]
    const cached = bySlot === undefined ? undefined : bySlot[handle & 15]
    const p = cached === undefined ? this.#remember(handle) : cached
    if (status === null || status[3] === 0) return p
    return withStatus(p, status[0], status[1], status[2])
  }

  // null when only authenticateAsync can answer (the store must read, or a
  // Redis limiter); otherwise exactly what authenticate answers or throws.
  tryAuthenticate(token, request) {
    if (typeof token !== 'string') throw argTypeError('token', 'of type string', token)
    const [api, method, scope] = requestParts(request)
    const status = this.#status
    const handle = this._tryAuthenticate(token, api, method, scope, status ?? undefined)
    if (handle === WOULD_BLOCK) return null
    if (handle >= ERROR_BIT) throw this.#error(handle - ERROR_BIT)
    const bySlot = this.#principals[handle >>> 4]
    const cached = bySlot === undefined ? undefined : bySlot[handle & 15]
    const p = cached === undefined ? this.#remember(handle) : cached
    if (status === null || status[3] === 0) return p
    return withStatus(p, status[0], status[1], status[2])
  }

  authenticateAsync(token, request) {
    try {
      if (typeof token !== 'string') throw argTypeError('token', 'of type string', token)
      const [api, method, scope] = requestParts(request)
      return this._authenticateAsync(token, api, method, scope).then((answer) => {
        const handle = answer[0]
        const bySlot = this.#principals[handle >>> 4]
        const cached = bySlot === undefined ? undefined : bySlot[handle & 15]
        const p = cached === undefined ? this.#remember(handle) : cached
        return answer.length < 4 ? p : withStatus(p, answer[1], answer[2], answer[3])
      })
    } catch (err) {
      return Promise.reject(err)
    }
  }

  #remember(handle) {
    const p = this._principal(handle)
    p.rateLimit = null
    Object.freeze(p.scopes)
    Object.freeze(p)
    const slot = handle >>> 4
    const cache = this.#principals
    while (cache.length <= slot) cache.push(undefined)
    if (cache[slot] === undefined) cache[slot] = []
    cache[slot][handle & 15] = p
    return p
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
  Object.defineProperty(Keyring.prototype, name, {
    configurable: true,
    writable: true,
    value: {
      [name](...args) {
        return sync.apply(this, checked(checks, args))
      },
    }[name],
  })
  Object.defineProperty(Keyring.prototype, `${name}Async`, {
    configurable: true,
    writable: true,
    value: {
      [`${name}Async`](...args) {
        try {
          return promise.apply(this, checked(checks, args))
        } catch (err) {
          return Promise.reject(err)
        }
      },
    }[`${name}Async`],
  })
}

// A principal with this call's rate limit status: a new frozen object with
// the kept principal's fields, in the same order and with the same fields
// absent (scopes is the same frozen array). Written as literals of fixed
// shapes: twice as fast as `{ ...p, rateLimit }` (bench.js measures the cost).
function withStatus(p, limit, remaining, reset) {
  const rateLimit = Object.freeze({ limit, remaining, reset })
  if (p.owner !== undefined) {
    return Object.freeze({ keyId: p.keyId, kind: p.kind, account: p.account, owner: p.owner, role: p.role, access: p.access, scopes: p.scopes, rateLimit })
  }
  if (p.target !== undefined) {
    return Object.freeze({ keyId: p.keyId, kind: p.kind, account: p.account, access: p.access, scopes: p.scopes, target: p.target, rateLimit })
  }
  return Object.freeze({ keyId: p.keyId, kind: p.kind, account: p.account, access: p.access, scopes: p.scopes, rateLimit })
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

module.exports = { ...binding, Keyring, IssuedKey, isApiKeyError }
