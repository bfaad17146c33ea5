import { lockBenchDatabase, resolveDatabaseServer } from '../../bench/database';

/** Not the bench's own key: a bench running on this server meanwhile must not fail the test, nor the test the bench. */
const TEST_LOCK_KEY = 7_146_281_938;

describe('the bench database lock', () => {
  it('should let one bench run at a time use the bench database, and the next once the first has finished', async () => {
    const server = await resolveDatabaseServer({ DATABASE_URL: process.env.TEST_SERVER_URL }, () => undefined);
    const unlockFirst = await lockBenchDatabase(server, TEST_LOCK_KEY);
    try {
      await expect(lockBenchDatabase(server, TEST_LOCK_KEY)).rejects.toThrow(/Another bench run is using database match_booking_bench/);
    } finally {
      await unlockFirst();
    }
    const unlockNext = await lockBenchDatabase(server, TEST_LOCK_KEY);
    await unlockNext();
  });
});
