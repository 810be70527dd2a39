'use strict'
// Where an Express server's CPU samples go, from a V8 CPU profile written by
// `node --cpu-prof` (express_app.js under wrk, stopped with SIGTERM): each
// sample is charged to the nearest frame, from the leaf up, of the apikeys
// package (bindings/node, its native calls included: V8 charges them to the
// JavaScript frame that made them), an npm package (node_modules), or the
// bench app; a sample with none of them goes to V8's own categories (GC,
// program) or to node's own JavaScript. Idle samples are left out: the
// shares are of the busy ones.
//
//   node crates/apikeys-http/bench/profile_shares.js PROFILE.cpuprofile [...]
const fs = require('node:fs')

function shares(file) {
  const profile = JSON.parse(fs.readFileSync(file, 'utf8'))
  const byId = new Map()
  const parent = new Map()
  for (const n of profile.nodes) {
    byId.set(n.id, n)
    for (const c of n.children ?? []) parent.set(c, n.id)
  }
  const owner = new Map()
  const ownerOf = (id) => {
    let got = owner.get(id)
    if (got !== undefined) return got
    const leaf = byId.get(id).callFrame
    if (leaf.functionName === '(idle)') got = 'idle'
    else if (leaf.functionName === '(garbage collector)') got = 'gc'
    else if (leaf.functionName === '(program)') got = 'program'
    else {
      got = 'node'
      for (let at = id; at !== undefined; at = parent.get(at)) {
        const url = byId.get(at).callFrame.url
        if (url.includes('/node_modules/')) {
          const m = url.match(/\/node_modules\/((?:@[^/]+\/)?[^/]+)/)
          got = `npm:${m ? m[1] : '?'}`
          break
        }
        if (url.includes('/bindings/node/')) {
          got = 'apikeys'
          break
        }
        if (url.includes('/bench/express_app.js')) {
          got = 'app'
          break
        }
      }
    }
    owner.set(id, got)
    return got
  }
  const count = new Map()
  for (const s of profile.samples) {
    const o = ownerOf(s)
    count.set(o, (count.get(o) ?? 0) + 1)
  }
  const busy = profile.samples.length - (count.get('idle') ?? 0)
  return { busy, count }
}

for (const file of process.argv.slice(2)) {
  const { busy, count } = shares(file)
  console.log(`${file}: ${busy} busy samples`)
  const rows = [...count].filter(([k]) => k !== 'idle').sort((a, b) => b[1] - a[1])
  for (const [k, n] of rows) console.log(`  ${k.padEnd(28)} ${(n / busy * 100).toFixed(2).padStart(6)} %`)
}
