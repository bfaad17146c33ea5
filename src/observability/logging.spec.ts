import { serializeError } from './logging';

describe('serializeError', () => {
  it('should keep what explains an error and censor members that look secret', () => {
    const error = Object.assign(new Error('connection refused'), { code: 'ECONNREFUSED', password: 'hunter2', accessToken: 'abc' });
    const serialized = serializeError(error) as Record<string, unknown>;
    expect(serialized).toMatchObject({ type: 'Error', message: 'connection refused', code: 'ECONNREFUSED', password: '[redacted]', accessToken: '[redacted]' });
    expect(serialized.stack).toContain('connection refused');
    expect(JSON.stringify(serialized)).not.toContain('hunter2');
  });

  it('should censor an object that is not an error in a copy, leaving the caller\'s object alone', () => {
    const failure = { reason: 'refused', secret: 's3cret' };
    expect(serializeError(failure)).toEqual({ reason: 'refused', secret: '[redacted]' });
    expect(failure.secret).toBe('s3cret');
  });

  it('should pass anything that is not an object through', () => {
    expect(serializeError('text')).toBe('text');
    expect(serializeError(undefined)).toBeUndefined();
  });
});
