/* Types of the ES module entry (index.mjs): the same names as index.d.ts. */
import * as apikeys from './index.js'
export * from './index.js'
export default apikeys
