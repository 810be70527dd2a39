// The ES module entry of `apikeys/express`: the same objects as express.js.
// __test__/esm.test.mjs checks that this list and express.js's exports stay the same.
import cjs from './express.js'

export const { apikeys, Rejection, tokenFromAuthorization, DEFAULT_MAX_EVENT_BYTES, MAX_AUTHORIZATION_BYTES, management, secretScanning } = cjs
export default cjs
