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
//   `maxEventBytes` (512 KiB by default); `req.body` is the parsed event. A body
//   already parsed by `express.json()` is used as it is.
// - The Principal goes to `req.apikey`.
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

const MAX_AUTHORIZATION_BYTES = 1024
const DEFAULT_MAX_EVENT_BYTES = 512 * 1024

class Rejection extends Error {
  constructor(status, pdCode, kind, message, extra = {}) {
    super(message)
    this.name = 'Rejection'
    this.status = status
    this.pdCode = pdCode
    this.kind = kind
    // Not enumerable, like the core errors' reason: for logs only.
    Object.defineProperty(this, 'reason', { value: extra.reason ?? message, enumerable: false })
    this.retryAfterMs = extra.retryAfterMs
    this.limit = extra.limit
  }
}

const missingKey = () =>
  new Rejection(401, 2006, 'missing_key', "no API key: send the header 'Authorization: Token token=<key>'")
const malformed = () =>
  new Rejection(
    401,
    2006,
    'malformed_authorization',
    "the Authorization header must read 'Token token=<key>' or 'Bearer <key>'",
  )
const duplicate = () => new Rejection(400, 2001, 'duplicate_authorization', 'send exactly one Authorization header')
const tooLarge = (limit) =>
  new Rejection(400, 2001, 'body_too_large', `the request body is larger than the limit of ${limit} bytes`)
const invalidBody = (message) => new Rejection(400, 2001, 'invalid_body', message)
const missingRoutingKey = () =>
  new Rejection(400, 2001, 'missing_routing_key', "the event has no 'routing_key' (the integration or routing key)")

function fromError(e) {
  const status = typeof e?.status === 'number' ? e.status : 500
  const pdCode = typeof e?.pdCode === 'number' ? e.pdCode : 2000
  if (status >= 500) {
    return new Rejection(status, pdCode, 'internal', 'an internal error occurred', { reason: String(e?.reason ?? e) })
  }
  return new Rejection(status, pdCode, String(e.code ?? 'error'), String(e.message), {
    reason: e.reason,
    retryAfterMs: status === 429 ? Number(e.retryAfter ?? 1000) : undefined,
    limit: e.limit,
  })
}

const isSpace = (c) => c === ' ' || c === '\t'
const trim = (s) => s.replace(/^[ \t]+|[ \t]+$/g, '')

/** The key in an Authorization header value, or null if it has no accepted form. */
function tokenFromAuthorization(value) {
  if (typeof value !== 'string' || value.length > MAX_AUTHORIZATION_BYTES) return null
  value = trim(value)
  let split = -1
  for (let i = 0; i < value.length; i++) {
    if (isSpace(value[i])) {
      split = i
      break
    }
  }
  if (split < 0) return null
  const scheme = value.slice(0, split).toLowerCase()
  let rest = trim(value.slice(split))
  let key
  if (scheme === 'token') {
    if (rest.slice(0, 5).toLowerCase() !== 'token') return null
    rest = trim(rest.slice(5))
    if (rest[0] !== '=') return null
    key = trim(rest.slice(1))
    if (key.length >= 2 && key[0] === '"' && key[key.length - 1] === '"') key = key.slice(1, -1)
  } else if (scheme === 'bearer') {
    key = rest
  } else {
    return null
  }
  if (key.length === 0 || !/^[\x21\x23-\x7e]+$/.test(key)) return null
  return key
}

/** The REST key of a request: exactly one Authorization header (counted in rawHeaders). */
function restToken(req) {
  const raw = req.rawHeaders
  let value = null
  let count = 0
  if (Array.isArray(raw)) {
    for (let i = 0; i < raw.length; i += 2) {
      if (raw[i].length === 13 && raw[i].toLowerCase() === 'authorization') {
        count++
        value = raw[i + 1]
      }
    }
  } else if (req.headers.authorization !== undefined) {
    count = 1
    value = req.headers.authorization
  }
  if (count === 0) throw missingKey()
  if (count > 1) throw duplicate()
  const key = tokenFromAuthorization(value)
  if (key === null) throw malformed()
  return key
}

function routingKeyOf(event) {
  if (event === null || typeof event !== 'object' || Array.isArray(event)) {
    throw invalidBody('the body must be a JSON object')
  }
  const key = event.routing_key
  if (key === undefined || key === null) throw missingRoutingKey()
  if (typeof key !== 'string') throw invalidBody("'routing_key' must be one string")
  return key
}

function parseEvent(buf) {
  const text = buf.toString('utf8')
  if (!/^\s*\{/.test(text)) throw invalidBody('the body must be a JSON object')
  try {
    return JSON.parse(text)
  } catch {
    throw invalidBody('the body is not valid JSON')
  }
}

function readBody(req, limit) {
  return new Promise((resolve, reject) => {
    const declared = Number(req.headers['content-length'])
    if (Number.isFinite(declared) && declared > limit) return reject(tooLarge(limit))
    const chunks = []
    let size = 0
    let done = false
    const finish = (err, value) => {
      if (done) return
      done = true
      req.off('data', onData)
      req.off('end', onEnd)
      req.off('error', onError)
      if (err) {
        req.pause()
        reject(err)
      } else {
        resolve(value)
      }
    }
    const onData = (c) => {
      size += c.length
      if (size > limit) return finish(tooLarge(limit))
      chunks.push(c)
    }
    const onEnd = () => finish(null, Buffer.concat(chunks, size))
    const onError = () => finish(invalidBody('the body could not be read'))
    req.on('data', onData)
    req.on('end', onEnd)
    req.on('error', onError)
  })
}

// principal.rateLimit: { limit, remaining, reset } with reset in milliseconds;
// the header gives whole seconds, rounded up.
function setRateLimitHeaders(res, rl) {
  if (!rl) return
  res.setHeader('ratelimit-limit', String(rl.limit))
  res.setHeader('ratelimit-remaining', String(rl.remaining))
  res.setHeader('ratelimit-reset', String(Math.max(0, Math.ceil((Number(rl.reset) || 0) / 1000))))
}

function refuse(res, r, closeConnection = false) {
  const body = JSON.stringify({ error: { message: r.message, code: r.pdCode } })
  res.statusCode = r.status
  res.setHeader('content-type', 'application/json; charset=utf-8')
  res.setHeader('content-length', Buffer.byteLength(body))
  if (r.status === 401) res.setHeader('www-authenticate', 'Token')
  if (r.retryAfterMs !== undefined) {
    const secs = String(Math.max(1, Math.ceil(r.retryAfterMs / 1000)))
    res.setHeader('retry-after', secs)
    if (r.limit !== undefined) res.setHeader('ratelimit-limit', String(r.limit))
    res.setHeader('ratelimit-remaining', '0')
    res.setHeader('ratelimit-reset', secs)
  }
  // The rest of an unread body is not read: close the connection after answering.
  if (closeConnection) res.setHeader('connection', 'close')
  res.locals && (res.locals.apikeysRejection = r)
  res.end(body)
}

/**
 * Middleware factories bound to a Keyring.
 * @param {import('./index').Keyring} keyring
 * @param {{ maxEventBytes?: number, offThread?: boolean }} [options]
 */
function apikeys(keyring, options = {}) {
  if (!keyring || typeof keyring.authenticate !== 'function') {
    throw new TypeError('The "keyring" argument must be a Keyring')
  }
  const maxEventBytes = options.maxEventBytes ?? DEFAULT_MAX_EVENT_BYTES
  if (options.offThread !== undefined && typeof options.offThread !== 'boolean') {
    throw new TypeError('The "options.offThread" argument must be of type boolean')
  }
  // offThread: a check that would wait (a cold PostgreSQL or SQLite lookup, a
  // Redis limiter) runs with authenticateAsync, on libuv's thread pool, so it
  // never stalls the event loop; one answered from memory (tryAuthenticate:
  // a warm key) runs inline, without the thread hop. A stand-in keyring
  // without tryAuthenticate always goes to the pool.
  const offThread = options.offThread === true
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
    const accept = (req, res, next, principal) => {
      req.apikey = principal
      setRateLimitHeaders(res, principal.rateLimit)
      next()
    }
    if (offThread) {
      return function apikeysRest(req, res, next) {
        let token
        let principal = null
        const request = { api: 'rest', method: req.method, scope }
        try {
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
    return function apikeysRest(req, res, next) {
      let principal
      try {
        const token = restToken(req)
        principal = keyring.authenticate(token, { api: 'rest', method: req.method, scope })
      } catch (e) {
        return refuse(res, e instanceof Rejection ? e : fromError(e))
      }
      accept(req, res, next, principal)
    }
  }

  function events() {
    return function apikeysEvents(req, res, next) {
      const parsed = req.body !== undefined && req.body !== null && typeof req.body === 'object' && !Buffer.isBuffer(req.body)
      const body = parsed ? Promise.resolve(req.body) : readBody(req, maxEventBytes).then(parseEvent)
      body
        .then((event) => Promise.all([event, check(routingKeyOf(event), { api: 'events' })]))
        .then(([event, principal]) => {
          req.body = event
          req.apikey = principal
          setRateLimitHeaders(res, principal.rateLimit)
          next()
        })
        .catch((e) => {
          const r = e instanceof Rejection ? e : fromError(e)
          refuse(res, r, r.kind === 'body_too_large')
        })
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
