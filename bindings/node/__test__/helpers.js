'use strict'
// Shared by the tests: actors of every role in one account, and assertions on errors.
const assert = require('node:assert/strict')

const ROLES = [
  'owner',
  'admin',
  'user',
  'limited_user',
  'observer',
  'restricted_access',
  'read_only_user',
  'read_only_limited_user',
]

function actor(role, user = `P${role.toUpperCase()}`, account = 'acme') {
  return { account, user, role }
}

/** Asserts that `fn` throws an Error with this code, status and pdCode; returns the error. */
function throwsCode(fn, code, status, pdCode) {
  let caught
  assert.throws(fn, (e) => {
    caught = e
    return true
  })
  assert.ok(caught instanceof Error, `expected an Error, got ${caught}`)
  assert.equal(caught.code, code, caught.message)
  if (status !== undefined) assert.equal(caught.status, status, `status of ${code}`)
  if (pdCode !== undefined) assert.equal(caught.pdCode, pdCode, `pdCode of ${code}`)
  return caught
}

async function rejectsCode(promise, code, status, pdCode) {
  let caught
  await assert.rejects(promise, (e) => {
    caught = e
    return true
  })
  assert.ok(caught instanceof Error)
  assert.equal(caught.code, code, caught.message)
  if (status !== undefined) assert.equal(caught.status, status)
  if (pdCode !== undefined) assert.equal(caught.pdCode, pdCode)
  return caught
}

module.exports = { ROLES, actor, throwsCode, rejectsCode }
