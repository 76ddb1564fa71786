/**
 * A working copy of one GitOps repository, on simple-git: cloned once into a cache directory,
 * fetched before each change, reset to the tip it builds on, committed with a configured author,
 * and pushed without force to the base branch. A rejected push (the base moved) is reported, not
 * thrown, so the caller can fetch, re-apply its edit on the new tip and push again.
 *
 * HTTPS credentials (a user name and a password or token) reach git through an askpass helper that
 * prints them from environment variables only git's children see: never in a URL, a process
 * argument or a log line. For SSH, a private key and a known_hosts file (both files from a Secret)
 * reach ssh through GIT_SSH_COMMAND with strict host key checking; the key is copied to a private
 * file first, since ssh refuses keys that others may read. The working copy is our own `git init`
 * plus fetches, so no hooks come with the repository.
 */
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { simpleGit, type SimpleGit } from 'simple-git';
import { ConfigError, ImageCloneError } from '../../errors.ts';
import { withRetries, type RetryPolicy } from '../../util/retry.ts';
import type { LocalCommit, LocalHistory } from '../forges/github-commits.ts';

export interface GitAuthor {
  readonly name: string;
  readonly email: string;
  /**
   * An SSH private key that signs every commit (git's SSH signing, `ssh-keygen -Y sign`): forges
   * show the commit as verified when its public key is a signing key of the committing account, and
   * branch protection that requires signed commits accepts it. Checked at start-up (checkSigningKey).
   */
  readonly signingKeyFile?: string;
}

export interface GitCredentials {
  readonly username: string;
  readonly password: string;
}

export interface GitSsh {
  readonly keyFile: string;
  readonly knownHostsFile: string;
}

/** Answers git's "Username for …" and "Password for …" prompts from the environment. */
const ASKPASS = `#!/bin/sh
case "$1" in
  Username*) printf '%s\\n' "$IMAGE_CLONE_GIT_USERNAME" ;;
  *) printf '%s\\n' "$IMAGE_CLONE_GIT_PASSWORD" ;;
esac
`;

export class GitError extends ImageCloneError {
  override name = 'GitError';
}

/** Branch names that could be read as an option, or that git refuses, never reach a git command. */
export function assertSafeBranch(branch: string): void {
  if (!/^[A-Za-z0-9._/-]+$/.test(branch) || branch.startsWith('-') || branch.includes('..') || branch.endsWith('/') || branch.endsWith('.lock')) {
    throw new ConfigError(`unsafe branch name ${JSON.stringify(branch)}`);
  }
}

/** What the rewriter asks of a working copy (a GitWorkspace; tests may wrap one to stage a rejected push). */
export type Workspace = Pick<GitWorkspace, 'dir' | 'checkout' | 'commitAll' | 'push' | 'head' | 'diff' | 'differsFrom' | 'changedFiles' | 'landed'>;

/**
 * Moves a branch to the workspace's commits by another road than `git push` (a GitHub App's commits,
 * made through its API so GitHub signs them): from `before` (undefined: the branch must not exist),
 * `force` only where our own branch is replaced from the base.
 */
export type Publish = (history: LocalHistory, branch: string, before: string | undefined, force: boolean) => Promise<{ readonly pushed: string } | 'rejected'>;

export class GitWorkspace {
  readonly url: string;
  readonly dir: string;
  readonly #git: SimpleGit;
  readonly #publish: Publish | undefined;
  /** The tip the last checkout started from: the commits made since are what a push sends. */
  #start = '';

  constructor(url: string, cacheDirGiven: string, credentials?: GitCredentials, ssh?: GitSsh, publish?: Publish) {
    this.#publish = publish;
    // Absolute once: git runs in the clone, where a relative askpass or key path would not be found.
    const cacheDir = resolve(cacheDirGiven);
    if (url.startsWith('-')) throw new ConfigError(`unsafe repository URL ${JSON.stringify(url)}`);
    // `transport::address` runs a git remote helper (fd::, ext::, …): never for a URL from the cluster.
    if (/^[a-z0-9+.-]+::/i.test(url)) throw new ConfigError(`unsafe repository URL ${JSON.stringify(url)}: a git remote-helper transport`);
    if (/^[a-z][a-z0-9+.-]*:\/\/[^/@]*:[^/@]*@/i.test(url)) {
      throw new ConfigError(`the repository URL ${redactRepo(url)} carries a password; give credentials as files instead`);
    }
    this.url = url;
    this.dir = join(cacheDir, createHash('sha256').update(url).digest('hex').slice(0, 16));
    mkdirSync(this.dir, { recursive: true });
    const env: Record<string, string> = { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? cacheDir, GIT_TERMINAL_PROMPT: '0' };
    if (credentials) {
      const askpass = join(cacheDir, 'image-clone-askpass.sh');
      writeFileSync(askpass, ASKPASS, { mode: 0o700 });
      Object.assign(env, { GIT_ASKPASS: askpass, IMAGE_CLONE_GIT_USERNAME: credentials.username, IMAGE_CLONE_GIT_PASSWORD: credentials.password });
    }
    if (ssh) {
      const key = join(cacheDir, 'image-clone-ssh-key');
      privateCopy(ssh.keyFile, key);
      for (const path of [key, ssh.knownHostsFile]) if (path.includes("'")) throw new ConfigError(`unsupported character in the path ${path}`);
      env.GIT_SSH_COMMAND = `ssh -i '${key}' -o IdentitiesOnly=yes -o UserKnownHostsFile='${ssh.knownHostsFile}' -o StrictHostKeyChecking=yes -o BatchMode=yes`;
    }
    // simple-git guards these because a hostile value runs a program; ours are our own.
    this.#git = simpleGit({
      baseDir: this.dir,
      timeout: { block: 120_000 },
      allowEnvironment: ['GIT_ASKPASS', 'GIT_TERMINAL_PROMPT', 'GIT_SSH_COMMAND'],
      unsafe: { allowUnsafeAskPass: true, allowUnsafeSshCommand: true },
    }).env(env);
  }

  /**
   * A clean working tree at `origin/<base>`, or at `origin/<branch>` when that branch already
   * exists (a change pushed before a crash is found there, not made twice), unless `fresh` asks
   * for the base anyway. Returns the tip used and the remote branch's tip ('' when it does not
   * exist), the lease for replacing our own branch.
   */
  async checkout(base: string, branch?: string, fresh = false): Promise<{ tip: string; onExistingBranch: boolean; remoteBranchTip: string }> {
    assertSafeBranch(base);
    if (branch !== undefined) assertSafeBranch(branch);
    if (!existsSync(join(this.dir, '.git'))) {
      await this.#git.init();
      await this.#git.addRemote('origin', this.url);
    }
    removeStaleLocks(join(this.dir, '.git'));
    try {
      await retryTransient(() => this.#git.raw(['fetch', '--prune', '--no-tags', 'origin']));
    } catch (error) {
      throw new GitError(`cannot fetch ${redactRepo(this.url)}: ${gitComplaint(error)}`);
    }
    const remoteBranches = (await this.#git.branch(['-r'])).all;
    if (!remoteBranches.includes(`origin/${base}`)) throw new GitError(`${redactRepo(this.url)} has no branch ${base}`);
    const exists = branch !== undefined && remoteBranches.includes(`origin/${branch}`);
    const remoteBranchTip = exists ? (await this.#git.revparse([`origin/${branch}`])).trim() : '';
    const onExistingBranch = exists && !fresh;
    const start = `origin/${onExistingBranch ? branch : base}`;
    await this.#git.raw(['checkout', '--force', '-B', branch ?? base, start]);
    await this.#git.raw(['clean', '-fdx']);
    this.#start = (await this.#git.revparse(['HEAD'])).trim();
    return { tip: this.#start, onExistingBranch, remoteBranchTip };
  }

  /** Commits every change in the tree; undefined when there is nothing to commit. */
  async commitAll(message: string, author: GitAuthor): Promise<string | undefined> {
    await this.#git.add(['--all']);
    const status = await this.#git.status();
    if (status.isClean()) return undefined;
    await this.#git.addConfig('user.name', author.name).addConfig('user.email', author.email);
    if (author.signingKeyFile) {
      // A private copy beside the clone, never in its tree: ssh-keygen refuses a key others may read.
      const key = join(dirname(this.dir), 'image-clone-signing-key');
      privateCopy(author.signingKeyFile, key);
      await this.#git.addConfig('gpg.format', 'ssh').addConfig('user.signingKey', key).addConfig('commit.gpgSign', 'true');
    }
    await this.#git.commit(message);
    return (await this.#git.revparse(['HEAD'])).trim();
  }

  /**
   * Pushes HEAD to `branch`; 'rejected' when the remote moved on. With `replacing` (the tip we saw,
   * '' for none), our own branch is replaced only if nobody pushed to it since (--force-with-lease);
   * callers never pass it for a base branch.
   */
  async push(branch: string, replacing?: string): Promise<'pushed' | 'rejected'> {
    assertSafeBranch(branch);
    if (this.#publish) return this.#pushThrough(this.#publish, branch, replacing);
    try {
      const lease = replacing === undefined ? [] : [`--force-with-lease=refs/heads/${branch}:${replacing}`];
      // Again after a dropped answer is safe: a push that had landed is then up to date, or its
      // lease fails and the caller re-applies on the new tip.
      await retryTransient(() => this.#git.push('origin', `HEAD:refs/heads/${branch}`, lease));
      return 'pushed';
    } catch (error) {
      const text = String((error as Error).message ?? error);
      if (/\[rejected\]|non-fast-forward|fetch first|stale info/i.test(text)) return 'rejected';
      throw new GitError(`push to ${redactRepo(this.url)} ${branch} failed: ${gitComplaint(error)}`);
    }
  }

  /**
   * The push made by `publish`: the commits since the checkout, from the branch's tip as fetched (or
   * the lease), then HEAD moved to the commit made there (the same tree), so what follows (whether
   * it landed, the next change) reads the branch as it now is.
   */
  async #pushThrough(publish: Publish, branch: string, replacing: string | undefined): Promise<'pushed' | 'rejected'> {
    const fetched = (await this.#git.raw(['rev-parse', '--verify', '--quiet', `refs/remotes/origin/${branch}`]).catch(() => '')).trim();
    const before = replacing !== undefined ? replacing || undefined : fetched || undefined;
    const shas = (await this.#git.raw(['rev-list', '--reverse', '--first-parent', `${this.#start}..HEAD`])).split('\n').filter((l) => l !== '');
    const commits: LocalCommit[] = [];
    for (const sha of shas) commits.push(await this.#localCommit(sha));
    const result = await publish({ commits, blob: (sha) => this.#git.binaryCatFile(['blob', sha]) }, branch, before, replacing !== undefined);
    if (result === 'rejected') return 'rejected';
    try {
      await retryTransient(() => this.#git.raw(['fetch', '--no-tags', 'origin', `+refs/heads/${branch}:refs/remotes/origin/${branch}`]));
      await this.#git.raw(['reset', '--hard', result.pushed]);
    } catch (error) {
      throw new GitError(`${redactRepo(this.url)} ${branch} was moved to ${result.pushed.slice(0, 12)}, which could not be read back: ${gitComplaint(error)}`);
    }
    this.#start = result.pushed;
    return 'pushed';
  }

  /** One local commit: its tree, its parent's, its message and the files it changes (blob null: deleted). */
  async #localCommit(sha: string): Promise<LocalCommit> {
    const [tree, parents, ...message] = (await this.#git.raw(['-c', 'log.showSignature=false', 'show', '-s', '--format=%T%n%P%n%B', sha])).split('\n');
    const parent = parents!.split(' ')[0]!;
    const parentTree = (await this.#git.revparse([`${parent}^{tree}`])).trim();
    const fields = (await this.#git.raw(['diff-tree', '-r', '-z', '--no-renames', '--raw', parent, sha])).split('\0');
    const changes: Array<LocalCommit['changes'][number]> = [];
    for (let i = 0; i + 1 < fields.length; i += 2) {
      const [oldMode, newMode, , newBlob, status] = fields[i]!.replace(/^:/, '').split(' ');
      const deleted = status === 'D';
      changes.push({ path: fields[i + 1]!, mode: deleted ? oldMode! : newMode!, blob: deleted ? null : newBlob! });
    }
    return { sha, tree: tree!, parent, parentTree, message: message.join('\n').trimEnd(), changes };
  }

  /** The commit checked out: after a push through an API, the one the forge made (what the branch holds). */
  async head(): Promise<string> {
    return (await this.#git.revparse(['HEAD'])).trim();
  }

  /** The uncommitted changes of the working tree, as a unified diff. */
  async diff(): Promise<string> {
    return this.#git.raw(['diff', '--no-color']);
  }

  /** Whether HEAD has changes that `origin/<base>` does not. */
  async differsFrom(base: string): Promise<boolean> {
    return (await this.changedFiles(base)).length > 0;
  }

  /**
   * Whether HEAD is still in the history of the remote `branch`, fetched again now: false when
   * someone replaced the branch after our push (another installation restarting it from the base).
   */
  async landed(branch: string): Promise<boolean> {
    assertSafeBranch(branch);
    try {
      await retryTransient(() => this.#git.raw(['fetch', '--no-tags', 'origin', `+refs/heads/${branch}:refs/remotes/origin/${branch}`]));
    } catch (error) {
      throw new GitError(`cannot fetch ${redactRepo(this.url)} ${branch}: ${gitComplaint(error)}`);
    }
    const head = (await this.#git.revparse(['HEAD'])).trim();
    // By the answer, not the exit status (which simple-git does not always turn into an error).
    const common = await this.#git.raw(['merge-base', head, `origin/${branch}`]).catch(() => '');
    return common.trim() === head;
  }

  /** Files HEAD changes relative to `origin/<base>` (the pull request's files). */
  async changedFiles(base: string): Promise<string[]> {
    assertSafeBranch(base);
    const names = await this.#git.raw(['diff', '--name-only', `origin/${base}...HEAD`]);
    return names.split('\n').filter((l) => l !== '');
  }
}

/** A repository URL for messages: no user information. */
/**
 * Git's lock files left by a git the rewriter's own container ran when it was killed (SIGKILL, OOM):
 * `index.lock` or a ref's lock would fail every later attempt on this clone for ever. Only this
 * process uses its cache directory, and no git runs in this clone when an attempt starts, so a
 * lock found then is stale.
 */
function removeStaleLocks(gitDir: string): void {
  const locks = (dir: string, recursive: boolean) => {
    try {
      return readdirSync(dir, { withFileTypes: true, recursive }).filter((entry) => entry.isFile() && entry.name.endsWith('.lock'));
    } catch {
      return [];
    }
  };
  for (const entry of [...locks(gitDir, false), ...locks(join(gitDir, 'refs'), true)]) rmSync(join(entry.parentPath, entry.name), { force: true });
}

/**
 * Refuses, at start-up, a signing key git could not sign with unattended: not an SSH private key, or
 * one with a passphrase (ssh-keygen would ask for it, and every commit would fail). The key is read by
 * ssh-keygen from its file, never passed as an argument or shown.
 */
export function checkSigningKey(file: string): void {
  // Checked as it is used: a private copy (ssh-keygen refuses a key file others may read, as a mounted Secret's often is).
  const scratch = mkdtempSync(join(tmpdir(), 'image-clone-signing-'));
  try {
    privateCopy(file, join(scratch, 'key'));
    execFileSync('ssh-keygen', ['-y', '-P', '', '-f', join(scratch, 'key')], { stdio: ['ignore', 'ignore', 'ignore'], timeout: 10_000 });
  } catch (error) {
    const missing = (error as NodeJS.ErrnoException).code === 'ENOENT';
    throw new ConfigError(
      missing
        ? 'commits are signed with ssh-keygen (--git-signing-key-file), which is not installed'
        : `--git-signing-key-file ${file}: not an SSH private key usable without a passphrase (ssh-keygen could not read it)`,
    );
  } finally {
    rmSync(scratch, { recursive: true, force: true });
  }
}

/** A key copied where only this user may read it, from its first byte (written to a private file, then renamed into place). */
function privateCopy(from: string, to: string): void {
  const partial = `${to}.${process.pid}.partial`;
  rmSync(partial, { force: true });
  writeFileSync(partial, readFileSync(from), { mode: 0o600 });
  renameSync(partial, to);
}

export function redactRepo(url: string): string {
  return url.replace(/\/\/[^@/]*@/, '//');
}

/** A failure of the server or the network (5xx, 429, a dropped connection), worth trying again. */
const TRANSIENT =
  /returned error: (5\d\d|429)|HTTP (5\d\d|429)|remote end hung up|connection reset|connection refused|timed out|early EOF|unexpected disconnect/i;
const GIT_RETRY: RetryPolicy = { attempts: 3, baseDelayMs: 1_000, maxDelayMs: 2_000, maxRetryAfterSeconds: 0 };

/** Runs a git network operation, up to twice more (after jittered backoff) when it failed transiently. */
function retryTransient<T>(operation: () => Promise<T>): Promise<T> {
  return withRetries(operation, GIT_RETRY, undefined, (error) => TRANSIENT.test(String((error as Error)?.message ?? error)));
}

/**
 * What went wrong, from git's output: its `fatal:`, `error:` and `remote:` lines and rejected refs
 * (the first line is often only "Pushing to URL"), else the first line.
 */
function gitComplaint(error: unknown): string {
  const lines = String((error as Error)?.message ?? error)
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l !== '');
  const telling = lines.filter((l) => /^(fatal|error|remote):|^! \[|\[remote rejected\]/i.test(l) && !/^remote:\s*$/.test(l));
  return telling.length > 0 ? [...new Set(telling)].slice(0, 3).join('; ') : (lines[0] ?? 'unknown error');
}
