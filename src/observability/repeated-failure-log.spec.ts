import type { Logger } from '@nestjs/common';
import { RepeatedFailureLog } from './repeated-failure-log';

describe('RepeatedFailureLog', () => {
  afterEach(() => jest.useRealTimers());

  it('should log the first failure, then one line per period with what it left out, and the recovery', () => {
    jest.useFakeTimers({ now: 0 });
    const lines: string[] = [];
    const logger = { error: (message: string) => lines.push(`error ${message}`), log: (message: string) => lines.push(`log ${message}`) } as unknown as Logger;
    const failures = new RepeatedFailureLog(logger, 'Job "dispatch-webhooks"', 30_000);

    for (let i = 0; i < 130; i += 1) {
      failures.failed(new Error('connect ECONNREFUSED'));
      jest.advanceTimersByTime(250);
    }
    failures.succeeded();
    failures.succeeded();

    expect(lines).toEqual([
      'error Job "dispatch-webhooks" failed: Error: connect ECONNREFUSED',
      'error Job "dispatch-webhooks" failed (119 more failure(s) since the last report): Error: connect ECONNREFUSED',
      'log Job "dispatch-webhooks" works again, after 130 failure(s) in 32.5 s',
    ]);
  });
});
