/**
 * `image-clone rewriter`: the main container. Turns the copier's handoff records into Git changes.
 * `--once` processes what is pending and exits (0 only if every change landed).
 */
import { readFileSync } from 'node:fs';
import { ConfigError } from '../errors.ts';
import type { Logger } from '../observability/log.ts';
import { startHealthServer } from '../observability/server.ts';
import { Rewriter, type DirectPatchMode, type GitMode, type RewriteOutcome } from '../rewriter/rewriter.ts';
import { loadKubeConfig } from './copier.ts';

export interface RewriterCommandOptions {
  readonly handoffDir: string;
  readonly cacheDir: string;
  readonly mode: GitMode;
  readonly authorName: string;
  readonly authorEmail: string;
  readonly branchPrefix?: string;
  readonly unmanagedRepo?: string;
  readonly unmanagedPath?: string;
  readonly unmanagedBranch: string;
  readonly once: boolean;
  readonly debounceMs: number;
  readonly directPatch: DirectPatchMode;
  readonly kubeconfig?: string;
  readonly healthAddress?: string;
  readonly gitUsername: string;
  readonly gitPasswordFile?: string;
  readonly gitSshKeyFile?: string;
  readonly gitKnownHostsFile?: string;
  readonly forgeTokenFile?: string;
  readonly forgeApi?: string;
  readonly forgeKind?: 'github' | 'gitlab' | 'gitea';
  readonly prLabels?: readonly string[];
  readonly prDraft: boolean;
  readonly dryRun: boolean;
  readonly commitTemplateFile?: string;
  readonly logger: Logger;
}

export async function rewriterCommand(options: RewriterCommandOptions, out: (line: string) => void): Promise<number> {
  const password = options.gitPasswordFile === undefined ? undefined : readSecretFile('--git-password-file', options.gitPasswordFile);
  const forgeToken = options.forgeTokenFile === undefined ? undefined : readSecretFile('--forge-token-file', options.forgeTokenFile);
  const commitTemplate = options.commitTemplateFile === undefined ? undefined : readFileSync(options.commitTemplateFile, 'utf8');
  if (commitTemplate !== undefined && commitTemplate.trim() === '') throw new ConfigError(`the commit template ${options.commitTemplateFile} is empty`);
  if ((options.gitSshKeyFile === undefined) !== (options.gitKnownHostsFile === undefined)) {
    throw new ConfigError('--git-ssh-key-file and --git-known-hosts-file go together: a key without known hosts would trust any server');
  }
  const rewriter = new Rewriter({
    dryRun: options.dryRun,
    ...(options.gitSshKeyFile && options.gitKnownHostsFile ? { gitSsh: { keyFile: options.gitSshKeyFile, knownHostsFile: options.gitKnownHostsFile } } : {}),
    ...(commitTemplate === undefined ? {} : { commitTemplate }),
    ...(forgeToken === undefined ? {} : { forge: { token: forgeToken, ...(options.forgeKind ? { kind: options.forgeKind } : {}), ...(options.forgeApi ? { apiBase: options.forgeApi } : {}), draft: options.prDraft, ...(options.prLabels ? { labels: options.prLabels } : {}) } }),
    ...(password === undefined ? {} : { gitCredentials: { username: options.gitUsername, password } }),
    handoffDir: options.handoffDir,
    cacheDir: options.cacheDir,
    mode: options.mode,
    author: { name: options.authorName, email: options.authorEmail },
    logger: options.logger,
    ...(options.branchPrefix ? { branchPrefix: options.branchPrefix } : {}),
    ...(options.directPatch === 'never' ? {} : { directPatch: { mode: options.directPatch, kubeConfig: loadKubeConfig(options.kubeconfig) } }),
    ...(options.unmanagedRepo ? { unmanaged: { repoURL: options.unmanagedRepo, branch: options.unmanagedBranch, ...(options.unmanagedPath ? { path: options.unmanagedPath } : {}) } } : {}),
  });
  const report = (outcomes: RewriteOutcome[]) => {
    for (const o of outcomes) {
      out(`${o.result.padEnd(15)} ${o.repoURL} ${o.branch}${o.commit ? ` ${o.commit.slice(0, 12)}` : ''}${o.pullRequest ? ` ${o.pullRequest}` : ''} (${o.records.length} record(s))${o.error ? `: ${o.error}` : ''}`);
      if (o.plan) out(o.plan.trimEnd());
    }
  };
  if (options.once || options.dryRun) {
    const outcomes = await rewriter.processPending();
    report(outcomes);
    return outcomes.every((o) => o.result !== 'failed') ? 0 : 1;
  }
  const health = options.healthAddress
    ? await startHealthServer({
        address: options.healthAddress,
        metrics: rewriter.metrics,
        healthy: () => ({ ok: true, detail: 'running' }),
        ready: () => (rewriter.lastPass.at > 0 ? { ok: true, detail: `last pass ${new Date(rewriter.lastPass.at).toISOString()}${rewriter.lastPass.ok ? '' : ' (some changes failed; retried on the next pass)'}` } : { ok: false, detail: 'first pass in progress' }),
      })
    : undefined;
  const stopped = new Promise<void>((resolve) => {
    process.once('SIGTERM', () => resolve());
    process.once('SIGINT', () => resolve());
  });
  await rewriter.watch(options.debounceMs, report);
  options.logger.info('rewriter watching', { handoffDir: options.handoffDir, mode: options.mode });
  await stopped;
  await rewriter.stop();
  await health?.close();
  return 0;
}

/** A credential from a mounted Secret file; its path may be named in errors, its content never. */
export function readSecretFile(flag: string, path: string): string {
  try {
    return readFileSync(path, 'utf8').trim();
  } catch (error) {
    throw new ConfigError(`cannot read ${flag} ${path}: ${(error as Error).message}`);
  }
}
