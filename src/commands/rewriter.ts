/**
 * `image-clone rewriter`: the main container. Turns the copier's handoff records into Git changes.
 * `--once` processes what is pending and exits (0 only if every change landed).
 */
import { parseNaming, type NamingSettings } from '../rewriter/grouping.ts';
import { readFileSync } from 'node:fs';
import { ConfigError } from '../errors.ts';
import type { KubeConfig } from '@kubernetes/client-node';
import type { Logger } from '../observability/log.ts';
import { holdSecret } from '../observability/secrets.ts';
import { startHealthServer } from '../observability/server.ts';
import type { ForgeKind } from '../rewriter/forges/forge.ts';
import { checkGitHubApp, GITHUB_API, GitHubAppTokens } from '../rewriter/forges/github-app.ts';
import { dispatcherFor } from '../rewriter/forges/registry.ts';
import { checkSigningKey } from '../rewriter/git/workspace.ts';
import { Rewriter, type DirectPatchMode, type GitMode, type RewriteOutcome, type RewriterConfig } from '../rewriter/rewriter.ts';

/** How to reach and change Git repositories and forges: shared by `rewriter` and `sync-repo`. */
export interface GitSettings {
  readonly mode: GitMode;
  readonly authorName: string;
  readonly authorEmail: string;
  readonly gitUsername: string;
  readonly gitPasswordFile?: string;
  readonly gitSshKeyFile?: string;
  readonly gitKnownHostsFile?: string;
  /** An SSH private key that signs every commit. */
  readonly gitSigningKeyFile?: string;
  readonly forgeTokenFile?: string;
  /** A GitHub App instead of token files: its id, key file and (optionally) installation. */
  readonly githubApp?: { readonly id: string; readonly keyFile: string; readonly installationId?: string; readonly signedCommits?: boolean };
  readonly forgeApi?: string;
  readonly forgeKind?: ForgeKind;
  readonly prLabels?: readonly string[];
  readonly prDraft: boolean;
  readonly commitTemplateFile?: string;
  /** URL prefixes the Git and forge credentials are bound to (`--credentials-for`). */
  readonly credentialScopes?: readonly string[];
}

/** The Rewriter settings those name, with secrets read from their files (named in errors, never shown). */
export function gitAccess(
  settings: GitSettings,
  caFile?: string,
): Pick<
  RewriterConfig,
  'mode' | 'author' | 'gitCredentials' | 'gitSsh' | 'forge' | 'githubApp' | 'githubAppSignedCommits' | 'pullRequests' | 'commitTemplate' | 'credentialScopes'
> {
  const password = settings.gitPasswordFile === undefined ? undefined : readSecretFile('--git-password-file', settings.gitPasswordFile);
  // In pr mode the Git token is the forge token unless one is given: a GitHub, GitLab or Gitea
  // token that may push over HTTPS usually may open pull requests too, so one Secret key serves both.
  const forgeToken =
    settings.forgeTokenFile !== undefined ? readSecretFile('--forge-token-file', settings.forgeTokenFile) : settings.mode === 'pr' ? password : undefined;
  // The key is read here only to be known to the scrubber (the workspace copies the file itself).
  if (settings.gitSshKeyFile !== undefined) readSecretFile('--git-ssh-key-file', settings.gitSshKeyFile);
  if (settings.gitSigningKeyFile !== undefined) {
    readSecretFile('--git-signing-key-file', settings.gitSigningKeyFile);
    checkSigningKey(settings.gitSigningKeyFile);
  }
  const commitTemplate = settings.commitTemplateFile === undefined ? undefined : readFileSync(settings.commitTemplateFile, 'utf8');
  if (commitTemplate !== undefined && commitTemplate.trim() === '') throw new ConfigError(`the commit template ${settings.commitTemplateFile} is empty`);
  const app = settings.githubApp && githubAppOf(settings.githubApp, settings.forgeApi, caFile);
  return {
    mode: settings.mode,
    author: {
      name: settings.authorName,
      email: settings.authorEmail,
      ...(settings.gitSigningKeyFile ? { signingKeyFile: settings.gitSigningKeyFile } : {}),
    },
    // The App's tokens serve its GitHub alone (github.com, or the Enterprise Server --forge-api names):
    // the API base is set, so a repository on any other host is refused before a token is made.
    ...(app ? { githubApp: app, forge: { token: '', kind: 'github' as const, apiBase: settings.forgeApi ?? GITHUB_API } } : {}),
    ...(app && settings.githubApp?.signedCommits ? { githubAppSignedCommits: true } : {}),
    ...(password === undefined ? {} : { gitCredentials: { username: settings.gitUsername, password } }),
    ...(settings.gitSshKeyFile && settings.gitKnownHostsFile
      ? { gitSsh: { keyFile: settings.gitSshKeyFile, knownHostsFile: settings.gitKnownHostsFile } }
      : {}),
    ...(forgeToken === undefined
      ? {}
      : {
          forge: {
            token: forgeToken,
            ...(settings.forgeKind ? { kind: settings.forgeKind } : {}),
            ...(settings.forgeApi ? { apiBase: settings.forgeApi } : {}),
          },
        }),
    pullRequests: { ...(settings.prDraft ? { draft: true } : {}), ...(settings.prLabels ? { labels: settings.prLabels } : {}) },
    ...(commitTemplate === undefined ? {} : { commitTemplate }),
    ...(settings.credentialScopes?.length ? { credentialScopes: settings.credentialScopes } : {}),
  };
}

export interface RewriterCommandOptions extends GitSettings {
  readonly handoffDir: string;
  readonly cacheDir: string;
  /** --group-by, --branch-template, --title-template (and the older --branch-prefix), checked at start-up. */
  readonly naming: NamingSettings;
  readonly unmanagedRepo?: string;
  readonly unmanagedPath?: string;
  readonly unmanagedBranch: string;
  readonly once: boolean;
  readonly debounceMs: number;
  readonly keepDoneMs: number;
  readonly stuckAfterMs?: number;
  readonly directPatch: DirectPatchMode;
  readonly kubeconfig?: string;
  /** --argocd-cluster-secret: in an Argo CD hub, the spoke the direct patch reaches. */
  readonly argocdClusterSecret?: string;
  readonly argocdNamespace?: string;
  readonly healthAddress?: string;
  readonly dryRun: boolean;
  readonly logger: Logger;
  /** The programs that prove HelmRelease edits by rendering. */
  readonly helm: string;
  readonly kustomize: string;
  readonly caFile?: string;
}

/** The cluster the direct patch reaches: --kubeconfig's, or the spoke of --argocd-cluster-secret (the Secret read through --kubeconfig's). */
async function patchedCluster(options: RewriterCommandOptions): Promise<KubeConfig> {
  const own = (await import('../cluster/kubeconfig.ts')).loadKubeConfig(options.kubeconfig);
  if (!options.argocdClusterSecret) return own;
  const { readArgoCdCluster } = await import('../cluster/argocd-cluster.ts');
  return (await readArgoCdCluster(own, options.argocdNamespace, options.argocdClusterSecret)).kubeConfig;
}

export async function rewriterCommand(options: RewriterCommandOptions, out: (line: string) => void): Promise<number> {
  const rewriter = new Rewriter({
    ...gitAccess(options, options.caFile),
    dryRun: options.dryRun,
    keepDoneMs: options.keepDoneMs,
    ...(options.stuckAfterMs === undefined ? {} : { stuckAfterMs: options.stuckAfterMs }),
    handoffDir: options.handoffDir,
    cacheDir: options.cacheDir,
    logger: options.logger,
    renderTools: { helm: options.helm, kustomize: options.kustomize },
    ...(options.caFile ? { caFile: options.caFile } : {}),
    naming: parseNaming(options.naming),
    // The Kubernetes client is loaded only for the direct-patch fallback (importing it costs 71-79 MiB).
    ...(options.directPatch === 'never' ? {} : { directPatch: { mode: options.directPatch, kubeConfig: await patchedCluster(options) } }),
    ...(options.unmanagedRepo
      ? { unmanaged: { repoURL: options.unmanagedRepo, branch: options.unmanagedBranch, ...(options.unmanagedPath ? { path: options.unmanagedPath } : {}) } }
      : {}),
  });
  const report = (outcomes: RewriteOutcome[]) => {
    for (const o of outcomes) {
      out(
        `${o.result.padEnd(15)} ${o.repoURL} ${o.branch}${o.commit ? ` ${o.commit.slice(0, 12)}` : ''}${o.pullRequest ? ` ${o.pullRequest}` : ''} (${o.records.length} record(s))${o.error ? `: ${o.error}` : ''}`,
      );
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
        healthy: () => rewriter.healthy(),
        ready: () =>
          rewriter.lastPass.at > 0
            ? {
                ok: true,
                detail: `last pass ${new Date(rewriter.lastPass.at).toISOString()}${rewriter.lastPass.ok ? '' : ' (some changes failed; retried on the next pass)'}`,
              }
            : { ok: false, detail: 'first pass in progress' },
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
    const secret = readFileSync(path, 'utf8').trim();
    holdSecret(secret);
    return secret;
  } catch (error) {
    throw new ConfigError(`cannot read ${flag} ${path}: ${(error as Error).message}`);
  }
}

/** The App's token maker, its settings checked and its key read once (named in errors, never shown). */
function githubAppOf(app: NonNullable<GitSettings['githubApp']>, forgeApi: string | undefined, caFile: string | undefined): GitHubAppTokens {
  const settings = checkGitHubApp(
    {
      appId: app.id,
      privateKey: readSecretFile('--github-app-key-file', app.keyFile),
      ...(app.installationId !== undefined ? { installationId: Number(app.installationId) } : {}),
    },
    app.keyFile,
  );
  return new GitHubAppTokens(settings, forgeApi ?? GITHUB_API, dispatcherFor(caFile));
}
