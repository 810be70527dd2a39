// A typed use of every call of the package. `npm run typecheck` checks it with
// `tsc --noEmit --strict`; the `@ts-expect-error` lines prove the types are
// precise (string unions, not `string`).
import {
  Keyring,
  IssuedKey,
  ManualClock,
  isApiKeyError,
  eventRoutingKey,
  type HttpRefusal,
  type AccessLevel,
  type AccountSettings,
  type Actor,
  type Api,
  type ApiKeyError,
  type AuditAction,
  type AuditContext,
  type AuditEvent,
  type AuditPage,
  type AuditQuery,
  type CallContext,
  type FieldChange,
  type PagerDutyAuditRecord,
  type RotateOptions,
  type Rotation,
  type UsePlace,
  type ErrorCode,
  type KeyKind,
  type KeyRecord,
  type Principal,
  type RateLimitStatus,
  type RateLimiterState,
  type Request,
  type Role,
} from '../index'

export async function everyCall(): Promise<string[]> {
  const keyring = new Keyring({ pepper: 'a pepper of sixteen bytes or more', store: { memory: true }, auditCapacity: 100 })
  const plain = new Keyring()
  const limited = new Keyring({ rateLimits: 'pagerduty' })
  const custom = new Keyring({ rateLimits: { generalKey: { requests: 960, windowMs: 60_000 } } })
  const shared = new Keyring({ rateLimits: 'pagerduty', rateLimiter: { redis: 'redis://127.0.0.1:6379/', fallback: 'deny', timeoutMs: 100 } })
  const sqlite = new Keyring({ store: { sqlite: 'keys.db' } })
  const opened: Keyring = await Keyring.open({ store: { sqlite: 'keys.db' } })
  const written: number = sqlite.flush() + (await opened.flushAsync())
  const storeKind: 'memory' | 'sqlite' | 'postgres' = opened.storeKind
  const hasLimits: boolean = shared.hasRateLimits
  const limiter: RateLimiterState | null = shared.rateLimiterState
  const degraded: boolean | undefined = limiter?.degraded
  const overridden = new Keyring({
    rateLimits: {
      pagerduty: true,
      user: null,
      accounts: { acme: { generalKey: { requests: 10, windowMs: 1000 }, eventsKey: null } },
      keys: { P0000000000000: null },
    },
  })
  const clock = new ManualClock(new Date('2030-01-01T00:00:00Z'))
  clock.advance(60_000)
  clock.set(new Date('2030-01-02T00:00:00Z'))
  const clockNow: Date = clock.now()
  const ticking = new Keyring({ clock, rotationQuietMs: 5 * 60_000 })
  void [limited, custom, written, storeKind, hasLimits, degraded, overridden, clockNow, ticking]
  // @ts-expect-error: not a preset
  new Keyring({ rateLimits: 'generous' })
  // @ts-expect-error: not a fallback
  new Keyring({ rateLimits: 'pagerduty', rateLimiter: { redis: 'redis://x/', fallback: 'maybe' } })
  const limitedKey = limited.createGeneralKey({ account: 'acme', user: 'PADMIN1', role: 'admin' }, 'limited')
  const status: RateLimitStatus | null | undefined = limited.authenticate(limitedKey.secret).rateLimit
  const remaining: number | undefined = status?.remaining
  void remaining
  const admin: Actor = { account: 'acme', user: 'PADMIN1', role: 'admin' }
  const manager: Actor = { account: 'acme', user: 'PMGR1', role: 'manager' }
  const user: Actor = { account: 'acme', user: 'PUSER1', role: 'limited_user' }

  const general: IssuedKey = keyring.createGeneralKey(admin, 'CI bot', { readOnly: true })
  const expiring = keyring.createGeneralKey(admin, 'temp', { expiresAt: new Date(Date.now() + 60_000) })
  const token: string = general.secret
  const record: KeyRecord = general.record
  const readOnly: boolean = record.readOnly
  const disabledBy: string | undefined = record.disabled?.by
  void [readOnly, disabledBy]
  const kind: KeyKind = record.kind
  const access: AccessLevel = record.access
  const created: Date = record.createdAt
  const expires: Date | undefined = expiring.record.expiresAt
  const userToken = keyring.createUserToken(user, 'laptop script', { expiresAt: new Date(Date.now() + 60_000) })
  const integration = keyring.createIntegrationKey(manager, 'PSERVICE1', 'Datadog')
  const routing = keyring.createRoutingKey(manager, 'global-orchestration', 'all alerts', {})
  const scoped = keyring.createScopedToken(manager, 'stale closer', ['incidents.write'])

  const request: Request = { api: 'rest', method: 'GET', scope: 'incidents.read' }
  const principal: Principal = keyring.authenticate(token, request)
  const events: Principal = keyring.authenticate(integration.secret, { api: 'events' })
  const defaulted: Principal = keyring.authenticate(token)
  const itsRecord: KeyRecord = defaulted.record
  void itsRecord
  const tried: Principal | null = keyring.tryAuthenticate(token, request)
  const role: Role | undefined = keyring.authenticate(userToken.secret, { method: 'POST', scope: 'incidents.write' }).role
  const viaPromise: Principal = await keyring.authenticateAsync(routing.secret, { api: 'events' })
  try {
    keyring.authenticate(token, { method: 'POST', scope: 'incidents.write' })
  } catch (e) {
    if (isApiKeyError(e)) {
      const code: ErrorCode | 'ERR_INVALID_ARG_TYPE' = e.code
      const status: number = e.status
      const pdCode: number = e.pdCode
      const reason: string = e.reason
      const retryAfter: number | undefined = e.retryAfter
      const limit: number | undefined = e.limit
      void [code, status, pdCode, reason, retryAfter, limit]
    }
  }

  const disabled: KeyRecord = keyring.disable(admin, record.id)
  const by: string | undefined = disabled.disabled?.by
  keyring.enable(admin, record.id)
  const one: KeyRecord = keyring.get(admin, record.id)
  const all: KeyRecord[] = keyring.list(admin)
  keyring.delete(manager, scoped.record.id)

  const settings: AccountSettings = { restApi: true, advancedPermissions: true }
  keyring.setAccount('acme', settings)
  const now: AccountSettings = keyring.account('acme')
  keyring.setUserRole('acme', 'PUSER1', 'observer')
  const removed: number = keyring.removeUser('acme', 'PUSER1')
  // The same changes made for a person: the core decides on the actor's stored role.
  keyring.setUserRoleAs(admin, 'PMGR1', 'responder')
  const removedAs: number = keyring.removeUserAs(admin, 'PMGR1')
  keyring.setAccountAs({ ...admin, context: { requestId: 'req-43' } }, settings)
  // @ts-expect-error: not a role
  keyring.setUserRoleAs(admin, 'PMGR1', 'boss')
  // @ts-expect-error: the actor is an object, not the account
  keyring.removeUserAs('acme', 'PMGR1')
  // @ts-expect-error: the settings object is complete
  keyring.setAccountAs(admin, { restApi: false })
  const trail: AuditEvent[] = keyring.auditTrail()
  const allowed: boolean = trail.every((e) => e.allowed || typeof e.error === 'string')
  void allowed
  const action: AuditEvent['action'] = trail[0].action

  // Rotation and the audit trail: the caller's context goes into each record.
  const context: CallContext = { requestId: 'req-42', remoteAddress: '192.0.2.7', callerKey: token }
  const withContext: Actor = { ...admin, context }
  const rotateOptions: RotateOptions = { graceMs: 7 * 86_400_000 }
  const rotated: IssuedKey = keyring.rotate(withContext, one.id, rotateOptions)
  const rotatedFrom: string | undefined = rotated.record.rotatedFrom
  const overlapUntil: Date | undefined = keyring.get(admin, one.id).rotation?.overlapUntil
  const successorUsedAt: Date | undefined = keyring.get(admin, one.id).rotation?.successorUsedAt
  const ended: KeyRecord = keyring.endRotation(withContext, one.id)
  const rotatedTo: string | undefined = ended.rotatedTo
  const rotation: Rotation | undefined = ended.rotation
  const quiet: number | undefined = rotation?.quietMs
  const rotatedAsync: IssuedKey = await keyring.rotateAsync(admin, rotated.record.id, { graceMs: 60_000 })
  const endedAsync: KeyRecord = await keyring.endRotationAsync(admin, rotated.record.id)
  const placed: Principal = keyring.authenticate(rotatedAsync.secret, { method: 'GET', remoteAddress: '192.0.2.9', path: '/incidents' })
  const lastUsedFrom: UsePlace | undefined = keyring.get(admin, placed.keyId).lastUsedFrom
  const actions: AuditAction[] = ['rotate', 'end_rotation']
  const query: AuditQuery = { account: 'acme', actions, since: new Date(Date.now() - 3_600_000), limit: 50 }
  const records: AuditEvent[] = []
  for (let cursor: string | undefined; ; ) {
    const page: AuditPage = keyring.auditRecords({ ...query, cursor })
    records.push(...page.records)
    if (page.nextCursor === undefined) break
    cursor = page.nextCursor
  }
  const asyncPage: AuditPage = await keyring.auditRecordsAsync({ account: 'acme', keyId: one.id, actor: 'PADMIN1', until: new Date() })
  const first: AuditEvent | undefined = records[0]
  const recordId: number | undefined = first?.id
  const changes: FieldChange[] = first?.changes ?? []
  const beforeValue: string | undefined = changes[0]?.beforeValue
  const auditContext: AuditContext | undefined = first?.context
  const truncatedToken: string | undefined = auditContext?.truncatedToken
  const pd: PagerDutyAuditRecord | undefined = first?.toPagerDuty()
  const executionTime: string | undefined = pd?.execution_time
  const fields: Array<{ name: string; value: string | null; before_value: string | null }> | undefined = pd?.details.fields
  const pruned: number = keyring.pruneAudit(365 * 86_400_000) + (await keyring.pruneAuditAsync(30 * 86_400_000))
  void [rotatedFrom, overlapUntil, successorUsedAt, rotatedTo, rotation, quiet, endedAsync, lastUsedFrom, asyncPage, recordId, beforeValue, truncatedToken, executionTime, fields, pruned]
  // @ts-expect-error: the grace is a number of milliseconds, in an options object
  keyring.rotate(admin, one.id, 7 * 86_400_000)
  // @ts-expect-error: not an action
  keyring.auditRecords({ account: 'acme', actions: ['rotated'] })
  // @ts-expect-error: windows are Dates
  keyring.auditRecords({ account: 'acme', since: Date.now() })
  // @ts-expect-error: the account is required
  keyring.auditRecords({ limit: 10 })

  const a1: IssuedKey = await plain.createGeneralKeyAsync(admin, 'async', { readOnly: false })
  const a2: IssuedKey = await plain.createUserTokenAsync(admin, 'async')
  const a3: IssuedKey = await plain.createIntegrationKeyAsync(admin, 'PSERVICE2', 'async')
  const a4: IssuedKey = await plain.createRoutingKeyAsync(admin, 'orch', 'async')
  const a5: IssuedKey = await plain.createScopedTokenAsync(admin, 'async', ['services.read'])
  const r1: KeyRecord = await plain.disableAsync(admin, a1.record.id)
  const r2: KeyRecord = await plain.enableAsync(admin, a1.record.id)
  const r3: KeyRecord = await plain.getAsync(admin, a1.record.id)
  const r4: KeyRecord[] = await plain.listAsync(admin)
  const r5: KeyRecord = await plain.deleteAsync(admin, a5.record.id)
  await plain.setAccountAsync('acme', settings)
  const s2: AccountSettings = await plain.accountAsync('acme')
  await plain.setUserRoleAsync('acme', 'PADMIN1', 'global_admin')
  await plain.setUserRoleAsAsync(admin, 'PUSER2', 'observer')
  const nAs: number = await plain.removeUserAsAsync(admin, 'PUSER2')
  await plain.setAccountAsAsync(admin, settings)
  const n: number = await plain.removeUserAsync('acme', 'PADMIN1')

  const api: Api = 'events'
  // @ts-expect-error: not a role
  const badRole: Actor = { account: 'acme', user: 'P', role: 'boss' }
  // @ts-expect-error: not an API
  keyring.authenticate(token, { api: 'graphql' })
  // @ts-expect-error: the options take a Date, not a number
  keyring.createGeneralKey(admin, 'x', { expiresAt: Date.now() })
  // @ts-expect-error: scopes are an array
  keyring.createScopedToken(manager, 'x', 'incidents.read')
  // @ts-expect-error: the record is read through `record`; there is no `key` field
  void general.key
  // @ts-expect-error: kinds are a closed set
  const badKind: KeyKind = 'master'
  void [badRole, badKind, api]

  return [
    principal.keyId, events.kind, defaulted.account, String(tried?.keyId), String(role), viaPromise.kind, kind, access, String(created), String(expires),
    String(by), one.id, String(all.length), String(now.restApi), String(removed), action,
    a2.secret.slice(0, 2), a3.record.kind, a4.record.kind, r1.id, r2.id, r3.id, String(r4.length), r5.id,
    String(s2.advancedPermissions), String(n), String(removedAs), String(nAs),
  ]
}

export type { ApiKeyError }

// The Express middleware's types (express.d.ts).
import { apikeys, type ApiKeysOptions, type Middleware } from '../express'

export function middleware(keyring: Keyring): Middleware[] {
  const options: ApiKeysOptions = { maxEventBytes: 64 * 1024, offThread: true, remoteAddress: (req) => req.socket.remoteAddress }
  const auth = apikeys(keyring, options)
  // @ts-expect-error: offThread is a boolean
  apikeys(keyring, { offThread: 'yes' })
  // @ts-expect-error: unknown options are refused (ERR_INVALID_INPUT at run time too)
  apikeys(keyring, { offthread: true })
  // @ts-expect-error: the address is read by a function of the request
  apikeys(keyring, { remoteAddress: 'ip' })
  return [auth.rest('incidents.read'), auth.rest(), auth.events()]
}

// The Events body verdict shared with the Rust adapter.
export function routingKeyOf(body: Uint8Array): string | null {
  const verdict: string | HttpRefusal = eventRoutingKey(body)
  if (typeof verdict === 'string') return verdict
  const headers: Array<[string, string]> = verdict.headers
  const reason: string = verdict.reason
  return verdict.kind === 'missing_routing_key' ? null : `${verdict.status} ${verdict.pdCode} ${verdict.body} ${headers.length} ${reason.length}`
}

// Verification metrics (docs/metrics.md): the core's snapshot, and prom-client.
import { registerAuthMetrics, COUNTER, HISTOGRAM, type MetricRegistry } from '../prometheus'
import type { AuthMetricsSnapshot, AuthMetricsSeries } from '../index'

export async function metrics(registry: MetricRegistry): Promise<string> {
  const keyring = new Keyring({ metrics: true })
  // @ts-expect-error: metrics is a boolean
  new Keyring({ metrics: 'yes' })
  const snap: AuthMetricsSnapshot | null = keyring.metrics()
  const series: AuthMetricsSeries[] = snap === null ? [] : snap.series
  const first = series.map((s) => `${s.kind} ${s.outcome} ${s.count} ${s.sumSeconds} ${s.buckets.length}`)
  const { counter, histogram } = registerAuthMetrics(keyring, registry)
  const values = await counter.get()
  return `${COUNTER} ${HISTOGRAM} ${histogram.type} ${values.values.length} ${first.join()}`
}

// The endpoints written in Rust, as Express middleware (endpoints.d.ts through express.d.ts).
import { management, secretScanning, type ActorFunction, type EndpointMiddleware, type ManagementOptions } from '../express'

export function endpoints(keyring: Keyring, pem: string): EndpointMiddleware[] {
  const actor: ActorFunction = (req) => (req.headers['x-user'] ? { account: 'acme', user: String(req.headers['x-user']), role: 'admin' } : null)
  const options: ManagementOptions = { actor, mountPath: '/admin/keys', page: true, onError: (err) => void err }
  // @ts-expect-error: the actor function is required
  management(keyring, {})
  // @ts-expect-error: onLiveKey is 'disable' or 'delete'
  secretScanning(keyring, { onLiveKey: 'burn' })
  return [
    management(keyring, options),
    management(keyring, { actor: async () => null }),
    secretScanning(keyring, { publicKeys: { 'gh-1': pem, 'gh-2': new Uint8Array(91) }, onLiveKey: 'delete', maxBodyBytes: 1 << 20 }),
  ]
}
