// The ES module entry of `apikeys/prometheus`: the same objects as prometheus.js.
import cjs from './prometheus.js'

export const { registerAuthMetrics, COUNTER, HISTOGRAM } = cjs
export default cjs
