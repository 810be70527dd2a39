'use strict'
// The errors for bad arguments and options, shaped as the addon's
// (code, status, pdCode, field), for index.js and express.js.
//
// `field` is the argument's stable name, as the core, Rust and Python spell
// it: snake_case (`key_id`, `options.rate_limits.general_key.window_ms`),
// without the values inside a path (an account id, a key id, an index),
// which only the message shows. The message names the argument as it is
// written in JavaScript (`keyId`). Neither ever holds the value itself: a
// misplaced argument may be a key.

function describe(value) {
  if (value === null) return 'null'
  if (Array.isArray(value)) return 'an array'
  return `type ${typeof value}`
}

/** The stable name of an argument path: `options.rateLimits.accounts['acme'].user` → `options.rate_limits.accounts.user`. */
function fieldOf(name) {
  return name.replace(/\[[^\]]*\]/g, '').replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`)
}

function argTypeError(name, expected, value) {
  const err = new TypeError(`The "${name}" argument must be ${expected}. Received ${describe(value)}`)
  Object.assign(err, { code: 'ERR_INVALID_ARG_TYPE', status: 400, pdCode: 2001, field: fieldOf(name) })
  return err
}

function invalidInput(message, name) {
  const err = new Error(message)
  Object.assign(err, { code: 'ERR_INVALID_INPUT', status: 400, pdCode: 2001, field: fieldOf(name) })
  return err
}

/** A name for a message: user input, so shortened and escaped (never a value). */
function optionName(k) {
  const s = k.length > 40 ? `${k.slice(0, 40)}…` : k
  return `'${JSON.stringify(s).slice(1, -1)}'`
}

module.exports = { argTypeError, invalidInput, optionName, fieldOf }
