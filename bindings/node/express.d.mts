/* Types of the ES module entry of `apikeys/express` (express.mjs): the same names as express.d.ts. */
import * as express from './express.js'
export * from './express.js'
export default express
