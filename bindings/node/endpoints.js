'use strict'
// The endpoints written once in Rust (apikeys-http) as Express (or plain
// node:http) middleware — re-exported by `apikeys/express`:
//
//   const { management, secretScanning } = require('apikeys/express')
//   app.use('/admin/keys', management(keyring, {
//     actor: (req) => (req.user ? { account: req.user.account, user: req.user.id, role: req.user.role } : null),
//   }))
//   app.use('/github/secret-scanning', secretScanning(keyring, { publicKeys: { [keyId]: pem } }))
//
// The middleware holds no rule of its own. Per request it reads the body (at
// most the endpoint's limit and one byte more: the Rust code answers 413 for
// a longer body, and the connection is closed after that answer rather than
// the rest read), asks the host's `actor` function who is logged in, and
// hands the method, the URL below the mount point (`req.url`; the mount
// point itself is `req.baseUrl`), `req.rawHeaders`, the body, the peer's
// address and the actor to the Rust endpoint, whose status, headers and body
// it writes as they are. The same code answers under axum and ASGI.
//
// - The event loop never waits on the database: when the keyring may block
//   (`keyring.mayBlock`: SQLite, PostgreSQL) the endpoint runs on libuv's
//   thread pool (a Promise), otherwise inline.
// - `actor(req)` answers `{ account, user, role, context? }` (an Actor) or
//   null/undefined (nobody: 401), directly or as a Promise. If it throws,
//   rejects or answers anything else (a string that is not well-formed
//   UTF-16 included), the request gets a 500 with PagerDuty's body and
//   nothing of the cause; `onError(err, req)` hears why (default: a line on
//   stderr with the error's message, never the request).
// - Mount it before a body parser (`express.json()` …): a report's signature
//   is over the exact bytes. Behind one, a Buffer or string in `req.body` is
//   handed over as it is, an object as `JSON.stringify` writes it.

const { Keyring: Native } = require('./index.js')
const { argTypeError, invalidInput, optionName } = require('./args.js')

function checkOptions(options, names, name) {
  if (options === undefined || options === null) return {}
  if (typeof options !== 'object' || Array.isArray(options)) throw argTypeError(name, 'an object', options)
  for (const k in options) {
    if (!names.includes(k)) {
      throw invalidInput(`invalid ${name}: unknown option ${optionName(k)}; the options are ${names.join(', ')}`, name)
    }
  }
  return options
}

function checkKeyring(keyring) {
  if (!(keyring instanceof Native)) throw argTypeError('keyring', 'a Keyring', keyring)
  return keyring
}

function checkFunction(f, name, shape) {
  if (f !== undefined && typeof f !== 'function') throw argTypeError(name, `a function ${shape}`, f)
  return f
}

const defaultOnError = (err) => {
  const what = err instanceof Error ? `${err.name}: ${err.message}` : typeof err
  process.stderr.write(`apikeys/express: ${what}; answered 500\n`)
}

const isText = (v) => typeof v === 'string' && v.isWellFormed()

// The actor the host's function answered, as the addon takes it (fields read
// once, into a fresh object), or a thrown TypeError saying what is wrong.
function actorOf(value) {
  if (value === null || value === undefined) return null
  if (typeof value !== 'object' || Array.isArray(value)) {
    throw new TypeError(`the actor function answered ${value === null ? 'null' : typeof value}, not an actor object or null`)
  }
  const { account, user, role, context } = value
  if (!isText(account) || !isText(user) || !isText(role)) {
    throw new TypeError('the actor function answered an actor whose account, user or role is not a well-formed string')
  }
  const out = { account, user, role }
  if (context !== undefined && context !== null) {
    if (typeof context !== 'object' || Array.isArray(context)) throw new TypeError('the actor\'s context is not an object')
    const c = {}
    for (const k of ['requestId', 'remoteAddress', 'callerKey']) {
      const v = context[k]
      if (v === undefined || v === null) continue
      if (!isText(v)) throw new TypeError(`the actor's context.${k} is not a well-formed string`)
      c[k] = v
    }
    out.context = c
  }
  return out
}

// The body as the endpoint takes it: [bytes, whether reading stopped short].
// At most `limit + 1` bytes are read.
function readBody(req, limit) {
  if (req.readableEnded === true || req.readableDidRead === true) {
    // Read by a parser in front.
    const b = req.body
    let bytes
    if (b instanceof Uint8Array) bytes = b
    else if (typeof b === 'string') bytes = Buffer.from(b, 'utf8')
    else if (b !== null && typeof b === 'object') bytes = Buffer.from(JSON.stringify(b) ?? '', 'utf8')
    else bytes = Buffer.alloc(0)
    return Promise.resolve([bytes, false])
  }
  return new Promise((resolve, reject) => {
    const chunks = []
    let size = 0
    const finish = (err, cut) => {
      req.off('data', onData)
      req.off('end', onEnd)
      req.off('error', onError)
      if (err) return reject(err)
      if (cut) req.pause()
      resolve([Buffer.concat(chunks, size), cut])
    }
    const onData = (c) => {
      chunks.push(c)
      size += c.length
      if (size > limit) finish(null, true)
    }
    const onEnd = () => finish(null, false)
    const onError = (e) => finish(e)
    req.on('data', onData)
    req.on('end', onEnd)
    req.on('error', onError)
  })
}

// Writes [status, [name, value, …], body] as the Rust endpoint gave it.
function write(res, [status, flat, body], closeConnection) {
  if (res.headersSent) return res.destroy()
  res.statusCode = status
  const headers = new Map()
  for (let i = 0; i + 1 < flat.length; i += 2) {
    const values = headers.get(flat[i])
    if (values) values.push(flat[i + 1])
    else headers.set(flat[i], [flat[i + 1]])
  }
  for (const [name, values] of headers) res.setHeader(name, values.length === 1 ? values[0] : values)
  if (closeConnection) res.setHeader('connection', 'close')
  res.end(body)
}

// Middleware answering every request with `endpoint`.
function mount(endpoint, actor, onError) {
  const [mayBlock, limit] = Native._endpointInfo(endpoint)
  const handle = mayBlock ? Native._endpointHandleAsync : Native._endpointHandle
  const report = (err, req) => {
    try {
      onError(err, req)
    } catch {
      // The host's logger failing must not fail the answer.
    }
  }
  return function apikeysEndpoint(req, res, next) {
    let cut = false
    readBody(req, limit)
      .then(async ([body, stopped]) => {
        cut = stopped
        let who = null
        if (actor !== undefined) {
          try {
            who = actorOf(await actor(req))
          } catch (e) {
            report(e, req)
            return write(res, Native._endpointInternalError(), cut)
          }
        }
        const socket = req.socket ?? {}
        const answer = await handle(
          endpoint,
          String(req.method),
          String(req.url),
          Array.isArray(req.rawHeaders) ? req.rawHeaders : [],
          body,
          typeof socket.remoteAddress === 'string' ? socket.remoteAddress : null,
          typeof socket.remotePort === 'number' ? socket.remotePort : null,
          typeof req.baseUrl === 'string' && req.baseUrl !== '' ? req.baseUrl : null,
          who,
        )
        write(res, answer, cut)
      })
      .catch((e) => {
        // A client that went away mid-body: nobody to answer, nothing to report.
        if (res.destroyed || req.destroyed || e?.code === 'ECONNRESET') return
        // Anything else that failed on the way to the endpoint (a bug here).
        report(e, req)
        if (!res.headersSent) write(res, Native._endpointInternalError(), true)
      })
  }
}

const MANAGEMENT_OPTIONS = ['actor', 'mountPath', 'page', 'onError']

/**
 * The management API and the API Access Keys page (apikeys_http::Management)
 * as middleware: `app.use('/admin/keys', management(keyring, { actor }))`.
 */
function management(keyring, options) {
  checkKeyring(keyring)
  const o = checkOptions(options, MANAGEMENT_OPTIONS, 'options')
  const { actor, mountPath, page, onError } = o
  if (typeof actor !== 'function') throw argTypeError('options.actor', 'a function (req) => Actor | null', actor)
  if (mountPath !== undefined && !isText(mountPath)) throw argTypeError('options.mountPath', 'a well-formed string', mountPath)
  if (page !== undefined && typeof page !== 'boolean') throw argTypeError('options.page', 'of type boolean', page)
  checkFunction(onError, 'options.onError', '(err, req) => void')
  const endpoint = Native._management(keyring, mountPath ?? null, page ?? null)
  return mount(endpoint, actor, onError ?? defaultOnError)
}

const SCANNING_OPTIONS = ['publicKeys', 'githubKeys', 'onLiveKey', 'maxBodyBytes', 'onError']

/**
 * GitHub's secret-scanning partner receiver (apikeys_http::SecretScanning) as
 * middleware: `app.use('/github/secret-scanning', secretScanning(keyring, { publicKeys }))`.
 */
function secretScanning(keyring, options) {
  checkKeyring(keyring)
  const o = checkOptions(options, SCANNING_OPTIONS, 'options')
  const { publicKeys, githubKeys, onLiveKey, maxBodyBytes, onError } = o
  const keys = []
  if (publicKeys !== undefined && publicKeys !== null) {
    if (typeof publicKeys !== 'object' || Array.isArray(publicKeys)) {
      throw argTypeError('options.publicKeys', 'an object { identifier: PEM string or DER Buffer }', publicKeys)
    }
    for (const id of Object.keys(publicKeys)) {
      const key = publicKeys[id]
      if (!isText(id)) throw invalidInput('invalid options.publicKeys: an identifier is not a well-formed string', 'options.public_keys')
      if (isText(key)) keys.push([id, Buffer.from(key, 'utf8'), true])
      else if (key instanceof Uint8Array) keys.push([id, Buffer.from(key), false])
      else throw argTypeError(`options.publicKeys[${JSON.stringify(id)}]`, 'a PEM string or a DER Buffer', key)
    }
  }
  if (githubKeys !== undefined && githubKeys !== null && !isText(githubKeys)) {
    throw argTypeError('options.githubKeys', 'a well-formed string (the JSON GitHub serves)', githubKeys)
  }
  if (onLiveKey !== undefined && onLiveKey !== 'disable' && onLiveKey !== 'delete') {
    throw invalidInput("invalid options.onLiveKey: must be 'disable' or 'delete'", 'options.on_live_key')
  }
  if (maxBodyBytes !== undefined && (!Number.isSafeInteger(maxBodyBytes) || maxBodyBytes < 1)) {
    throw argTypeError('options.maxBodyBytes', 'a positive integer', maxBodyBytes)
  }
  checkFunction(onError, 'options.onError', '(err, req) => void')
  const endpoint = Native._secretScanning(
    keyring,
    keys.map(([id]) => id),
    keys.map(([, key]) => key),
    keys.map(([, , pem]) => pem),
    githubKeys ?? null,
    onLiveKey === 'delete',
    maxBodyBytes ?? null,
  )
  return mount(endpoint, undefined, onError ?? defaultOnError)
}

module.exports = { management, secretScanning }
