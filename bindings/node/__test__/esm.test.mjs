// The ES module entries (index.mjs, express.mjs) name exactly what the
// CommonJS ones export, and hand out the very same objects.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { createRequire } from 'node:module'

const require = createRequire(import.meta.url)

for (const [esm, cjs] of [
  ['../index.mjs', '../index.js'],
  ['../express.mjs', '../express.js'],
  ['../prometheus.mjs', '../prometheus.js'],
]) {
  test(`${esm} exports what ${cjs} exports`, async () => {
    const ns = await import(esm)
    const exported = require(cjs)
    const names = Object.keys(ns).filter((k) => k !== 'default')
    assert.deepEqual(names.sort(), Object.keys(exported).sort())
    for (const name of names) assert.equal(ns[name], exported[name], name)
    assert.equal(ns.default, exported)
  })
}

test('package.json exports resolve both ways', async () => {
  const pkg = require('../package.json')
  for (const [subpath, conditions] of Object.entries(pkg.exports)) {
    if (typeof conditions === 'string') continue
    for (const kind of ['import', 'require']) {
      for (const file of Object.values(conditions[kind])) {
        assert.ok(pkg.files.includes(file.replace(/^\.\//, '')), `${subpath} ${kind}: ${file} is not in "files"`)
      }
    }
  }
})
