import { describe, expect, it } from 'vitest';
import { ConfigError, parseEnv } from '../../config/env.js';

describe('config/env', () => {
  it('applies embedded defaults', () => {
    const e = parseEnv({});
    expect(e).toMatchObject({ API_PORT: 3000, TEMPORAL_UI_PORT: 8233, TEMPORAL_NAMESPACE: 'default', TEMPORAL_TASK_QUEUE: 'hostflow', DATA_DIR: '.data' });
    expect(e.DATABASE_URL).toBeUndefined();
    expect(Object.isFrozen(e)).toBe(true);
  });

  it('names every bad variable', () => {
    try {
      parseEnv({ API_PORT: 'eighty', DATABASE_URL: 'mysql://x', TEMPORAL_ADDRESS: 'nohostport' });
      expect.unreachable();
    } catch (err) {
      expect(err).toBeInstanceOf(ConfigError);
      const msg = (err as Error).message;
      for (const name of ['API_PORT', 'DATABASE_URL', 'TEMPORAL_ADDRESS']) expect(msg).toContain(name);
    }
    expect(() => parseEnv({ TEMPORAL_TLS_CERT_PATH: '/c.pem' })).toThrow(/TEMPORAL_TLS_KEY_PATH/);
  });
});
