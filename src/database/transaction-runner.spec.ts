import { Logger } from '@nestjs/common';
import { QueryFailedError, type DataSource, type QueryRunner } from 'typeorm';
import { CommitOutcomeUnknownError, ConcurrencyConflictError, DatabaseUnavailableError, LockTimeoutError } from '../errors/domain-errors';
import { Metrics } from '../observability/metrics';
import { TransactionRunner } from './transaction-runner';

/**
 * The failure paths of the transaction helper, with a stubbed QueryRunner: these are the
 * cases (startTransaction, commit, rollback or release throwing) that a real database
 * cannot be made to produce on demand.
 */
type QueryRunnerStub = {
  [K in 'connect' | 'startTransaction' | 'commitTransaction' | 'rollbackTransaction' | 'release' | 'query' | 'releasePostgresConnection']: jest.Mock;
} & { isTransactionActive: boolean };

function stubQueryRunner(): QueryRunnerStub {
  const stub: QueryRunnerStub = {
    isTransactionActive: false,
    connect: jest.fn().mockResolvedValue(undefined),
    startTransaction: jest.fn().mockImplementation(() => {
      stub.isTransactionActive = true;
      return Promise.resolve();
    }),
    commitTransaction: jest.fn().mockImplementation(() => {
      stub.isTransactionActive = false;
      return Promise.resolve();
    }),
    rollbackTransaction: jest.fn().mockImplementation(() => {
      stub.isTransactionActive = false;
      return Promise.resolve();
    }),
    release: jest.fn().mockResolvedValue(undefined),
    releasePostgresConnection: jest.fn().mockResolvedValue(undefined),
    query: jest.fn().mockResolvedValue([]),
  };
  return stub;
}

function createSut(queryRunner: QueryRunnerStub): TransactionRunner {
  const dataSource = { createQueryRunner: () => queryRunner as unknown as QueryRunner } as unknown as DataSource;
  return new TransactionRunner(dataSource, { database: { lockTimeoutMs: 1500, conflictRetries: 2, slowTransactionMs: 5000 } } as never, new Metrics());
}

describe('TransactionRunner', () => {
  let errorLog: jest.SpyInstance;

  beforeEach(() => {
    errorLog = jest.spyOn(Logger.prototype, 'error').mockImplementation(() => undefined);
  });
  afterEach(() => {
    errorLog.mockRestore();
  });

  it('should start, run the work, commit and release, returning the result', async () => {
    const queryRunner = stubQueryRunner();
    const result = await createSut(queryRunner).run('test', () => Promise.resolve(42));

    expect(result).toBe(42);
    expect(queryRunner.connect).toHaveBeenCalledTimes(1);
    expect(queryRunner.startTransaction).toHaveBeenCalledTimes(1);
    // lock_timeout is a session setting (data-source-options.ts): no round trip per transaction.
    expect(queryRunner.query).not.toHaveBeenCalled();
    expect(queryRunner.commitTransaction).toHaveBeenCalledTimes(1);
    expect(queryRunner.rollbackTransaction).not.toHaveBeenCalled();
    expect(queryRunner.release).toHaveBeenCalledTimes(1);
    expect(queryRunner.releasePostgresConnection).not.toHaveBeenCalled();
  });

  it('should not roll back when startTransaction throws, and should destroy the connection instead of pooling it', async () => {
    const queryRunner = stubQueryRunner();
    const startFailure = new Error('start failed');
    queryRunner.startTransaction.mockImplementation(() => {
      queryRunner.isTransactionActive = true; // TypeORM sets the flag before sending START TRANSACTION
      return Promise.reject(startFailure);
    });
    const work = jest.fn();

    await expect(createSut(queryRunner).run('test', work)).rejects.toBe(startFailure);

    expect(work).not.toHaveBeenCalled();
    expect(queryRunner.rollbackTransaction).not.toHaveBeenCalled();
    expect(queryRunner.releasePostgresConnection).toHaveBeenCalledWith(startFailure);
    expect(queryRunner.release).not.toHaveBeenCalled();
  });

  it('should release without rollback when connecting fails', async () => {
    const queryRunner = stubQueryRunner();
    const connectFailure = new Error('timeout exceeded when trying to connect');
    queryRunner.connect.mockRejectedValue(connectFailure);

    const failure = await createSut(queryRunner)
      .run('test', () => Promise.resolve())
      .catch((error: unknown) => error);

    expect(failure).toBeInstanceOf(DatabaseUnavailableError);
    expect((failure as Error).cause).toBe(connectFailure);
    expect(queryRunner.startTransaction).not.toHaveBeenCalled();
    expect(queryRunner.rollbackTransaction).not.toHaveBeenCalled();
    expect(queryRunner.release).toHaveBeenCalledTimes(1);
  });

  it('should roll back and rethrow the work error, then release the connection to the pool', async () => {
    const queryRunner = stubQueryRunner();
    const workFailure = new Error('work failed');

    await expect(createSut(queryRunner).run('test', () => Promise.reject(workFailure))).rejects.toBe(workFailure);

    expect(queryRunner.rollbackTransaction).toHaveBeenCalledTimes(1);
    expect(queryRunner.commitTransaction).not.toHaveBeenCalled();
    expect(queryRunner.release).toHaveBeenCalledTimes(1);
  });

  it('should roll back when commit throws', async () => {
    const queryRunner = stubQueryRunner();
    const commitFailure = new Error('commit failed');
    queryRunner.commitTransaction.mockRejectedValue(commitFailure);

    await expect(createSut(queryRunner).run('test', () => Promise.resolve('never returned'))).rejects.toBe(commitFailure);

    expect(queryRunner.rollbackTransaction).toHaveBeenCalledTimes(1);
    expect(queryRunner.release).toHaveBeenCalledTimes(1);
  });

  it('should report an unknown outcome, never run the work again, and destroy the connection when it fails during COMMIT', async () => {
    const queryRunner = stubQueryRunner();
    const lost = new Error('Connection terminated unexpectedly');
    queryRunner.commitTransaction.mockRejectedValue(lost);
    const work = jest.fn().mockResolvedValue('decided');
    const warn = jest.spyOn(Logger.prototype, 'warn').mockImplementation(() => undefined);

    const failure = await createSut(queryRunner).run('test', work).catch((error: unknown) => error);

    expect(failure).toBeInstanceOf(CommitOutcomeUnknownError);
    expect((failure as Error).cause).toBe(lost);
    expect(work).toHaveBeenCalledTimes(1);
    expect(queryRunner.rollbackTransaction).not.toHaveBeenCalled();
    expect(queryRunner.releasePostgresConnection).toHaveBeenCalledWith(lost);
    warn.mockRestore();
  });

  it('should report an unknown outcome when the server ends the session during COMMIT (it may have committed first)', async () => {
    const queryRunner = stubQueryRunner();
    queryRunner.commitTransaction.mockRejectedValue(
      new QueryFailedError('COMMIT', [], Object.assign(new Error('terminating connection due to administrator command'), { code: '57P01' })),
    );
    const warn = jest.spyOn(Logger.prototype, 'warn').mockImplementation(() => undefined);

    await expect(createSut(queryRunner).run('test', () => Promise.resolve())).rejects.toBeInstanceOf(CommitOutcomeUnknownError);
    warn.mockRestore();
  });

  it('should not call a connection failure before COMMIT an unknown outcome: nothing can have committed', async () => {
    const queryRunner = stubQueryRunner();
    const lost = new Error('Connection terminated unexpectedly');

    const failure = await createSut(queryRunner).run('test', () => Promise.reject(lost)).catch((error: unknown) => error);

    expect(failure).toBeInstanceOf(DatabaseUnavailableError);
    expect(failure).not.toBeInstanceOf(CommitOutcomeUnknownError);
  });

  it('should throw the original error when rollback also throws, log the rollback failure and destroy the connection', async () => {
    const queryRunner = stubQueryRunner();
    const workFailure = new Error('work failed');
    const rollbackFailure = new Error('rollback failed');
    queryRunner.rollbackTransaction.mockRejectedValue(rollbackFailure);

    await expect(createSut(queryRunner).run('book', () => Promise.reject(workFailure))).rejects.toBe(workFailure);

    expect(errorLog).toHaveBeenCalledWith(expect.stringContaining('Rollback of transaction "book" failed'), rollbackFailure.stack);
    expect(errorLog.mock.calls[0]?.[0]).toContain('work failed');
    expect(queryRunner.releasePostgresConnection).toHaveBeenCalledWith(rollbackFailure);
    expect(queryRunner.release).not.toHaveBeenCalled();
  });

  it('should log a release failure and still return the result', async () => {
    const queryRunner = stubQueryRunner();
    const releaseFailure = new Error('release failed');
    queryRunner.release.mockRejectedValue(releaseFailure);

    await expect(createSut(queryRunner).run('book', () => Promise.resolve('booked'))).resolves.toBe('booked');

    expect(errorLog).toHaveBeenCalledWith(expect.stringContaining('Releasing the connection of transaction "book" failed'), releaseFailure.stack);
  });

  it('should throw the work error, not the release error, when both fail', async () => {
    const queryRunner = stubQueryRunner();
    const workFailure = new Error('work failed');
    queryRunner.release.mockRejectedValue(new Error('release failed'));

    await expect(createSut(queryRunner).run('test', () => Promise.reject(workFailure))).rejects.toBe(workFailure);
    expect(errorLog).toHaveBeenCalledTimes(1);
  });

  it('should destroy a connection that is somehow still inside a transaction at release', async () => {
    const queryRunner = stubQueryRunner();
    queryRunner.commitTransaction.mockResolvedValue(undefined); // leaves isTransactionActive true

    await createSut(queryRunner).run('test', () => Promise.resolve());

    expect(queryRunner.releasePostgresConnection).toHaveBeenCalledWith(expect.any(Error));
    expect(queryRunner.release).not.toHaveBeenCalled();
  });

  it('should not send ROLLBACK on a connection that timed out client-side, and should destroy it', async () => {
    const queryRunner = stubQueryRunner();
    const readTimeout = new QueryFailedError('SELECT 1', [], new Error('Query read timeout'));

    const failure = await createSut(queryRunner)
      .run('test', () => Promise.reject(readTimeout))
      .catch((error: unknown) => error);

    expect(failure).toBeInstanceOf(DatabaseUnavailableError);
    expect(queryRunner.rollbackTransaction).not.toHaveBeenCalled();
    expect(queryRunner.releasePostgresConnection).toHaveBeenCalledWith(readTimeout);
  });

  it('should run the work again after a deadlock, and succeed when a retry does', async () => {
    const queryRunner = stubQueryRunner();
    const deadlock = new QueryFailedError('UPDATE', [], Object.assign(new Error('deadlock detected'), { code: '40P01' }));
    const work = jest.fn().mockRejectedValueOnce(deadlock).mockResolvedValueOnce('done');
    jest.spyOn(Logger.prototype, 'warn').mockImplementation(() => undefined);

    await expect(createSut(queryRunner).run('test', work)).resolves.toBe('done');

    expect(work).toHaveBeenCalledTimes(2);
    expect(queryRunner.rollbackTransaction).toHaveBeenCalledTimes(1);
    expect(queryRunner.commitTransaction).toHaveBeenCalledTimes(1);
  });

  it('should give up with ConcurrencyConflictError after the configured number of retries', async () => {
    const queryRunner = stubQueryRunner();
    const serialization = new QueryFailedError('UPDATE', [], Object.assign(new Error('could not serialize'), { code: '40001' }));
    const work = jest.fn().mockRejectedValue(serialization);
    jest.spyOn(Logger.prototype, 'warn').mockImplementation(() => undefined);

    await expect(createSut(queryRunner).run('test', work)).rejects.toBeInstanceOf(ConcurrencyConflictError);

    expect(work).toHaveBeenCalledTimes(3); // the first run and 2 retries
  });

  it('should translate a lock_timeout failure into LockTimeoutError', async () => {
    const queryRunner = stubQueryRunner();
    const lockFailure = new QueryFailedError('SELECT ... FOR UPDATE', [], Object.assign(new Error('canceling statement due to lock timeout'), { code: '55P03' }));

    const failure = await createSut(queryRunner)
      .run('test', () => Promise.reject(lockFailure))
      .catch((error: unknown) => error);

    expect(failure).toBeInstanceOf(LockTimeoutError);
    expect(queryRunner.rollbackTransaction).toHaveBeenCalledTimes(1);
  });
});
