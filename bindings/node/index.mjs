// The ES module entry (`import { Keyring } from 'apikeys'`). The package itself
// is CommonJS (index.js): its exports are spread from the generated loader, so
// Node cannot find their names by reading the file, and this wrapper names
// them. It re-exports the very same objects: a service that both imports and
// requires the package gets one Keyring class. __test__/esm.test.mjs checks
// that this list and index.js's exports stay the same.
import cjs from './index.js'

export const {
  AccessLevel,
  Api,
  AuditAction,
  ErrorCode,
  eventRoutingKey,
  generateWebhookSecret,
  IssuedKey,
  KeyKind,
  Keyring,
  ManualClock,
  OpenedKeyring,
  Role,
  RoleAlias,
  verifyWebhook,
  WebhookWorker,
  _OpenedKeyring,
  __napiBindingTarget,
  isApiKeyError,
} = cjs
export default cjs
