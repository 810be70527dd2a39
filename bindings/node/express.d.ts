/* Types of `require('apikeys/express')`: Express (and node:http) middleware. */
import type { IncomingMessage, ServerResponse } from 'node:http'
import type { Keyring, Principal } from './index'

/** A node:http / Express middleware function. */
export type Middleware = (req: IncomingMessage & { apikey?: Principal; body?: unknown }, res: ServerResponse, next: (err?: unknown) => void) => void

/**
 * Why a request was refused before the route's handler ran, and the answer
 * for it as the Rust adapter renders it (the bytes axum and the Python
 * middleware send): the middleware writes `status`, `headers` and `body`.
 */
export declare class Rejection extends Error {
  /** The HTTP status. */
  status: number
  /** PagerDuty's error code (2006, 2010, 2001 …). */
  pdCode: number
  /**
   * A stable name: the core error's kind (`unauthorized`, `forbidden`,
   * `rate_limited` …; `internal` for anything else thrown), or the adapter's:
   * `missing_key`, `malformed_authorization`, `duplicate_authorization`,
   * `body_too_large`, `invalid_body`, `missing_routing_key`, `misconfigured`.
   */
  kind: string
  /** For server logs: which check failed (never a key). */
  readonly reason: string
  /** For a 429: milliseconds until a retry may succeed. */
  retryAfterMs?: number
  /** Every response header, in order (`content-type`, `content-length`, then the challenge or retry headers). */
  readonly headers: Array<[string, string]>
  /** PagerDuty's JSON error body. */
  readonly body: string
}

/** Options of {@link apikeys}. Any other name is refused (`ERR_INVALID_INPUT`). */
export interface ApiKeysOptions {
  /** The Events body limit in bytes (default 512 KiB, PagerDuty's); a positive integer. */
  maxEventBytes?: number
  /**
   * Authenticate with `authenticateAsync`, on libuv's thread pool, so that a
   * store or rate limiter waiting on the network (a cold PostgreSQL lookup, a
   * Redis limiter) never stalls the event loop. Default `false`: the
   * synchronous call, cheaper for the in-memory store and warm caches.
   */
  offThread?: boolean
  /**
   * Where a request comes from, kept with its key's last use
   * (`KeyRecord.lastUsedFrom`, written at most once a minute per key).
   * Default: `req.socket.remoteAddress`, a field read. Behind a proxy,
   * `(req) => req.ip` gives Express's reading of `X-Forwarded-For` under its
   * `trust proxy` setting (computed on every request: 0.3 µs to several µs).
   * `() => undefined` keeps no address. The path kept is `req.originalUrl`
   * (`req.url` without Express), without its query string.
   */
  remoteAddress?: (req: IncomingMessage) => string | undefined | null
}

/** Middleware factories bound to a Keyring. */
export interface ApiKeys {
  /** REST: the key from `Authorization`, the method from the request, `scope` from the route. Throws at once on an invalid scope. */
  rest(scope?: string): Middleware
  /**
   * Events API v2: the key is the `routing_key` of the JSON body, judged by
   * the Rust adapter's parser (`eventRoutingKey`); `req.body` becomes the
   * event. Behind `express.raw()` the Buffer is judged, behind `express.text()`
   * the string's UTF-8, behind `express.json()` the parsed object as
   * `JSON.stringify` writes it; a form body is a 400. Never waits for a body
   * another middleware has read.
   */
  events(): Middleware
}

/** Bind the middleware to a keyring. */
export declare function apikeys(keyring: Keyring, options?: ApiKeysOptions): ApiKeys
/** The key in an `Authorization` value, or null if it has no accepted form (the Rust adapter's grammar). */
export declare function tokenFromAuthorization(value: string): string | null
/** 512 KiB. */
export declare const DEFAULT_MAX_EVENT_BYTES: number
/** 1024. */
export declare const MAX_AUTHORIZATION_BYTES: number

declare global {
  namespace Express {
    interface Request {
      /** The authenticated key, set by `apikeys(...).rest()` or `.events()`. */
      apikey?: Principal
    }
  }
}
export { management, secretScanning, ManagementOptions, SecretScanningOptions, ActorFunction, EndpointMiddleware } from './endpoints'
