'use strict'
// docs/api.md lists every public name of the npm package: a name in its Node
// column that index.d.ts (or express.d.ts's module) lacks, or a name index.d.ts
// declares without a row there, fails this test (the three APIs may not drift apart).
const test = require('node:test')
const assert = require('node:assert/strict')
const fs = require('node:fs')
const path = require('node:path')

const ROOT = path.join(__dirname, '..', '..', '..')

/** Exported classes, interfaces, types, functions and constants, and the members of classes and interfaces. */
function typeNames(text) {
  const names = new Set()
  let owner = null
  for (const line of text.split('\n')) {
    let m = /^export (?:declare )?(?:class|interface) (\w+)/.exec(line)
    if (m) {
      owner = m[1]
      names.add(owner)
      continue
    }
    m = /^export (?:declare )?(?:function|const|type) (\w+)/.exec(line)
    if (m) {
      owner = null
      names.add(m[1])
      continue
    }
    if (line.startsWith('}')) {
      owner = null
      continue
    }
    if (owner) {
      m = /^ {2}(?:static |get |readonly )?(\w+)[(?:<]/.exec(line)
      if (m && !m[1].startsWith('_') && m[1] !== 'constructor') names.add(`${owner}.${m[1]}`)
    }
  }
  return names
}

/** The names in one column (0 Rust, 1 Python, 2 Node) of every table of docs/api.md. */
function docNames(text, column) {
  const names = new Set()
  for (const line of text.split('\n')) {
    if (!line.startsWith('| ') || line.startsWith('|---')) continue
    const cells = line.trim().replace(/^\||\|$/g, '').split('|').map((c) => c.trim())
    if (cells.length < 3 || cells[0] === 'Rust') continue
    const m = /^`([\w.]+)`$/.exec(cells[column])
    if (m) names.add(m[1])
  }
  return names
}

test('every name of index.d.ts has a row in docs/api.md, and every row a name', () => {
  const declared = typeNames(fs.readFileSync(path.join(__dirname, '..', 'index.d.ts'), 'utf8'))
  const listed = docNames(fs.readFileSync(path.join(ROOT, 'docs', 'api.md'), 'utf8'), 2)
  assert.ok(declared.size > 50, 'names read from index.d.ts')
  assert.deepEqual([...declared].filter((n) => !listed.has(n)).sort(), [], 'in index.d.ts, not in docs/api.md')
  assert.deepEqual([...listed].filter((n) => !declared.has(n)).sort(), [], "in docs/api.md's Node column, not in index.d.ts")
})

test('the checks read what they claim to', () => {
  const types = 'export declare class Keyring {\n  authenticate(): void\n  get mayBlock(): boolean\n}\n'
  assert.deepEqual([...typeNames(types)].sort(), ['Keyring', 'Keyring.authenticate', 'Keyring.mayBlock'])
  const doc = '| Rust | Python | Node | n |\n|---|---|---|---|\n| `x` | — | `Keyring.gone` | |\n'
  assert.deepEqual([...docNames(doc, 2)], ['Keyring.gone'])
})
