/**
 * The memory this process may use: its cgroup's limit (v2 `memory.max`, v1 `memory.limit_in_bytes`),
 * or undefined when none is set (a developer's machine). What runs at once is sized from it.
 */
import { readFileSync } from 'node:fs';

const CGROUP_FILES = ['/sys/fs/cgroup/memory.max', '/sys/fs/cgroup/memory/memory.limit_in_bytes'];

/**
 * The limit files of this process's own cgroup, then the root's: a container sees its cgroup as the
 * root, but a process placed in one without a cgroup namespace (a systemd unit, a test's cgroup) does not.
 */
function ownCgroupFiles(): string[] {
  let lines: string[];
  try {
    lines = readFileSync('/proc/self/cgroup', 'utf8').trim().split('\n');
  } catch {
    return CGROUP_FILES;
  }
  const own = lines.flatMap((line) => {
    const [, controllers, path] = /^\d+:([^:]*):(\/.*)$/.exec(line) ?? [];
    if (path === undefined || path === '/' || path.includes('..')) return [];
    // The cgroup and each of its parents: a parent's limit binds its children too.
    const ancestors = path
      .split('/')
      .filter(Boolean)
      .map((_, i, parts) => `/${parts.slice(0, i + 1).join('/')}`);
    if (controllers === '') return ancestors.map((p) => `/sys/fs/cgroup${p}/memory.max`);
    return controllers!.split(',').includes('memory') ? ancestors.map((p) => `/sys/fs/cgroup/memory${p}/memory.limit_in_bytes`) : [];
  });
  return [...own, ...CGROUP_FILES];
}
/** cgroup v1 reports "no limit" as a huge number. */
const NO_LIMIT = 2 ** 60;

/** The smallest limit any of the files sets (`max`, or v1's huge number, sets none). */
export function memoryLimitBytes(files: readonly string[] = ownCgroupFiles()): number | undefined {
  let limit: number | undefined;
  for (const file of files) {
    let text: string;
    try {
      text = readFileSync(file, 'utf8').trim();
    } catch {
      continue;
    }
    const bytes = Number(text);
    if (Number.isSafeInteger(bytes) && bytes > 0 && bytes < NO_LIMIT) limit = Math.min(limit ?? bytes, bytes);
  }
  return limit;
}
