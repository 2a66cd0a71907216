// The failure converter of every worker and of the workflow bundle (loaded by path: the SDK
// `require`s it in the worker and webpack bundles it into the workflow sandbox, so it is plain
// CommonJS with no Node built-ins). Failure messages and stack traces move into an encoded
// attributes payload, which the payload codec encrypts like every other payload: an error such as
// "user alice exists on 10.0.0.5" is not plaintext in Temporal's storage. Failure *types*
// (ApplicationFailure type, nonRetryable) stay plaintext so retry policies still see them.
/* eslint-disable @typescript-eslint/no-require-imports */
const { DefaultFailureConverter } = require('@temporalio/common');

exports.failureConverter = new DefaultFailureConverter({ encodeCommonAttributes: true });
