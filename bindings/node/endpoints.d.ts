/* Types of the endpoints of `apikeys/express` written once in Rust (endpoints.js). */
import type { IncomingMessage, ServerResponse } from 'node:http'
import type { Actor, Keyring } from './index'

/** A node:http / Express middleware that answers every request it gets (mount it under a path). */
export type EndpointMiddleware = (req: IncomingMessage, res: ServerResponse, next?: (err?: unknown) => void) => void

/**
 * Who is logged in, from the request (the host's own login: a session, a
 * cookie, `req.user` …): an actor, or null/undefined for nobody (answered 401).
 * It may return a Promise. If it throws, rejects or answers anything else,
 * the request gets a 500 with PagerDuty's body and nothing of the cause.
 */
export type ActorFunction = (req: IncomingMessage) => Actor | null | undefined | Promise<Actor | null | undefined>

/** Options of {@link management}. Any other name is refused (`ERR_INVALID_INPUT`). */
export interface ManagementOptions {
  /** Who is logged in (required). */
  actor: ActorFunction
  /**
   * Where the host mounts it, for a router that does not say (Express's
   * `req.baseUrl` says, per request): the page names its script, style and
   * API under it. `/`-separated segments of letters, digits, `-`, `_`, `.`, `~`.
   */
  mountPath?: string
  /** `false`: the API alone (`GET /` and the page's assets answer 404). Default `true`. */
  page?: boolean
  /** Hears why a request was answered 500 (the actor function failed …). Default: one line on stderr. */
  onError?: (err: unknown, req: IncomingMessage) => void
}

/**
 * The management API and the API Access Keys page (docs/management.md), the
 * Rust `apikeys_http::Management`: `app.use('/admin/keys', management(keyring, { actor }))`.
 * Runs on libuv's thread pool when `keyring.mayBlock`.
 */
export declare function management(keyring: Keyring, options: ManagementOptions): EndpointMiddleware

/** Options of {@link secretScanning}. Any other name is refused (`ERR_INVALID_INPUT`). */
export interface SecretScanningOptions {
  /** GitHub's public keys by `Github-Public-Key-Identifier`: a PEM string (`-----BEGIN PUBLIC KEY-----`) or SPKI DER bytes. */
  publicKeys?: Record<string, string | Uint8Array>
  /** The body of GitHub's `/meta/public_keys/secret_scanning` (its keys are trusted too). */
  githubKeys?: string
  /** What to do with a reported live key: `'disable'` (default) or `'delete'`. */
  onLiveKey?: 'disable' | 'delete'
  /** The largest report read, in bytes (default 1 MiB); a longer one is answered 413. */
  maxBodyBytes?: number
  /** Hears why a request was answered 500. Default: one line on stderr. */
  onError?: (err: unknown, req: IncomingMessage) => void
}

/**
 * GitHub's secret-scanning partner receiver (POST), the Rust
 * `apikeys_http::SecretScanning`: verifies `Github-Public-Key-Signature`
 * over the raw body before reading a token, takes reported live keys out of
 * service, answers the feedback array. Mount it before any body parser.
 */
export declare function secretScanning(keyring: Keyring, options: SecretScanningOptions): EndpointMiddleware
