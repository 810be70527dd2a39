#!/usr/bin/env node
// One version everywhere. Checks that every crate of the workspace, the Python
// package (its version comes from bindings/python/Cargo.toml: pyproject.toml
// declares it dynamic), the npm package, its per-platform packages (npm/*) and
// the newest CHANGELOG.md entry carry the same version, and that the workspace's
// requirements on its own crates ask for exactly that version. Artifact files
// given as arguments (wheels, sdists, .crate files, npm tarballs) must carry it
// in their names too.
//
//   node scripts/check-versions.mjs [bindings/python/dist/*.whl target/package/*.crate ...]
import { execFileSync } from 'node:child_process'
import { readFileSync, readdirSync, existsSync } from 'node:fs'
import { basename, dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'

const root = join(dirname(fileURLToPath(import.meta.url)), '..')
const problems = []
const seen = [] // [where, version]

const metadata = JSON.parse(
  execFileSync('cargo', ['metadata', '--no-deps', '--format-version', '1', '--offline'], {
    cwd: root,
    encoding: 'utf8',
    maxBuffer: 64 << 20,
  }),
)
const crates = new Map(metadata.packages.map((p) => [p.name, p]))
for (const p of metadata.packages) seen.push([`crate ${p.name}`, p.version])
const version = crates.get('apikeys')?.version
if (!version) {
  console.error('check-versions: no crate named apikeys in the workspace')
  process.exit(1)
}

// Requirements between the workspace's own crates: `apikeys = "0.1.0"` must not lag behind.
for (const p of metadata.packages) {
  for (const d of p.dependencies) {
    if (!crates.has(d.name) || d.name === p.name || d.kind === 'dev') continue
    const want = `^${version}`
    if (d.req !== want && d.req !== `=${version}`) {
      problems.push(`crate ${p.name} requires ${d.name} ${d.req}, not ${want}`)
    }
  }
}

// Python: pyproject.toml takes its version from Cargo.toml (maturin), so it must not set one.
const pyproject = readFileSync(join(root, 'bindings/python/pyproject.toml'), 'utf8')
const project = pyproject.split(/^\[project\]$/m)[1]?.split(/^\[/m)[0] ?? ''
if (!/^dynamic\s*=\s*\[[^\]]*"version"/m.test(project) || /^version\s*=/m.test(project)) {
  problems.push('bindings/python/pyproject.toml must declare `dynamic = ["version"]` and no version of its own')
}
seen.push(['python package (apikeys-python crate)', crates.get('apikeys-python')?.version])

// npm: the main package, its per-platform packages, and the optionalDependencies if listed.
const nodeDir = join(root, 'bindings/node')
const main = JSON.parse(readFileSync(join(nodeDir, 'package.json'), 'utf8'))
seen.push([`npm ${main.name}`, main.version])
const npmDir = join(nodeDir, 'npm')
const platformDirs = existsSync(npmDir) ? readdirSync(npmDir) : []
if (platformDirs.length === 0) problems.push('bindings/node/npm/ has no per-platform packages (napi create-npm-dirs)')
for (const dir of platformDirs) {
  const pkg = JSON.parse(readFileSync(join(npmDir, dir, 'package.json'), 'utf8'))
  seen.push([`npm ${pkg.name}`, pkg.version])
}
for (const [name, v] of Object.entries(main.optionalDependencies ?? {})) seen.push([`npm optionalDependency ${name}`, v])

// CHANGELOG.md: the newest released entry ("## [x.y.z]" or "## x.y.z").
const changelog = readFileSync(join(root, 'CHANGELOG.md'), 'utf8')
const entry = changelog.match(/^## \[?(\d+\.\d+\.\d+[^\]\s]*)\]?/m)
if (!entry) problems.push('CHANGELOG.md has no "## [x.y.z]" entry')
else seen.push(['CHANGELOG.md newest entry', entry[1]])

// Artifacts named on the command line.
const artifactVersion = [
  [/^apikeys-(\d[^-]*)-cp\d+-(?:cp\d+|abi3)-.*\.whl$/, 'wheel'],
  [/^apikeys-(\d.*)\.tar\.gz$/, 'sdist'],
  [/^apikeys(?:-[a-z]+)?-(\d+\.\d+\.\d+.*)\.crate$/, 'crate'],
  [/^apikeys(?:-[a-z0-9]+)*-(\d+\.\d+\.\d+.*)\.tgz$/, 'npm tarball'],
]
for (const file of process.argv.slice(2)) {
  const name = basename(file)
  const hit = artifactVersion.map(([re, kind]) => [name.match(re), kind]).find(([m]) => m)
  if (!hit) problems.push(`${name}: not an artifact name this script knows`)
  else seen.push([`${hit[1]} ${name}`, hit[0][1]])
}

for (const [where, v] of seen) if (v !== version) problems.push(`${where} is ${v}, not ${version}`)
if (problems.length) {
  console.error(`check-versions: the version is ${version} (crate apikeys), but:\n  ${problems.join('\n  ')}`)
  process.exit(1)
}
console.log(`check-versions: ${seen.length} places carry ${version}`)
