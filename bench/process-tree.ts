import { readdir, readFile } from 'node:fs/promises';

/**
 * The fields of /proc/<pid>/stat after the command name, or null when the process is gone (or
 * there is no /proc). The name (field 2) is in parentheses and may hold spaces, so the fields
 * are counted from its end: index 0 is field 3 (state), 1 the parent pid, 11 and 12 utime and stime.
 */
export async function statFields(pid: number | string): Promise<string[] | null> {
  try {
    const stat = await readFile(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  } catch {
    return null;
  }
}

/**
 * The pid and all its live descendants: in cluster mode (WEB_CONCURRENCY > 1) the service is a
 * primary and its workers, and its CPU and memory are theirs summed. Found from the parent pid
 * of every process in /proc (not every kernel has /proc/<pid>/task/<tid>/children).
 */
export async function processTree(pid: number): Promise<number[]> {
  const parents = new Map<number, number>();
  const entries = (await readdir('/proc')).filter((entry) => /^\d+$/.test(entry));
  await Promise.all(
    entries.map(async (entry) => {
      const fields = await statFields(entry);
      // A process that exited while we looked is part of no tree any more.
      if (fields) parents.set(Number(entry), Number(fields[1]));
    }),
  );
  const tree = [pid];
  for (let index = 0; index < tree.length; index += 1) {
    for (const [child, parent] of parents) if (parent === tree[index]) tree.push(child);
  }
  return tree;
}
