/* Types of the ES module entry of `apikeys/prometheus` (prometheus.mjs): the same names as prometheus.d.ts. */
import * as prometheus from './prometheus.js'
export * from './prometheus.js'
export default prometheus
