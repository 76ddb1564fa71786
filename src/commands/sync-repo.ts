/**
 * `image-clone sync-repo`: the controller's job as one CI step, without a cluster. Reads a GitOps
 * repository, backs up every public image its workloads run (as kustomize makes them), and moves
 * the manifests onto the backups with a commit, a branch or a pull request, through the same copy
 * engine, records and rewriter as the controller (the repository is the "unmanaged" target).
 */
import { registryStackOptions, type RegistrySettings } from './registry-settings.ts';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { WorkloadKind } from '../cluster/workloads.ts';
import { describeError } from '../errors.ts';
import { Ledger } from '../handoff/ledger.ts';
import type { HandoffImage } from '../handoff/schema.ts';
import { backupReference, isInBackupTarget, parseBackupTarget, type BackupLayout } from '../image/backup.ts';
import type { BackupPull, RecordedPull } from '../image/backup-pull.ts';
import { formatReference, tryParseReference, type ImageReference } from '../image/reference.ts';
import type { Logger } from '../observability/log.ts';
import { CredentialStore } from '../registry/credentials.ts';
import { createRegistryStack } from '../registry/index.ts';
import { backupPullRefusal, notPublic, refusedBySource } from '../registry/pullable.ts';
import { verifyIfAsked } from '../registry/signatures.ts';
import { scanImages } from '../rewriter/edit/plan.ts';
import { repositoryPath } from '../rewriter/forges/forge.ts';
import { GITHUB_API } from '../rewriter/forges/github-app.ts';
import { appCommitsFor } from '../rewriter/forges/github-commits.ts';
import { GitWorkspace } from '../rewriter/git/workspace.ts';
import { DEFAULT_RENDER_TOOLS, Rewriter } from '../rewriter/rewriter.ts';
import { gitAccess, type GitSettings } from './rewriter.ts';

export interface SyncRepoOptions extends RegistrySettings {
  readonly repoURL: string;
  readonly branch: string;
  readonly path?: string;
  readonly backupRegistry: string;
  readonly layout: BackupLayout;
  /** How the nodes that run these manifests pull the backups (anonymous: proved per image). */
  readonly backupPull: BackupPull;
  readonly git: GitSettings;
  readonly dryRun: boolean;
  readonly logger: Logger;
  /** kustomize, which proves each change by building the overlays before and after it. */
  readonly kustomize: string;
}

export async function syncRepoCommand(options: SyncRepoOptions, out: (line: string) => void, err: (line: string) => void): Promise<number> {
  const work = mkdtempSync(join(tmpdir(), 'image-clone-sync-'));
  const access = gitAccess(options.git);
  try {
    const target = parseBackupTarget(options.backupRegistry, options.layout);
    // A GitHub App: an installation token for this repository (the rewriter below is given the same one).
    let token: string | undefined;
    if (access.githubApp) {
      const { owner, name } = repositoryPath(options.repoURL, 'github', access.forge?.apiBase ?? GITHUB_API);
      token = await access.githubApp.tokenFor(owner, name);
    }
    const workspace = new GitWorkspace(
      options.repoURL,
      join(work, 'git'),
      token !== undefined ? { username: 'x-access-token', password: token } : access.gitCredentials,
      access.gitSsh,
      token !== undefined && access.githubAppSignedCommits ? appCommitsFor(options.repoURL, access.forge?.apiBase ?? GITHUB_API, token, undefined) : undefined,
    );
    await workspace.checkout(options.branch);
    const scan = scanImages(workspace.dir, options.path);
    for (const error of scan.errors) err(`error: ${describeError(error)} (file left untouched)`);

    // Back up every distinct image once.
    const sources = new Map<string, string>();
    for (const use of scan.images) {
      const ref = tryParseReference(use.image);
      if (!ref) err(`skipped ${use.file} ${use.kind}/${use.name} ${use.container}: ${JSON.stringify(use.image)} is not a valid image reference`);
      else if (!isInBackupTarget(ref, target)) sources.set(formatReference(ref), use.image);
    }
    const credentials = options.authFile ? CredentialStore.fromFile(options.authFile) : CredentialStore.empty();
    const stack = createRegistryStack(registryStackOptions(options, () => credentials));
    const backups = new Map<string, { backup: string; digest: string; platforms: readonly string[]; size: number; signature?: HandoffImage['signature'] }>();
    let failed = 0;
    try {
      // Public means an anonymous pull works, asked first, as the copier asks it: a source only the
      // credentials can read is not copied, so another team's private image is never republished.
      const toCopy: ImageReference[] = [];
      for (const key of sources.keys()) {
        const source = tryParseReference(key)!;
        const refusal = await notPublic(stack, source).catch((error: unknown) => error as Error);
        if (refusal instanceof Error) {
          failed++;
          err(`failed ${key}: ${refusal.message}`);
        } else if (refusal !== undefined) out(`skipped   ${key}: not public (${refusal})`);
        else toCopy.push(source);
      }
      const results = await stack.engine.copyAll(toCopy.map((source) => ({ source, destination: backupReference(source, target) })));
      for (const entry of results) {
        const key = formatReference(entry.request.source);
        if (entry.ok) {
          out(`${entry.result.outcome.padEnd(9)} ${entry.result.source} -> ${entry.result.destination} ${entry.result.digest}`);
          const backup = formatReference({ ...entry.request.destination, digest: undefined });
          const refusal = await backupPullRefusal(stack, options.backupPull, entry.request.destination, entry.result.digest).catch(
            (error: unknown) => `it could not be checked: ${describeError(error)}`,
          );
          if (refusal !== undefined) {
            failed++;
            err(
              `not proposed ${key}: the nodes could not pull ${backup}@${entry.result.digest} (${refusal}); if they hold credentials for the backup registry, use --backup-pull node`,
            );
            continue;
          }
          const signature = await verifyIfAsked(stack.client, options.signatures, entry.request.source, entry.request.destination, entry.result.digest).catch(
            (error: unknown) => ({ verified: false as const, reason: `it could not be checked: ${describeError(error)}` }),
          );
          if (signature?.verified === false) {
            failed++;
            err(`not proposed ${key}: the signature --verify-signature asks for does not verify at ${backup}@${entry.result.digest}: ${signature.reason}`);
            continue;
          }
          backups.set(key, {
            backup,
            digest: entry.result.digest,
            platforms: entry.result.platforms,
            size: entry.result.totalBytes,
            ...(signature ? { signature: { key: signature.key, scheme: signature.scheme } } : {}),
          });
        } else if (refusedBySource(entry.error, entry.request.source)) {
          out(`skipped   ${key}: not public`);
        } else {
          failed++;
          err(`failed ${key}: ${entry.error.message}`);
        }
      }
    } finally {
      await stack.close();
    }

    // One record per workload, its backed-up images; the rewriter makes the change.
    const ledger = new Ledger(join(work, 'handoff'));
    const byWorkload = new Map<
      string,
      { kind: string; namespace: string; name: string; file: string; images: HandoffImage[]; pullSecrets: readonly string[] }
    >();
    for (const use of scan.images) {
      const ref = tryParseReference(use.image);
      const backup = ref && backups.get(formatReference(ref));
      if (!backup) continue;
      const key = `${use.file}|${use.kind}|${use.name}`;
      const workload = byWorkload.get(key) ?? {
        kind: use.kind,
        namespace: use.namespace ?? '',
        name: use.name,
        file: use.file,
        images: [],
        pullSecrets: use.pullSecrets,
      };
      workload.images.push({
        container: use.container,
        init: use.init,
        source: use.image,
        backup: backup.backup,
        digest: backup.digest,
        platforms: backup.platforms,
        sizeBytes: backup.size,
        ...(backup.signature ? { signature: backup.signature } : {}),
      });
      byWorkload.set(key, workload);
    }
    for (const w of byWorkload.values()) {
      // Without a cluster only the manifest can list the Secret; where it does not, the change adds it.
      const pull: RecordedPull =
        options.backupPull.via === 'secret'
          ? { ...options.backupPull, listedBy: w.pullSecrets.includes(options.backupPull.secret) ? 'pod' : 'none' }
          : options.backupPull;
      await ledger.write({
        workload: { kind: w.kind as WorkloadKind, namespace: w.namespace, name: w.name, uid: `sync-repo:${w.file}` },
        images: w.images,
        owner: undefined,
        pull,
      });
    }
    const rewriter = new Rewriter({
      ...access,
      handoffDir: ledger.dir,
      cacheDir: join(work, 'git'),
      logger: options.logger,
      unmanaged: { repoURL: options.repoURL, branch: options.branch, ...(options.path ? { path: options.path } : {}) },
      dryRun: options.dryRun,
      renderTools: { ...DEFAULT_RENDER_TOOLS, kustomize: options.kustomize },
    });
    for (const o of await rewriter.processPending()) {
      out(
        `${o.result.padEnd(15)} ${o.repoURL} ${o.branch}${o.commit ? ` ${o.commit.slice(0, 12)}` : ''}${o.pullRequest ? ` ${o.pullRequest}` : ''}${o.error ? `: ${o.error}` : ''}`,
      );
      if (o.plan) out(o.plan.trimEnd());
      if (o.result === 'failed') failed++;
    }
    return failed === 0 && scan.errors.length === 0 ? 0 : 1;
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}
