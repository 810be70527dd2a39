// The quickstart story in TypeScript: type-checked (tsc, `node16` and `bundler`
// module resolution), then run, against the installed npm tarballs.
import { Keyring, isApiKeyError, type Actor, type Principal, type ApiKeyError } from 'apikeys'
import { apikeys, type ApiKeys } from 'apikeys/express'

const admin: Actor = { account: 'acme', user: 'PADMIN1', role: 'admin' }
const keyring = new Keyring()
const issued = keyring.createGeneralKey(admin, 'CI bot', { readOnly: true })
const token: string = issued.secret
const principal: Principal = keyring.authenticate(token, { method: 'GET' })
if (principal.account !== 'acme') throw new Error('wrong account')

function statusOf(call: () => unknown): number {
  try {
    call()
    return 200
  } catch (e) {
    if (!isApiKeyError(e)) throw e
    const err: ApiKeyError = e
    return err.status
  }
}
// @ts-expect-error: 'superuser' is not a role (the types are string unions)
statusOf(() => keyring.createGeneralKey({ account: 'acme', user: 'X', role: 'superuser' }, 'x'))
if (statusOf(() => keyring.authenticate(token, { method: 'POST', scope: 'incidents.write' })) !== 403) throw new Error('read-only key wrote')
keyring.disable(admin, issued.record.id)
if (statusOf(() => keyring.authenticate(token)) !== 401) throw new Error('disabled key accepted')
keyring.enable(admin, issued.record.id)
if (statusOf(() => keyring.authenticate(token)) !== 200) throw new Error('enabled key refused')
const mw: ApiKeys = apikeys(keyring)
if (typeof mw.rest !== 'function') throw new Error('no rest middleware')
console.log('node story (TypeScript): ok')
