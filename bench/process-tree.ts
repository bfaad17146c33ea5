import { readdir, readFile } from 'node:fs/promises';

/**
 * The pid and all its live descendants: in cluster mode (WEB_CONCURRENCY > 1) the service is a
 * primary and its workers, and its CPU and memory are theirs summed. A single-process service
 * has no children, so this is [pid]. Read from /proc/<pid>/task/<tid>/children where the kernel
 * offers it, else from the parent pid (field 4) of every /proc/<pid>/stat.
 */
export async function processTree(pid: number): Promise<number[]> {
  const childrenOf = await childrenReader();
  const tree = [pid];
  for (let index = 0; index < tree.length; index += 1) tree.push(...(await childrenOf(tree[index]!)));
  return tree;
}

type ChildrenReader = (pid: number) => Promise<number[]>;

async function childrenReader(): Promise<ChildrenReader> {
  if (await kernelListsChildren()) return childrenFromTasks;
  const parents = await parentsOfAllProcesses();
  return (pid) => Promise.resolve([...parents].filter(([, parent]) => parent === pid).map(([child]) => child));
}

let listsChildren: boolean | undefined;

/** /proc/<pid>/task/<tid>/children needs CONFIG_PROC_CHILDREN, which not every kernel has. */
async function kernelListsChildren(): Promise<boolean> {
  if (listsChildren === undefined) {
    try {
      await readFile(`/proc/${process.pid}/task/${process.pid}/children`, 'utf8');
      listsChildren = true;
    } catch {
      listsChildren = false; // no such file: scan /proc for parent pids instead
    }
  }
  return listsChildren;
}

async function childrenFromTasks(pid: number): Promise<number[]> {
  try {
    const tasks = await readdir(`/proc/${pid}/task`);
    const lists = await Promise.all(tasks.map((task) => readFile(`/proc/${pid}/task/${task}/children`, 'utf8').catch(() => '')));
    return lists.flatMap((list) => list.trim().split(/\s+/).filter((entry) => entry !== '').map(Number));
  } catch {
    return []; // the process is gone
  }
}

async function parentsOfAllProcesses(): Promise<Map<number, number>> {
  const parents = new Map<number, number>();
  const entries = (await readdir('/proc')).filter((entry) => /^\d+$/.test(entry));
  await Promise.all(
    entries.map(async (entry) => {
      try {
        const stat = await readFile(`/proc/${entry}/stat`, 'utf8');
        // The command name (field 2) is in parentheses and may hold spaces: count fields after its end.
        const parent = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
        parents.set(Number(entry), parent);
      } catch {
        // exited while we looked: not part of any tree any more
      }
    }),
  );
  return parents;
}
