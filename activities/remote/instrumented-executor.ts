import { SpanKind } from '@opentelemetry/api';
import { builderLabel, remoteCommandDuration } from '../../config/metrics.js';
import { inSpan } from '../../config/tracing.js';
import { classifyCommand } from './audited-executor.js';
import { RemoteError, type RemoteExecutor } from './executor.js';

/**
 * Wraps an executor with a CLIENT span per command (`remote.exec <builder>`: host id, protocol,
 * builder, exit code — never the command text, its arguments, stdin or output, where secrets
 * travel) and the `hostflow_remote_command_duration_seconds` histogram by protocol, builder and
 * result. The span is a child of the activity's RunActivity span, so a trace runs from the API
 * request to the command.
 */
export function instrumentedExecutor<E extends RemoteExecutor>(inner: E, protocol: 'ssh' | 'winrm'): E {
  const exec: RemoteExecutor['exec'] = (hostId, command, opts) => {
    const builder = builderLabel(classifyCommand(command).builder);
    const end = remoteCommandDuration.startTimer({ protocol, builder });
    return inSpan(`remote.exec ${builder}`, { 'hostflow.host_id': hostId, 'hostflow.remote.protocol': protocol, 'hostflow.command.builder': builder }, async (span) => {
      try {
        const r = await inner.exec(hostId, command, opts);
        span.setAttribute('hostflow.command.exit_code', r.exitCode);
        end({ result: r.exitCode === 0 ? 'exit_0' : 'exit_nonzero' });
        return r;
      } catch (err) {
        const type = err instanceof RemoteError ? err.type : 'error';
        span.setAttribute('hostflow.remote.error_type', type);
        end({ result: type });
        throw err;
      }
    }, SpanKind.CLIENT);
  };
  return new Proxy(inner, {
    get(target, prop, receiver) {
      if (prop === 'exec') return exec;
      const v = Reflect.get(target, prop, receiver) as unknown;
      return typeof v === 'function' ? (v as (...a: unknown[]) => unknown).bind(target) : v;
    },
  });
}
