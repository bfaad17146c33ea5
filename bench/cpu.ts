import { spawnSync } from 'node:child_process';
import { processTree, statFields } from './process-tree';

/** Clock ticks per second of /proc/<pid>/stat's times (getconf CLK_TCK; 100 on Linux in practice). */
const TICKS_PER_SECOND = ((): number => {
  const answer = spawnSync('getconf', ['CLK_TCK'], { encoding: 'utf8' });
  const ticks = Number(answer.stdout?.trim());
  return Number.isInteger(ticks) && ticks > 0 ? ticks : 100;
})();

/**
 * CPU time (user + system, in seconds) the service has used so far: the process and, with
 * `withWorkers` (cluster mode), its workers (process-tree.ts), from /proc/<pid>/stat; null when /proc cannot tell (not
 * Linux, or the service is gone). The service's CPU per booking is the difference over a step
 * divided by the step's bookings. A worker that exits during a step takes its CPU time with it.
 */
export async function cpuSeconds(pid: number, withWorkers = false): Promise<number | null> {
  const own = await processCpuSeconds(pid);
  if (own === null || !withWorkers) return own;
  const workers = await Promise.all((await processTree(pid)).slice(1).map(processCpuSeconds));
  return workers.reduce<number>((sum, seconds) => sum + (seconds ?? 0), own);
}

async function processCpuSeconds(pid: number): Promise<number | null> {
  const fields = await statFields(pid);
  if (!fields) return null;
  const userTicks = Number(fields[11]);
  const systemTicks = Number(fields[12]);
  return Number.isFinite(userTicks) && Number.isFinite(systemTicks) ? (userTicks + systemTicks) / TICKS_PER_SECOND : null;
}
