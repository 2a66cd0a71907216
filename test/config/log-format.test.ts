import { describe, expect, it } from 'vitest';
import { wantsPretty } from '../../config/logger.js';
import { parseEnv } from '../../config/env.js';

describe('LOG_FORMAT', () => {
  it('auto = pretty on a terminal, JSON otherwise; json/pretty force it', () => {
    expect([wantsPretty('auto', true), wantsPretty('auto', false), wantsPretty('json', true), wantsPretty('pretty', false)]).toEqual([true, false, false, true]);
    expect(parseEnv({}).LOG_FORMAT).toBe('auto');
    expect(() => parseEnv({ LOG_FORMAT: 'yaml' })).toThrow(/LOG_FORMAT/);
  });
});
