'use strict'
// The principal objects of a keyring: the JavaScript half of the principal
// cache (src/cache.rs is the other). The addon answers an authentication
// with a handle (a slot per key, and the role it acted with); this keeps one
// frozen principal per handle, so authenticate builds no object per call
// (with a rate limit, one small frozen copy per call carrying `rateLimit`).
// It only saves building objects: every call still runs every check in the
// core, and a disabled, deleted or expired key, or a user whose role changed,
// never gets an old answer (a changed role is another handle).

class Principal {
  // Reads the key's record from the addon: its slot's, as of the key's latest
  // authentication through this keyring.
  #read

  constructor(read, fields, rateLimit) {
    this.#read = read
    // The fields in the order the addon gives them, those it leaves out left out.
    this.keyId = fields.keyId
    this.kind = fields.kind
    this.account = fields.account
    if (fields.owner !== undefined) this.owner = fields.owner
    if (fields.role !== undefined) this.role = fields.role
    this.access = fields.access
    this.scopes = fields.scopes
    if (fields.target !== undefined) this.target = fields.target
    this.rateLimit = rateLimit
    Object.freeze(this)
  }

  /**
   * The key's whole record as of its latest authentication through this
   * keyring: for the principal just answered, as of this authentication.
   * Read from the addon on each access (a fresh object; never the key).
   */
  get record() {
    return this.#read()
  }

  /** This principal with one call's rate limit status (reset in milliseconds). */
  static withStatus(p, limit, remaining, reset) {
    return new Principal(p.#read, p, Object.freeze({ limit, remaining, reset }))
  }
}

/** The principals of one keyring, by handle. */
class Principals {
  #keyring
  // bySlot[slot][role]
  #bySlot = []

  constructor(keyring) {
    this.#keyring = keyring
  }

  /** The principal for a handle the keyring's addon answered. */
  get(handle) {
    const bySlot = this.#bySlot[handle >>> 4]
    const cached = bySlot === undefined ? undefined : bySlot[handle & 15]
    return cached === undefined ? this.#remember(handle) : cached
  }

  #remember(handle) {
    const keyring = this.#keyring
    const fields = keyring._principal(handle)
    Object.freeze(fields.scopes)
    const p = new Principal(() => keyring._record(handle), fields, null)
    const slot = handle >>> 4
    const cache = this.#bySlot
    while (cache.length <= slot) cache.push(undefined)
    if (cache[slot] === undefined) cache[slot] = []
    cache[slot][handle & 15] = p
    return p
  }
}

module.exports = { Principals, withStatus: Principal.withStatus }
