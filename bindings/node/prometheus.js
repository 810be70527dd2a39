'use strict'
// Verification metrics for prom-client (docs/metrics.md, docs/design.md §12).
//
// The keyring counts the final answer of every authentication, by key kind
// and outcome, and its latency, when it is made with `{ metrics: true }`.
// `registerAuthMetrics(keyring, registry)` adds two metrics to a prom-client
// registry that read those counts at each scrape:
// `apikeys_authentications_total{kind, outcome}` (counter) and
// `apikeys_authentication_duration_seconds{kind, outcome}` (histogram) — the
// same names, labels and buckets as Python's collector and Rust's `metrics`
// facade. This module only converts; the core decides every name and count.
const { Keyring } = require('./index.js')
const { argTypeError, invalidInput } = require('./args.js')

const COUNTER = 'apikeys_authentications_total'
const HISTOGRAM = 'apikeys_authentication_duration_seconds'
const COUNTER_HELP = 'Final answers of authentications, by key kind and outcome.'
const HISTOGRAM_HELP = 'Time to answer an authentication, by key kind and outcome.'

function counterValues(snap) {
  return snap.series.map((s) => ({ labels: { kind: s.kind, outcome: s.outcome }, value: s.count }))
}

function histogramValues(snap) {
  const les = snap.bucketBounds.map(String).concat('+Inf')
  const values = []
  for (const s of snap.series) {
    for (let i = 0; i < les.length; i++) {
      values.push({ metricName: `${HISTOGRAM}_bucket`, labels: { kind: s.kind, outcome: s.outcome, le: les[i] }, value: s.buckets[i] })
    }
    values.push({ metricName: `${HISTOGRAM}_sum`, labels: { kind: s.kind, outcome: s.outcome }, value: s.sumSeconds })
    values.push({ metricName: `${HISTOGRAM}_count`, labels: { kind: s.kind, outcome: s.outcome }, value: s.count })
  }
  return values
}

// A metric as prom-client's registry reads it: `get()` answers its values now.
function family(keyring, name, help, type, values) {
  return {
    name,
    help,
    type,
    aggregator: 'sum',
    async get() {
      const snap = keyring.metrics() ?? { bucketBounds: [], series: [] }
      return { name, help, type, aggregator: 'sum', values: values(snap) }
    },
    reset() {},
  }
}

/**
 * Register `keyring`'s verification metrics in a prom-client `registry`
 * (default: prom-client's global `register`). Throws `ERR_INVALID_ARG_TYPE`
 * for anything but a Keyring or a registry, `ERR_INVALID_INPUT` for a keyring
 * that counts no metrics or a registry that already has these names (nothing
 * is registered then). Answers the two metrics it registered.
 */
function registerAuthMetrics(keyring, registry) {
  if (!(keyring instanceof Keyring)) throw argTypeError('keyring', 'a Keyring', keyring)
  if (registry === undefined) registry = require('prom-client').register
  if (registry === null || typeof registry !== 'object' || typeof registry.registerMetric !== 'function' || typeof registry.getSingleMetric !== 'function') {
    throw argTypeError('registry', 'a prom-client Registry', registry)
  }
  if (keyring.metrics() === null) {
    throw invalidInput('this keyring counts no metrics: make it with new Keyring({ metrics: true })', 'keyring')
  }
  for (const name of [COUNTER, HISTOGRAM]) {
    if (registry.getSingleMetric(name) !== undefined) {
      throw invalidInput(`the registry already has a metric named ${name}`, 'registry')
    }
  }
  const counter = family(keyring, COUNTER, COUNTER_HELP, 'counter', counterValues)
  const histogram = family(keyring, HISTOGRAM, HISTOGRAM_HELP, 'histogram', histogramValues)
  registry.registerMetric(counter)
  registry.registerMetric(histogram)
  return { counter, histogram }
}

module.exports = { registerAuthMetrics, COUNTER, HISTOGRAM }
