/** git for the tests: commands as a fixed author, and bare repositories seeded with files. */
import { execFileSync } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';

/** git in a directory as the tests' fixed author, its output trimmed: for seeding and reading test repositories. */
export function git(cwd: string, ...args: string[]): string {
  return execFileSync('git', args, {
    cwd,
    encoding: 'utf8',
    env: { ...process.env, GIT_AUTHOR_NAME: 't', GIT_AUTHOR_EMAIL: 't@t', GIT_COMMITTER_NAME: 't', GIT_COMMITTER_EMAIL: 't@t' },
  }).trim();
}

/**
 * A bare repository at `path` whose `main` holds `files` (path → text) in one commit, made in a
 * clone beside it (`<path>-seed`, left for tests that push more). Returns `path`.
 */
export function bareRepository(path: string, files: Readonly<Record<string, string>>, message = 'manifests'): string {
  git(dirname(path), 'init', '-q', '--bare', '--initial-branch=main', path);
  const seed = `${path}-seed`;
  git(dirname(path), 'clone', '-q', path, seed);
  for (const [file, text] of Object.entries(files)) {
    mkdirSync(dirname(join(seed, file)), { recursive: true });
    writeFileSync(join(seed, file), text);
  }
  git(seed, 'add', '-A');
  git(seed, 'commit', '-qm', message);
  git(seed, 'push', '-q', 'origin', 'HEAD:main');
  return path;
}
