'use strict'
// Express (and plain node:http) middleware for apikeys, speaking PagerDuty's
// conventions:
//
//   const { Keyring } = require('apikeys')
//   const { apikeys } = require('apikeys/express')
//   const auth = apikeys(new Keyring())
//   app.get('/incidents', auth.rest('incidents.read'), (req, res) => res.json({ account: req.apikey.account }))
//   app.post('/incidents', auth.rest('incidents.write'), create)
//   app.post('/v2/enqueue', auth.events(), (req, res) => res.status(202).json({ status: 'success' }))
//
// - REST (`auth.rest(scope?)`): the key from `Authorization: Token token=<key>`
//   (scheme and parameter name in any case, spaces tolerated, the key optionally
//   in double quotes) or `Bearer <key>`, exactly one such header; the method
//   from the request; the scope given to the route (none: the broadest scope).
// - Events (`auth.events()`): the `routing_key` of the JSON body, read up to
//   `maxEventBytes` (512 KiB by default) and judged by the Rust adapter's own
//   parser (`eventRoutingKey`, apikeys_http::routing_key), so Express, axum
//   and the Python middleware give one verdict for one body; `req.body` is
//   the parsed event. When a body parser in front has read the body already:
//     express.raw()  — req.body is the Buffer: judged byte for byte;
//     express.text() — req.body is the decoded string: judged as its UTF-8;
//     express.json() — req.body is the object JSON.parse made: the bytes are
//                      gone, so the object is judged as JSON.stringify writes
//                      it, and the handler gets that same object (whose
//                      routing_key is the key checked). JSON.parse reads some
//                      bodies differently from the core (a duplicate
//                      routing_key: the last wins), so mount auth.events()
//                      before express.json() for PagerDuty's exact answers;
//     a form parser (express.urlencoded()) or any object from a request whose
//                      Content-Type is not JSON, or a number, boolean or null
//                      (a non-strict JSON parser) — 400, "the body must be a
//                      JSON object", as for the same body read here.
//   A body read by something that left no usable req.body is refused at once
//   (500, and a process warning saying why): the middleware never waits for a
//   stream that has ended.
// - The Principal goes to `req.apikey`.
// - Where the request came from goes with it: `req.socket.remoteAddress` and
//   `req.originalUrl` (`req.url` without Express), two fields read per
//   request and handed over as they are. The core keeps them with the key's
//   last use (`KeyRecord.lastUsedFrom`, written at most once a minute per
//   key; the query string dropped); no check depends on them. Behind a
//   proxy, `remoteAddress: (req) => req.ip` takes Express's address instead
//   (its `trust proxy` reading costs from 0.3 to several µs per request).
// - Refusals answer `{"error":{"message":…,"code":…}}` with the status of the
//   error table; 401 adds `WWW-Authenticate: Token`, 429 `retry-after` and the
//   `ratelimit-*` headers. Never a key, never a stack; 5xx say only "an
//   internal error occurred". Answers to a known key carry the `ratelimit-*`
//   headers when the principal reports its limits (`principal.rateLimit`).
//
// - `offThread: true` is for a keyring whose store or limiter may wait on the
//   network or disk: each check is first tried inline with `tryAuthenticate`,
//   which answers from the store's in-memory cache (a key seen before) and
//   never waits; only when it cannot (a key not cached yet, the cache off, a
//   Redis limiter) does it go to `authenticateAsync` (libuv's thread pool).
//
// The middleware uses only node:http's request and response API, so it works
// without Express too (call it as `(req, res, next)`).

const http = require('node:http')
const { eventRoutingKey, Keyring: Native } = require('./index.js')
const { argTypeError, invalidInput, optionName } = require('./args.js')

// apikeys-http's own limits: the longest Authorization value looked at, and
// the default Events body limit (512 KiB, PagerDuty's).
const [MAX_AUTHORIZATION_BYTES, DEFAULT_MAX_EVENT_BYTES] = Native._httpLimits()

/**
 * Why a request was refused, and the answer for it as the Rust adapter
 * renders it (apikeys_http::Rejection::refusal): `refuse` writes its status,
 * headers and body as they are, so Express sends the bytes axum and the
 * Python middleware send.
 */
class Rejection extends Error {
  constructor(refusal) {
    super(refusal.message)
    this.name = 'Rejection'
    this.status = refusal.status
    this.pdCode = refusal.pdCode
    this.kind = refusal.kind
    // Not enumerable, like the core errors' reason: for logs only.
    Object.defineProperty(this, 'reason', { value: refusal.reason, enumerable: false })
    this.retryAfterMs = refusal.retryAfterMs ?? undefined
    Object.defineProperty(this, 'headers', { value: refusal.headers, enumerable: false })
    Object.defineProperty(this, 'body', { value: refusal.body, enumerable: false })
  }
}

// The refusals the middleware meets on its own (apikeys_http::Rejection::named).
const refusal = (name, limit, reason) => new Rejection(Native._refusal(name, limit, reason))
const tooLarge = (limit) => refusal('body_too_large', limit)
const notJson = () => refusal('not_json')
const notAnObject = () => refusal('not_an_object')

// The refusal for an error of the keyring, from what the error carries
// (apikeys_http::Rejection::from_error_parts); anything else thrown is an
// internal error.
function fromError(e) {
  const number = (v) => (typeof v === 'number' ? v : undefined)
  return new Rejection(
    Native._refusalForError(
      number(e?.status) ?? 500,
      number(e?.pdCode) ?? 2000,
      typeof e?.code === 'string' ? e.code : '',
      String(e?.message ?? e),
      String(e?.reason ?? e?.message ?? e),
      number(e?.retryAfter),
      number(e?.limit),
    ),
  )
}

const OPTIONS = ['maxEventBytes', 'offThread', 'remoteAddress']


/**
 * The key in an Authorization header value, or null if it has no accepted
 * form: the Rust adapter's parse (apikeys_http::token_from_authorization).
 */
function tokenFromAuthorization(value) {
  return typeof value === 'string' ? Native._tokenFromAuthorization(value) : null
}

/** The request's Authorization values as node:http received them: undefined, one string, or an array of them. */
function authorizations(req) {
  const raw = req.rawHeaders
  if (!Array.isArray(raw)) return req.headers.authorization
  let value
  let values
  for (let i = 0; i < raw.length; i += 2) {
    if (raw[i].length === 13 && raw[i].toLowerCase() === 'authorization') {
      if (value === undefined) value = raw[i + 1]
      else (values ??= [value]).push(raw[i + 1])
    }
  }
  return values ?? value
}

/** The REST key of a request: exactly one Authorization header (apikeys_http::token_from_authorizations). */
function restToken(req) {
  const key = Native._restToken(authorizations(req))
  if (typeof key === 'string') return key
  throw new Rejection(key)
}

// The core's verdict on an Events body: its routing_key, or a Rejection.
function routingKeyOf(bytes) {
  const verdict = eventRoutingKey(bytes)
  if (typeof verdict === 'string') return verdict
  throw new Rejection(verdict)
}

// The event the handler gets in req.body, from bytes the core accepted (so
// they are one JSON object whose routing_key is `key`).
function parseEvent(bytes, key) {
  let event
  try {
    event = JSON.parse(Buffer.isBuffer(bytes) ? bytes.toString('utf8') : Buffer.from(bytes).toString('utf8'))
  } catch {
    throw notJson()
  }
  if (event === null || typeof event !== 'object' || event.routing_key !== key) {
    throw refusal('routing_key_not_a_string')
  }
  return event
}

function isJsonType(req) {
  const type = req.headers?.['content-type']
  if (typeof type !== 'string') return false
  const media = type.split(';', 1)[0].trim().toLowerCase()
  return media === 'application/json' || (media.startsWith('application/') && media.endsWith('+json'))
}

let warnedUnreadable = false

const unreadable = () => {
  const r = refusal('misconfigured', 0, 'the request body was read before auth.events() and left no req.body it can judge')
  if (!warnedUnreadable) {
    warnedUnreadable = true
    process.emitWarning(
      'apikeys/express: auth.events() found the request body read already by an earlier middleware, ' +
        'with no Buffer, string or object in req.body; mount auth.events() before it (requests are answered 500)',
      { code: 'APIKEYS_EVENTS_BODY_READ' },
    )
  }
  return r
}

// What auth.events() judges, at once when a body parser in front has read
// the stream: [bytes, the object the handler gets, or undefined to parse the bytes].
function takenBody(req, limit) {
  const body = req.body
  if (body instanceof Uint8Array) {
    if (body.length > limit) throw tooLarge(limit)
    return [body, undefined]
  }
  if (typeof body === 'string') {
    if (!body.isWellFormed()) throw notJson()
    const bytes = Buffer.from(body, 'utf8')
    if (bytes.length > limit) throw tooLarge(limit)
    return [bytes, undefined]
  }
  if (body !== null && typeof body === 'object') {
    // A form parser's object (or any object from a body that was not JSON).
    if (!isJsonType(req)) throw notAnObject()
    let json
    try {
      json = JSON.stringify(body)
    } catch {
      throw notJson()
    }
    if (typeof json !== 'string') throw notAnObject()
    const bytes = Buffer.from(json, 'utf8')
    if (bytes.length > limit) throw tooLarge(limit)
    return [bytes, body]
  }
  if (body === undefined) throw unreadable()
  // A number, boolean or null from a non-strict JSON parser.
  throw notAnObject()
}

// Whether something before this middleware read (or is reading) the body.
const bodyTaken = (req) => req.readableEnded === true || req.readableDidRead === true

// Reads the body (up to `limit` bytes), then calls `done(bytes)` or
// `fail(rejection)`, from the stream's own 'end' or 'error' listener (or at
// once for a declared length over the limit): no promise, no microtask turn.
function readBody(req, limit, done, fail) {
  const declared = req.headers['content-length']
  if (declared !== undefined) {
    const length = Native._declaredLength(declared, limit)
    if (typeof length !== 'number') return fail(new Rejection(length))
  }
  let first
  let chunks
  let size = 0
  let over = false
  const stop = () => {
    req.off('data', onData)
    req.off('end', onEnd)
    req.off('error', onError)
  }
  const onData = (c) => {
    size += c.length
    if (size > limit) {
      over = true
      stop()
      req.pause()
      return fail(tooLarge(limit))
    }
    // One chunk (a small event, the usual case) is the body as it came.
    if (first === undefined) first = c
    else (chunks ??= [first]).push(c)
  }
  const onEnd = () => {
    stop()
    if (!over) done(chunks !== undefined ? Buffer.concat(chunks, size) : (first ?? Buffer.alloc(0)))
  }
  const onError = () => {
    stop()
    req.pause()
    fail(refusal('unreadable_body'))
  }
  req.on('data', onData)
  req.on('end', onEnd)
  req.on('error', onError)
}

// principal.rateLimit: { limit, remaining, reset } with reset in milliseconds;
// the header gives whole seconds, rounded up.
function setRateLimitHeaders(res, rl) {
  if (!rl) return
  res.setHeader('ratelimit-limit', String(rl.limit))
  res.setHeader('ratelimit-remaining', String(rl.remaining))
  res.setHeader('ratelimit-reset', String(Math.max(0, Math.ceil((Number(rl.reset) || 0) / 1000))))
}

// Writes a Rejection as apikeys-http rendered it.
function refuse(res, r, closeConnection = false) {
  res.statusCode = r.status
  for (const [name, value] of r.headers) res.setHeader(name, value)
  // The rest of an unread body is not read: close the connection after answering.
  if (closeConnection) res.setHeader('connection', 'close')
  res.locals && (res.locals.apikeysRejection = r)
  res.end(r.body)
}

// The principal reaches the handler as `req.apikey`. Express gives every
// request its application's prototype (Object.setPrototypeOf in app.handle),
// and a property added to such an object afterwards costs V8 about as much as
// the key check itself (0.7-0.9 us in a server; docs/performance.md). So on
// Express the principal is kept in `res.locals` (an object Express makes per
// request) under a symbol, and `req.apikey` is a getter reading it, defined
// once on Express's request prototype (the one every application's request
// prototype inherits from, so it holds in mounted sub-applications too).
// Assigning `req.apikey` still works: the setter makes an own property, as
// before. Without Express (node:http, no res.locals) it stays an own property.
const PRINCIPAL = Symbol('apikeys.principal')
// Prototype -> whether the getter is there (true) or cannot be (false).
const carriers = new WeakMap()

function carrierOf(req) {
  const own = Object.getPrototypeOf(req)
  let known = carriers.get(own)
  if (known !== undefined) return known
  known = false
  // Express: req -> app.request -> Express's request -> IncomingMessage.prototype.
  const shared = own === null ? null : Object.getPrototypeOf(own)
  const base = shared === null ? null : Object.getPrototypeOf(shared)
  if (base !== null && own !== http.IncomingMessage.prototype && shared !== http.IncomingMessage.prototype && base === http.IncomingMessage.prototype) {
    const had = Object.getOwnPropertyDescriptor(shared, 'apikey')
    if (had === undefined && !('apikey' in shared)) {
      Object.defineProperty(shared, 'apikey', {
        configurable: true,
        enumerable: false,
        get() {
          const locals = this.res?.locals
          return locals == null ? undefined : locals[PRINCIPAL]
        },
        set(value) {
          Object.defineProperty(this, 'apikey', { value, writable: true, enumerable: true, configurable: true })
        },
      })
      known = true
    } else {
      known = had !== undefined && had.get !== undefined && carriers.get(shared) === true
    }
    carriers.set(shared, known)
  }
  carriers.set(own, known)
  return known
}

// A request let through: its principal to the handler, the rate-limit headers, next().
function accept(req, res, next, principal) {
  const locals = res.locals
  if (locals != null && req.res === res && carrierOf(req) && !Object.hasOwn(req, 'apikey')) locals[PRINCIPAL] = principal
  else req.apikey = principal
  setRateLimitHeaders(res, principal.rateLimit)
  next()
}

// The request's path as received: Express's originalUrl (req.url is cut
// below a mount point), node:http's url. The core drops the query string.
const pathOf = (req) => req.originalUrl ?? req.url

/**
 * Middleware factories bound to a Keyring.
 * @param {import('./index').Keyring} keyring
 * @param {{ maxEventBytes?: number, offThread?: boolean, remoteAddress?: (req: import('node:http').IncomingMessage) => string | undefined | null }} [options]
 */
function apikeys(keyring, options = {}) {
  if (!keyring || typeof keyring.authenticate !== 'function') {
    throw new TypeError('The "keyring" argument must be a Keyring')
  }
  if (options === undefined || options === null) options = {}
  if (typeof options !== 'object' || Array.isArray(options)) throw argTypeError('options', 'an object', options)
  for (const k in options) {
    if (!OPTIONS.includes(k)) {
      throw invalidInput(`invalid options: unknown option ${optionName(k)}; the options are ${OPTIONS.join(', ')}`, 'options')
    }
  }
  const { maxEventBytes: max = DEFAULT_MAX_EVENT_BYTES, offThread: off, remoteAddress: addressOf } = options
  if (!Number.isSafeInteger(max) || max < 1) throw argTypeError('options.maxEventBytes', 'a positive integer', max)
  if (off !== undefined && typeof off !== 'boolean') throw argTypeError('options.offThread', 'of type boolean', off)
  if (addressOf !== undefined && typeof addressOf !== 'function') {
    throw argTypeError('options.remoteAddress', 'a function (req) => string', addressOf)
  }
  // The caller's address: the socket's (a field node:http caches), or what the application's function says.
  const remoteAddress = addressOf === undefined ? (req) => req.socket?.remoteAddress : addressOf
  const maxEventBytes = max
  // offThread: a check that would wait (a cold PostgreSQL or SQLite lookup, a
  // Redis limiter) runs with authenticateAsync, on libuv's thread pool, so it
  // never stalls the event loop; one answered from memory (tryAuthenticate:
  // a warm key) runs inline, without the thread hop. A stand-in keyring
  // without tryAuthenticate always goes to the pool.
  const offThread = off === true
  const tries = offThread && typeof keyring.tryAuthenticate === 'function'
  const check = offThread
    ? (token, request) => {
        const principal = tries ? keyring.tryAuthenticate(token, request) : null
        return principal !== null ? principal : keyring.authenticateAsync(token, request)
      }
    : (token, request) => keyring.authenticate(token, request)

  function rest(scope) {
    if (scope !== undefined && typeof scope !== 'string') {
      throw new TypeError('The "scope" argument must be a string or undefined')
    }
    // A bad scope is a programming error: found when the route is declared.
    if (scope !== undefined) {
      try {
        keyring.authenticate('', { api: 'rest', method: 'GET', scope })
      } catch (e) {
        if (e && e.code === 'ERR_INVALID_INPUT') throw e
      }
    }
    if (offThread) {
      return function apikeysRest(req, res, next) {
        let token
        let principal = null
        let request
        try {
          request = { api: 'rest', method: req.method, scope, remoteAddress: remoteAddress(req), path: pathOf(req) }
          token = restToken(req)
          if (tries) principal = keyring.tryAuthenticate(token, request)
        } catch (e) {
          return refuse(res, e instanceof Rejection ? e : fromError(e))
        }
        if (principal !== null) return accept(req, res, next, principal)
        keyring.authenticateAsync(token, request).then(
          (principal) => accept(req, res, next, principal),
          (e) => refuse(res, e instanceof Rejection ? e : fromError(e)),
        )
      }
    }
    // This package's own Keyring reads the header and checks the key in one
    // addon call (Keyring#_restChecker); a stand-in, a subclass with its own
    // authenticate, or a keyring with rate limits takes the general path.
    const checker = typeof keyring._restChecker === 'function' ? keyring._restChecker(scope, (r) => new Rejection(r)) : null
    // The general path: the key read by the addon, then keyring.authenticate.
    const general = function apikeysRest(req, res, next) {
      let principal
      try {
        const token = restToken(req)
        principal = keyring.authenticate(token, { api: 'rest', method: req.method, scope, remoteAddress: remoteAddress(req), path: pathOf(req) })
      } catch (e) {
        return refuse(res, e instanceof Rejection ? e : fromError(e))
      }
      accept(req, res, next, principal)
    }
    if (checker === null) return general
    return function apikeysRest(req, res, next) {
      let address
      try {
        address = remoteAddress(req)
      } catch {
        // An application's address function that throws: the general path
        // reads the header first, as it always has, and answers the same.
        return general(req, res, next)
      }
      let principal
      try {
        principal = checker(authorizations(req), req.method, address, pathOf(req))
      } catch (e) {
        return refuse(res, e instanceof Rejection ? e : fromError(e))
      }
      if (principal === undefined) return general(req, res, next)
      accept(req, res, next, principal)
    }
  }

  function events() {
    return function apikeysEvents(req, res, next) {
      const taken = bodyTaken(req)
      const fail = (e) => {
        const r = e instanceof Rejection ? e : fromError(e)
        // The rest of a body cut off at the limit is not read: close after answering.
        refuse(res, r, r.kind === 'body_too_large' && !taken)
      }
      // The verdict, once the bytes are in hand: synchronous from the
      // stream's 'end' listener (or at once for a body read already); a
      // promise only for a check that goes to the thread pool (offThread).
      const judge = (bytes, parsed) => {
        let key
        let principal = null
        try {
          key = routingKeyOf(bytes)
          const request = { api: 'events', remoteAddress: remoteAddress(req), path: pathOf(req) }
          if (!offThread) principal = keyring.authenticate(key, request)
          else {
            if (tries) principal = keyring.tryAuthenticate(key, request)
            if (principal === null) {
              keyring.authenticateAsync(key, request).then((p) => admit(bytes, parsed, key, p), fail)
              return
            }
          }
        } catch (e) {
          return fail(e)
        }
        admit(bytes, parsed, key, principal)
      }
      const admit = (bytes, parsed, key, principal) => {
        try {
          req.body = parsed === undefined ? parseEvent(bytes, key) : parsed
          // Inside the try, as when this ran in a promise: a `next` that
          // throws (node:http, no Express to catch it) is answered, not a crash.
          accept(req, res, next, principal)
        } catch (e) {
          fail(e)
        }
      }
      if (!taken) return readBody(req, maxEventBytes, judge, fail)
      let body
      try {
        body = takenBody(req, maxEventBytes)
      } catch (e) {
        return fail(e)
      }
      judge(body[0], body[1])
    }
  }

  return { rest, events }
}

module.exports = {
  apikeys,
  Rejection,
  tokenFromAuthorization,
  DEFAULT_MAX_EVENT_BYTES,
  MAX_AUTHORIZATION_BYTES,
}
// The endpoints written once in Rust (management API and page, secret-scanning receiver): endpoints.js.
Object.assign(module.exports, require('./endpoints.js'))
