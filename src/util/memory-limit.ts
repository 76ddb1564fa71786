/**
 * The memory this process may use: its cgroup's limit (v2 `memory.max`, v1 `memory.limit_in_bytes`),
 * or undefined when none is set (a developer's machine). What runs at once is sized from it.
 */
import { readFileSync } from 'node:fs';

const CGROUP_FILES = ['/sys/fs/cgroup/memory.max', '/sys/fs/cgroup/memory/memory.limit_in_bytes'];
/** cgroup v1 reports "no limit" as a huge number. */
const NO_LIMIT = 2 ** 60;

export function memoryLimitBytes(files: readonly string[] = CGROUP_FILES): number | undefined {
  for (const file of files) {
    let text: string;
    try {
      text = readFileSync(file, 'utf8').trim();
    } catch {
      continue;
    }
    if (text === 'max') return undefined;
    const bytes = Number(text);
    if (Number.isSafeInteger(bytes) && bytes > 0 && bytes < NO_LIMIT) return bytes;
  }
  return undefined;
}
