import { CrashBudget, crashBudgetLimits } from './cluster';

describe('CrashBudget', () => {
  const limits = { windowMs: 60_000, maxCrashes: 5, firstDelayMs: 500, maxDelayMs: 3_000 };

  it('replaces a lone crash at once', () => {
    expect(new CrashBudget(limits).recordCrash(0)).toEqual({ giveUp: false, delayMs: 0, crashesInWindow: 1 });
  });

  it('waits longer with each crash in the window, up to the ceiling, then gives up', () => {
    const budget = new CrashBudget(limits);
    const decisions = [0, 1_000, 2_000, 3_000, 4_000, 5_000].map((at) => budget.recordCrash(at));
    expect(decisions).toEqual([
      { giveUp: false, delayMs: 0, crashesInWindow: 1 },
      { giveUp: false, delayMs: 500, crashesInWindow: 2 },
      { giveUp: false, delayMs: 1_000, crashesInWindow: 3 },
      { giveUp: false, delayMs: 2_000, crashesInWindow: 4 },
      { giveUp: false, delayMs: 3_000, crashesInWindow: 5 },
      { giveUp: true, crashesInWindow: 6 },
    ]);
  });

  it('forgets crashes older than the window', () => {
    const budget = new CrashBudget(limits);
    for (const at of [0, 1_000, 2_000, 3_000, 4_000]) budget.recordCrash(at);
    expect(budget.recordCrash(64_500)).toEqual({ giveUp: false, delayMs: 0, crashesInWindow: 1 });
  });

  it('allows at least 10 crashes a minute, and two per worker with many workers', () => {
    expect(crashBudgetLimits(2).maxCrashes).toBe(10);
    expect(crashBudgetLimits(16).maxCrashes).toBe(32);
  });
});
