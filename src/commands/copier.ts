/**
 * `image-clone copier`: the sidecar. Watches the cluster, backs up public images, writes handoff
 * records. `--once` makes one full pass and exits 0 only if every workload's backup succeeded.
 */
import { registryStackOptions, type RegistrySettings } from './registry-settings.ts';
import { existsSync, readFileSync } from 'node:fs';
import { loadKubeConfig } from '../cluster/kubeconfig.ts';
import { ConfigError } from '../errors.ts';
import { Copier, type CopierConfig } from '../copier/copier.ts';
import { readArgoCdCluster } from '../cluster/argocd-cluster.ts';
import type { NamespaceLimits } from '../copier/namespace-budget.ts';
import { parseBackupTarget, type BackupLayout } from '../image/backup.ts';
import type { BackupPull } from '../image/backup-pull.ts';
import type { Logger } from '../observability/log.ts';
import { startHealthServer } from '../observability/server.ts';
import { CredentialFiles } from '../registry/credential-files.ts';

export interface CopierCommandOptions extends RegistrySettings {
  readonly kubeconfig?: string;
  readonly backupRegistry: string;
  readonly layout: BackupLayout;
  readonly handoffDir: string;
  readonly registrySecretDir?: string;
  readonly once: boolean;
  readonly controllerNamespace?: string;
  readonly includeNamespaces: readonly string[];
  readonly excludeNamespaces: readonly string[];
  readonly recheckIntervalMs?: number;
  readonly namespaceLimits?: NamespaceLimits;
  readonly healthAddress?: string;
  readonly leaderElection: boolean;
  readonly leaseName: string;
  readonly argocdNamespace?: string;
  /** --argocd-kubeconfig: the hub cluster where Argo CD's Applications are read. */
  readonly argocdKubeconfig?: string;
  /** --argocd-cluster-secret: in an Argo CD hub, the cluster Secret of the spoke whose workloads are backed up. */
  readonly argocdClusterSecret?: string;
  /** --argocd-destination: what Argo CD calls this cluster. */
  readonly argocdDestinations?: readonly string[];
  /** --cluster-name (default: from the kube-system namespace's uid). */
  readonly clusterName?: string;
  readonly backupPull: BackupPull;
  readonly logger: Logger;
}

const SERVICE_ACCOUNT_NAMESPACE_FILE = '/var/run/secrets/kubernetes.io/serviceaccount/namespace';

/** The controller's own namespace: flag, then POD_NAMESPACE (downward API), then the service account's. */
export function controllerNamespace(flag: string | undefined): string | undefined {
  if (flag) return flag;
  if (process.env.POD_NAMESPACE) return process.env.POD_NAMESPACE;
  if (existsSync(SERVICE_ACCOUNT_NAMESPACE_FILE)) return readFileSync(SERVICE_ACCOUNT_NAMESPACE_FILE, 'utf8').trim();
  return undefined;
}

/**
 * Where the workloads are: the cluster of --kubeconfig; or, in an Argo CD hub (--argocd-cluster-secret),
 * the spoke that Secret reaches, with the hub kept for the Applications and the Lease.
 */
async function workloadCluster(
  options: CopierCommandOptions,
): Promise<Pick<CopierConfig, 'kubeConfig' | 'homeKubeConfig' | 'argocdKubeConfig' | 'argocdDestinations' | 'clusterName'>> {
  const own = loadKubeConfig(options.kubeconfig);
  const clusterName = options.clusterName ? { clusterName: options.clusterName } : {};
  if (!options.argocdClusterSecret) return { kubeConfig: own, ...clusterName };
  const spoke = await readArgoCdCluster(own, options.argocdNamespace, options.argocdClusterSecret);
  return {
    kubeConfig: spoke.kubeConfig,
    homeKubeConfig: own,
    argocdKubeConfig: own,
    argocdDestinations: spoke.destinations,
    ...(spoke.clusterName ? { clusterName: spoke.clusterName } : {}),
    ...clusterName,
  };
}

/** The Lease's name unless told: in a hub, one per spoke served, so installations for two spokes in one namespace do not share a leader. */
export const DEFAULT_LEASE_NAME = 'image-clone-copier';
function leaseNameOf(options: CopierCommandOptions): string {
  return options.argocdClusterSecret && options.leaseName === DEFAULT_LEASE_NAME ? `${DEFAULT_LEASE_NAME}-${options.argocdClusterSecret}` : options.leaseName;
}

export async function copierCommand(options: CopierCommandOptions, out: (line: string) => void): Promise<number> {
  const log = options.logger;
  // Another cluster's Argo CD knows this one by a name of its own: without it, nothing there would match.
  if (options.argocdKubeconfig && !options.argocdDestinations?.length)
    throw new ConfigError('--argocd-kubeconfig needs --argocd-destination: the name or API server URL Argo CD in that cluster gives this one');
  if (options.argocdClusterSecret && (options.argocdKubeconfig || options.argocdDestinations?.length))
    throw new ConfigError(
      "--argocd-cluster-secret runs the copier in the hub, where Argo CD is: --argocd-kubeconfig and --argocd-destination (a spoke copier reading a hub) do not go with it; the destination is the Secret's name and server",
    );
  const workloads = await workloadCluster(options);
  const target = parseBackupTarget(options.backupRegistry, options.layout);
  const credentials = new CredentialFiles({
    ...(options.authFile ? { authFile: options.authFile } : {}),
    ...(options.registrySecretDir ? { secretDir: options.registrySecretDir } : {}),
    logger: log,
  });
  const namespace = controllerNamespace(options.controllerNamespace);
  if (namespace === undefined)
    log.warn('the controller namespace is unknown (no --controller-namespace, POD_NAMESPACE or service account); only kube-system is skipped');
  const copier = new Copier({
    ...workloads,
    backupTarget: target,
    handoffDir: options.handoffDir,
    controllerNamespace: namespace,
    includeNamespaces: options.includeNamespaces,
    excludeNamespaces: options.excludeNamespaces,
    registry: registryStackOptions(options, () => credentials.current()),
    ...(options.signatures ? { signatures: options.signatures } : {}),
    logger: log,
    ...(options.recheckIntervalMs ? { recheckIntervalMs: options.recheckIntervalMs } : {}),
    ...(options.leaderElection && !options.once ? { leaderElection: { leaseName: leaseNameOf(options) } } : {}),
    ...(options.argocdNamespace ? { argocdNamespace: options.argocdNamespace } : {}),
    ...(options.argocdKubeconfig ? { argocdKubeConfig: loadKubeConfig(options.argocdKubeconfig) } : {}),
    ...(options.argocdDestinations ? { argocdDestinations: options.argocdDestinations } : {}),
    backupPull: options.backupPull,
    ...(options.namespaceLimits ? { namespaceLimits: options.namespaceLimits } : {}),
  });

  if (options.once) {
    const summary = await copier.runOnce();
    await credentials.close();
    log.info('pass complete', {
      workloads: summary.workloads,
      decidedAfterMs: Math.round(summary.decidedAfterMs),
      recordsWritten: summary.recordsWritten,
      failed: summary.failedWorkloads.length,
      notPullable: summary.notPullableWorkloads.length,
      notVerified: summary.notVerifiedWorkloads.length,
      deferred: summary.deferredWorkloads.length,
    });
    for (const workload of summary.failedWorkloads) log.error('workload not backed up', { workload });
    for (const workload of summary.notPullableWorkloads)
      log.error('workload backed up but not handed off: its nodes could not pull the backup (see --backup-pull)', { workload });
    for (const workload of summary.notVerifiedWorkloads)
      log.error('workload backed up but not handed off: a signature --verify-signature asks for does not verify at the backup', { workload });
    for (const workload of summary.deferredWorkloads) log.warn("workload not backed up yet: a registry's pull quota is spent (run again later)", { workload });
    out(
      `pass complete: ${summary.workloads} workloads decided in ${(summary.decidedAfterMs / 1000).toFixed(2)} s; ${summary.recordsWritten} handoff records written; ${summary.failedWorkloads.length} failed; ${summary.notPullableWorkloads.length} not pullable by the nodes; ${summary.notVerifiedWorkloads.length} signatures not verified; ${summary.deferredWorkloads.length} deferred by pull quotas`,
    );
    const undone = [summary.failedWorkloads, summary.notPullableWorkloads, summary.notVerifiedWorkloads, summary.deferredWorkloads];
    return undone.every((list) => list.length === 0) ? 0 : 1;
  }

  await credentials.watch();
  // Served from the start, so the kubelet sees the process alive while the informers make their first list.
  const health = options.healthAddress
    ? await startHealthServer({ address: options.healthAddress, metrics: copier.metrics, healthy: () => copier.healthy(), ready: () => copier.readiness() })
    : undefined;
  if (health) log.info('health endpoints listening', { port: health.port });
  await copier.start();
  log.info('copier running', { backupRegistry: options.backupRegistry, handoffDir: options.handoffDir });
  await new Promise<void>((resolve) => {
    const stop = (signal: string) => {
      log.info('stopping', { signal });
      resolve();
    };
    process.once('SIGTERM', () => stop('SIGTERM'));
    process.once('SIGINT', () => stop('SIGINT'));
  });
  await copier.stop();
  await health?.close();
  await credentials.close();
  return 0;
}
