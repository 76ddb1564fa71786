/**
 * The copier role: cluster → policy → registry → handoff.
 *
 * Informers list and watch the workload kinds in every namespace; each change puts the workload's
 * key on a keyed work queue (./workqueue.ts: one entry however many events). A worker takes a key,
 * reads the object from the informer's cache (no API request per workload), backs up each of its
 * images through the copy engine (the verdict on an image is shared by every workload that runs it
 * for one re-check interval), judges the workload from those outcomes (./reconcile.ts), and when
 * every public image is in the backup registry writes one handoff record for the rewriter. Only
 * the leader works the queue; a standby keeps its caches warm. The health endpoints are served by
 * the command, from `healthy()` and `readiness()`.
 */
import {
  AppsV1Api,
  BatchV1Api,
  CoordinationV1Api,
  CoreV1Api,
  CustomObjectsApi,
  type KubeConfig,
  type V1Namespace,
  type V1ObjectMeta,
} from '@kubernetes/client-node';
import { hostname } from 'node:os';
import { readClusterCapabilities } from '../cluster/capabilities.ts';
import { readClusterIdentity, type ClusterIdentity } from '../cluster/identity.ts';
import { EventRecorder } from '../cluster/events.ts';
import { GitOpsOwners } from '../cluster/gitops.ts';
import { operatorResource } from '../cluster/operator-images.ts';
import { listAll, listNamespaces, ResilientInformer, servesKind, watchPath, type ClusterApis } from '../cluster/informers.ts';
import { CopierMetrics } from './metrics.ts';
import { LeaderElector } from '../cluster/leader.ts';
import {
  imagesOf,
  KIND_INFO,
  OPTIONAL_KINDS,
  podSpecOf,
  WORKLOAD_KINDS,
  workloadKey,
  workloadRef,
  type WorkloadKind,
  type WorkloadObject,
  type WorkloadRef,
} from '../cluster/workloads.ts';
import { ConfigError, ImageCloneError, describeError } from '../errors.ts';
import { Ledger } from '../handoff/ledger.ts';
import type { HandoffRecord } from '../handoff/schema.ts';
import { backupReference, isInBackupTarget, type BackupTarget } from '../image/backup.ts';
import { DEFAULT_BACKUP_PULL, type BackupPull, type RecordedPull } from '../image/backup-pull.ts';
import { formatReference, parseReference, type ImageReference } from '../image/reference.ts';
import type { Logger } from '../observability/log.ts';
import type { MetricsRegistry } from '../observability/metrics.ts';
import { createRegistryStack, type RegistryStack, type RegistryStackOptions } from '../registry/index.ts';
import { backupPullRefusal, notPublic, refusedBySource } from '../registry/pullable.ts';
import { verifyIfAsked } from '../registry/signatures.ts';
import type { SignaturePolicy } from '../image/signature-policy.ts';
import { ExpiringCache } from '../util/expiring-cache.ts';
import { CopyRefused, type CopyResult } from '../registry/copy.ts';
import { RateLimited } from '../registry/pull-quota.ts';
import { DEFAULT_NAMESPACE_LIMITS, NamespaceBudget, type NamespaceLimits } from './namespace-budget.ts';
import { reconcileWorkload, type ImageOutcome, type RefusalReason } from './reconcile.ts';
import { KeyedWorkQueue } from './workqueue.ts';

/**
 * A failure as the workload's Event says it: URLs masked (a hostile registry's redirect or token
 * realm must not turn Events into a way to read internal services' answers) and short; the whole
 * message is in the copier's log for the operator.
 */
export function forTenants(message: string): string {
  const masked = message.replace(/\b[a-z][a-z0-9+.-]*:\/\/[^\s,;)"']+/gi, '<url>');
  return masked.length > 400 ? `${masked.slice(0, 400)}… (the copier's log has the rest)` : masked;
}

/** A reason's first line, cut to `max` characters: an Event's message is short. */
function firstLine(text: string, max: number): string {
  const line = text.split('\n', 1)[0]!;
  return line.length > max ? `${line.slice(0, max)}…` : line;
}

/** On a namespace or a workload, `"true"` keeps the controller away from it. */
export const IGNORE_ANNOTATION = 'image-clone-controller/ignore';
const ALWAYS_IGNORED_NAMESPACES = ['kube-system'];
/** Workloads processed at once (each mostly waits on registries). */
const WORKERS = 32;

/** What a record moves (see Copier#recordSubject), and for an operator's resource what its owner is looked up by. */
type RecordSubject = Pick<HandoffRecord, 'workload' | 'images' | 'controller'> & {
  readonly owned?: { readonly group: string; readonly kind: string; readonly metadata: V1ObjectMeta };
};

export interface CopierConfig {
  /** The cluster whose workloads are backed up. */
  readonly kubeConfig: KubeConfig;
  /**
   * The cluster the controller runs in, where that is not the workloads' (in an Argo CD hub, serving
   * a spoke: --argocd-cluster-secret): its Lease is there, and its own namespace is there rather than
   * among the workloads.
   */
  readonly homeKubeConfig?: KubeConfig;
  readonly backupTarget: BackupTarget;
  readonly handoffDir: string;
  /** The controller's own namespace, never touched (in the home cluster, where one is given). */
  readonly controllerNamespace: string | undefined;
  /** When non-empty, only these namespaces. */
  readonly includeNamespaces: readonly string[];
  readonly excludeNamespaces: readonly string[];
  readonly registry: RegistryStackOptions;
  /** --verify-signature: the images whose backups must carry a signature that verifies, and with which keys. */
  readonly signatures?: SignaturePolicy;
  readonly logger: Logger;
  /** How long a verified backup is trusted before it is checked again (lifecycle policies delete). */
  readonly recheckIntervalMs?: number;
  readonly leaderElection?: { readonly leaseName: string; readonly identity?: string };
  readonly argocdNamespace?: string;
  /** Where Argo CD's Applications are read, when Argo CD runs in another cluster (--argocd-kubeconfig). */
  readonly argocdKubeConfig?: KubeConfig;
  /** What Argo CD calls this cluster (--argocd-destination). */
  readonly argocdDestinations?: readonly string[];
  /** This cluster's name in records (--cluster-name); default: from the kube-system namespace's uid. */
  readonly clusterName?: string;
  /** How the workloads' nodes pull from the backup registry (default: anonymously, proven per image). */
  readonly backupPull?: BackupPull;
  /** What one namespace may copy per re-check interval (default: 200 images, 100 GiB). */
  readonly namespaceLimits?: NamespaceLimits;
}

export interface PassSummary {
  readonly workloads: number;
  /** From the start of the pass until every workload was decided (before Events are flushed). */
  readonly decidedAfterMs: number;
  readonly failedWorkloads: readonly string[];
  /** Backed up, but not handed off: the nodes could not pull the backup (see --backup-pull). */
  readonly notPullableWorkloads: readonly string[];
  /** Backed up, but a signature --verify-signature asks for does not verify at the backup. */
  readonly notVerifiedWorkloads: readonly string[];
  /** Waiting for a registry's pull quota (tried again when it allows; `--once` does not wait). */
  readonly deferredWorkloads: readonly string[];
  readonly recordsWritten: number;
}

export class Copier {
  readonly #metrics = new CopierMetrics();
  #cluster: ClusterIdentity | undefined;
  /** What /metrics serves. */
  readonly metrics: MetricsRegistry = this.#metrics.registry;
  readonly #config: CopierConfig;
  readonly #log: Logger;
  readonly #apis: ClusterApis;
  readonly #registry: RegistryStack;
  readonly #ledger: Ledger;
  readonly #owners: GitOpsOwners;
  readonly #events: EventRecorder;
  readonly #informers: Map<WorkloadKind, ResilientInformer<WorkloadObject>>;
  readonly #namespaces: ResilientInformer<V1Namespace>;
  readonly #elector: LeaderElector | undefined;
  readonly #queue: KeyedWorkQueue;
  /** Image → the verdict on it, shared by every workload that runs it; a failure is trusted only briefly, so the next attempt comes from the workload's backoff. */
  readonly #images: ExpiringCache<ImageOutcome>;
  /** namespace/name → the pull Secrets a service account lists (for --backup-pull secret:NAME). */
  readonly #serviceAccounts: ExpiringCache<readonly string[]>;
  #serviceAccountsForbidden = false;
  readonly #backupPull: BackupPull;
  readonly #budget: NamespaceBudget;
  readonly #failing = new Set<string>();
  /** Workloads backed up but not handed off: their nodes could not pull the backup. */
  readonly #notPullable = new Set<string>();
  /** Workloads backed up but not handed off: a signature the operator asks for does not verify at the backup. */
  readonly #notVerified = new Set<string>();
  /** Workloads waiting for a registry's pull quota. */
  readonly #deferred = new Set<string>();
  #leading = false;
  #firstPassDone = false;
  #resync: NodeJS.Timeout | undefined;
  #recordsWritten = 0;

  constructor(config: CopierConfig) {
    this.#config = config;
    this.#log = config.logger.child({ role: 'copier' });
    this.#backupPull = config.backupPull ?? DEFAULT_BACKUP_PULL;
    this.#queue = new KeyedWorkQueue({
      workers: WORKERS,
      work: (key) => this.#process(key),
      onError: (key, error) => this.#log.error('workload processing failed', { workload: key, error: describeError(error) }),
      onDrained: () => {
        if (!this.#firstPassDone) this.#log.info('first pass done: every workload decided');
        this.#firstPassDone = true;
      },
    });
    // A namespace's refusal is that namespace's alone: not kept for another that runs the image.
    this.#images = new ExpiringCache({
      ttlMs: (o) =>
        o.kind === 'refused' && o.reason !== 'image-too-large'
          ? 0
          : o.kind === 'deferred'
            ? Math.max(0, o.until - Date.now())
            : o.kind === 'failed' || o.kind === 'not-pullable' || o.kind === 'not-verified'
              ? 5_000
              : this.#recheckMs(),
    });
    this.#budget = new NamespaceBudget(config.namespaceLimits ?? DEFAULT_NAMESPACE_LIMITS, this.#recheckMs());
    this.#serviceAccounts = new ExpiringCache({ ttlMs: () => this.#recheckMs() });
    const kc = config.kubeConfig;
    this.#apis = {
      core: kc.makeApiClient(CoreV1Api),
      apps: kc.makeApiClient(AppsV1Api),
      batch: kc.makeApiClient(BatchV1Api),
      custom: kc.makeApiClient(CustomObjectsApi),
    };
    this.#registry = createRegistryStack({
      ...config.registry,
      onRetry: (what, event) => {
        this.#metrics.retries.inc();
        this.#log.warn('registry request retried', { what, attempt: event.attempt, delayMs: event.delayMs, error: describeError(event.error) });
      },
      onBlob: (how, bytes) => {
        this.#metrics.blobs.inc({ how });
        if (bytes > 0) this.#metrics.bytes.inc({}, bytes);
      },
    });
    this.#ledger = new Ledger(config.handoffDir);
    this.#ledger.sweepTemporaries();
    this.#owners = new GitOpsOwners(this.#apis.custom, {
      ...(config.argocdNamespace ? { argocdNamespace: config.argocdNamespace } : {}),
      ...(config.argocdKubeConfig ? { argocdApi: config.argocdKubeConfig.makeApiClient(CustomObjectsApi) } : {}),
      ...(config.argocdDestinations ? { argocdDestinations: config.argocdDestinations } : {}),
    });
    this.#events = new EventRecorder(this.#apis.core, 'image-clone-copier', this.#log);

    ({ informers: this.#informers, namespaces: this.#namespaces } = this.#watches(kc));
    this.#elector = config.leaderElection ? this.#leaderElector(config.homeKubeConfig ?? kc, config.leaderElection) : undefined;
    this.#metrics.observe({
      queueDepth: () => this.#queue.depth,
      inFlight: () => this.#registry.engine.pending,
      leading: () => this.#leading,
      eventsDropped: () => this.#events.dropped,
      failing: () => this.#failing.size,
      notPullable: () => this.#notPullable.size,
      notVerified: () => this.#notVerified.size,
    });
  }

  /** The informers of the workload kinds and of namespaces: a change queues the workloads it concerns. */
  #watches(kc: KubeConfig): { informers: Map<WorkloadKind, ResilientInformer<WorkloadObject>>; namespaces: ResilientInformer<V1Namespace> } {
    const informers = new Map(
      WORKLOAD_KINDS.map((kind) => [
        kind,
        new ResilientInformer<WorkloadObject>({
          name: kind,
          kubeConfig: kc,
          path: watchPath(kind),
          list: listAll(this.#apis, kind),
          logger: this.#log,
          onChange: (change, object) => {
            if (change !== 'delete') this.#queue.add(workloadKey(workloadRef(kind, object)));
          },
          onRestart: () => this.#metrics.restarts.inc({ informer: kind }),
        }),
      ]),
    );
    const namespaces = new ResilientInformer<V1Namespace>({
      name: 'Namespace',
      kubeConfig: kc,
      path: '/api/v1/namespaces',
      list: listNamespaces(this.#apis),
      logger: this.#log,
      // A namespace that drops its ignore annotation makes its workloads eligible again.
      onChange: (change, ns) => {
        if (change === 'update' && this.#firstPassDone) this.#enqueueNamespace(ns.metadata?.name ?? '');
      },
      onRestart: () => this.#metrics.restarts.inc({ informer: 'Namespace' }),
    });

    return { informers, namespaces };
  }

  /** Leadership on a Lease: the leader works the queue, a standby keeps its caches warm. */
  #leaderElector(kc: KubeConfig, election: NonNullable<CopierConfig['leaderElection']>): LeaderElector {
    const identity = election.identity ?? `${process.env.POD_NAME ?? hostname()}-${process.pid}`;
    return new LeaderElector({
      api: kc.makeApiClient(CoordinationV1Api),
      namespace: this.#config.controllerNamespace ?? 'default',
      name: election.leaseName,
      identity,
      logger: this.#log,
      onStartedLeading: () => {
        this.#leading = true;
        this.#queue.run();
        this.#enqueueAll();
      },
      onStoppedLeading: () => {
        this.#leading = false;
        this.#queue.pause();
      },
    });
  }

  /** Runs until stop(): informers, leader election, periodic re-checks. */
  async start(): Promise<void> {
    await this.#identify();
    await this.#startInformers();
    if (this.#elector) this.#elector.start();
    else {
      this.#leading = true;
      this.#queue.run();
      this.#enqueueAll();
    }
    void this.#recordCapabilities();
    const interval = this.#recheckMs();
    this.#resync = setInterval(() => {
      this.#enqueueAll();
      void this.#recordCapabilities();
    }, interval);
    this.#resync.unref();
  }

  /** Which cluster this is, before any record is written (every record names it). */
  async #identify(): Promise<void> {
    this.#cluster ??= await readClusterIdentity(this.#apis.core, this.#config.clusterName);
    this.#log.info('serving cluster', { cluster: this.#cluster.name, uid: this.#cluster.uid });
  }

  /**
   * What charts see of this cluster (its version, the API versions it serves), left beside the
   * records for the rewriter's render proofs; read again every re-check interval. A failure is
   * logged, and the proofs then render with what they had, or with Helm's defaults.
   */
  async #recordCapabilities(): Promise<void> {
    try {
      await this.#ledger.writeCapabilities(await readClusterCapabilities(this.#config.kubeConfig));
    } catch (error) {
      this.#log.warn('could not read the cluster version and API versions for the render proofs', { error: describeError(error) });
    }
  }

  /** One full pass over every workload: waits for its copies, writes its records, then stops. */
  async runOnce(): Promise<PassSummary> {
    const started = performance.now();
    await this.#identify();
    await this.#startInformers();
    this.#leading = true;
    this.#queue.run();
    this.#enqueueAll();
    await this.#recordCapabilities();
    await this.#queue.drained();
    const all = [...this.#informers.values()].reduce((n, i) => n + i.list().length, 0);
    const summary = {
      workloads: all,
      decidedAfterMs: performance.now() - started,
      failedWorkloads: [...this.#failing],
      notPullableWorkloads: [...this.#notPullable],
      notVerifiedWorkloads: [...this.#notVerified],
      deferredWorkloads: [...this.#deferred],
      recordsWritten: this.#recordsWritten,
    };
    await this.stop();
    return summary;
  }

  async stop(): Promise<void> {
    clearInterval(this.#resync);
    this.#queue.stop();
    await this.#events.flush();
    await this.#elector?.stop();
    await Promise.all([...this.#informers.values(), this.#namespaces].map((i) => i.stop()));
    await this.#registry.close();
  }

  async #startInformers(): Promise<void> {
    // A kind only a CRD provides (Argo Rollouts) is watched where the API serves it and the RBAC allows it.
    for (const kind of OPTIONAL_KINDS) {
      const served = await servesKind(this.#apis, kind).catch((error: unknown) => {
        this.#log.warn('could not ask the API server which kinds it serves; not watching this kind', { kind, error: describeError(error) });
        return false;
      });
      if (!served) {
        this.#informers.delete(kind);
        this.#log.info('kind not served by this cluster (its CRD is not installed); not watched until the copier restarts', { kind });
      }
    }
    await Promise.all([this.#namespaces, ...this.#informers.values()].map((i) => i.start()));
    const deadline = Date.now() + 120_000;
    const all = [this.#namespaces, ...this.#informers.values()];
    while (!all.every((i) => i.synced)) {
      for (const kind of OPTIONAL_KINDS) {
        const informer = this.#informers.get(kind);
        if (informer?.forbidden === undefined) continue;
        this.#log.warn('may not list or watch this kind (RBAC: get, list, watch); not watched', { kind, error: informer.forbidden });
        await informer.stop();
        this.#informers.delete(kind);
        all.splice(all.indexOf(informer), 1);
      }
      const forbidden = all.map((i) => i.forbidden).filter((f) => f !== undefined);
      if (forbidden.length > 0) {
        throw new ConfigError(
          `the copier's service account lacks RBAC permission (it needs get, list and watch on namespaces, deployments, daemonsets, statefulsets and cronjobs cluster-wide): ${forbidden.join('; ')}`,
        );
      }
      if (Date.now() > deadline) {
        const problems = all.filter((i) => !i.synced && i.problem !== undefined).map((i) => `${i.name}: ${i.problem}`);
        throw new ImageCloneError(
          `the informers did not finish their first list within 120 s${problems.length ? ` (${[...new Set(problems)].slice(0, 3).join('; ')})` : ''}; check that the API server in the kubeconfig is reachable`,
        );
      }
      await new Promise((r) => setTimeout(r, 20));
    }
    // The first lists are a burst of garbage (each page as client-node deserialises it, then slimmed),
    // promoted before it dies; left alone it sets how far the heap grows through the whole pass. With
    // --expose-gc (the image's entrypoint) it is collected here, once: measured over 10,000 Deployments,
    // the first pass's peak RSS fell by 20-30 MiB (bench/copier.bench.ts).
    (globalThis as { gc?: () => void }).gc?.();
    this.#log.info('informers synced', Object.fromEntries([...this.#informers].map(([k, i]) => [k, i.list().length])));
  }

  #recheckMs(): number {
    return this.#config.recheckIntervalMs ?? 10 * 60_000;
  }

  #enqueueAll(): void {
    for (const [kind, informer] of this.#informers) this.#queue.addAll(informer.list().map((object) => workloadKey(workloadRef(kind, object))));
  }

  #enqueueNamespace(namespace: string): void {
    for (const [kind, informer] of this.#informers) {
      const inNamespace = informer.list().filter((object) => object.metadata?.namespace === namespace);
      this.#queue.addAll(inNamespace.map((object) => workloadKey(workloadRef(kind, object))));
    }
  }

  #namespaceIgnored(namespace: string): boolean {
    const { includeNamespaces, excludeNamespaces, controllerNamespace } = this.#config;
    const own = this.#config.homeKubeConfig === undefined && namespace === controllerNamespace;
    if (ALWAYS_IGNORED_NAMESPACES.includes(namespace) || own) return true;
    if (includeNamespaces.length > 0 && !includeNamespaces.includes(namespace)) return true;
    if (excludeNamespaces.includes(namespace)) return true;
    return this.#namespaces.get(namespace)?.metadata?.annotations?.[IGNORE_ANNOTATION] === 'true';
  }

  async #process(key: string): Promise<void> {
    const [kind, namespace, name] = key.split('/') as [WorkloadKind, string, string];
    const object = this.#informers.get(kind)?.get(name, namespace);
    if (!object || this.#namespaceIgnored(namespace)) return this.#forget(key);
    if (object.metadata?.annotations?.[IGNORE_ANNOTATION] === 'true') return this.#forget(key);

    const ref = workloadRef(kind, object);
    const outcomes = await Promise.all(imagesOf(kind, object).map(async (c) => ({ container: c, outcome: await this.#backUp(c.image, namespace) })));
    const verdict = reconcileWorkload(outcomes);
    // Not backed up (a registry failed, or a bound refused it): said on the workload, retried later.
    if (verdict.kind === 'failed' || verdict.kind === 'refused') {
      const refused = verdict.kind === 'refused';
      this.#failing.add(key);
      this.#log.warn(refused ? 'backup refused by a bound; retried later' : 'backup failed', {
        workload: key,
        ...(refused ? { reasons: verdict.reasons } : { failed: verdict.failed }),
        error: verdict.message,
      });
      this.#events.record(ref, 'Warning', refused ? 'BackupRefused' : 'BackupFailed', forTenants(verdict.message));
      this.#queue.retryLater(key);
      return;
    }
    // A registry's pull quota is spent: not a failure; tried again when the quota allows, said once.
    if (verdict.kind === 'deferred') {
      if (!this.#deferred.has(key)) {
        this.#log.info('backup deferred: a pull quota is spent', { workload: key, until: new Date(verdict.until).toISOString(), reason: verdict.message });
        this.#events.record(ref, 'Normal', 'RateLimited', forTenants(`${verdict.message}; tried again at ${new Date(verdict.until).toISOString()}`));
      }
      this.#deferred.add(key);
      this.#failing.delete(key);
      this.#queue.retryAfter(key, verdict.until - Date.now());
      return;
    }
    // Backed up, but a change to it would break the workload at its next restart, or move it onto an
    // image whose signature does not verify: wait, and say why (once).
    if (verdict.kind === 'not-pullable' || verdict.kind === 'not-verified') {
      const waiting = verdict.kind === 'not-pullable' ? this.#notPullable : this.#notVerified;
      if (!waiting.has(key)) {
        this.#log.warn(verdict.kind === 'not-pullable' ? 'backup not pullable by the nodes; not handed off' : 'backup signature not verified; not handed off', {
          workload: key,
          error: verdict.message,
        });
        // A signature's reason can quote what a registry answered: masked and bounded, as failures are.
        if (verdict.kind === 'not-pullable') this.#events.record(ref, 'Warning', 'BackupNotPullable', verdict.message);
        else this.#events.record(ref, 'Warning', 'SignatureNotVerified', forTenants(verdict.message));
      }
      this.#failing.delete(key);
      waiting.add(key);
      this.#queue.retryLater(key);
      return;
    }
    const moved = verdict.moved;
    this.#forget(key);
    if (moved.length === 0) return;

    let owner: Awaited<ReturnType<GitOpsOwners['ownerOf']>>;
    let pull: RecordedPull;
    let subject: RecordSubject;
    try {
      // What Git must change: the workload, or the resource whose controller sets its images.
      subject = await this.#recordSubject(ref, object, moved);
      const [group] = KIND_INFO[kind].apiVersion.split('/');
      // The owner of what Git must change, verified as for any workload (a controlled workload's own marks are copied from its resource).
      owner =
        subject.controller !== undefined
          ? undefined
          : subject.owned !== undefined
            ? await this.#owners.ownerOf({ ...subject.owned, namespace: ref.namespace, name: subject.workload.name })
            : await this.#owners.ownerOf({
                group: KIND_INFO[kind].apiVersion.includes('/') ? group! : '',
                kind,
                namespace: ref.namespace,
                name: ref.name,
                metadata: object.metadata ?? {},
              });
      pull = await this.#recordedPull(kind, object);
    } catch (error) {
      this.#log.warn('could not resolve the GitOps owner or the service account; will retry', { workload: key, error: describeError(error) });
      this.#failing.add(key);
      this.#queue.retryLater(key);
      return;
    }
    const { id, written } = await this.#ledger.write({
      workload: subject.workload,
      images: subject.images,
      ...(subject.controller ? { controller: subject.controller } : {}),
      owner,
      pull,
      ...(this.#cluster ? { cluster: this.#cluster } : {}),
    });
    if (written) {
      this.#recordsWritten++;
      this.#metrics.records.inc();
      this.#log.info('handoff record written', {
        workload: key,
        record: id,
        images: moved.length,
        owner: owner ? `${owner.tool}:${owner.namespace}/${owner.name}` : 'unmanaged',
      });
      this.#events.record(
        ref,
        'Normal',
        'BackedUp',
        `${moved.length} image(s) backed up: ${moved.map((m) => `${m.source} → ${m.backup}@${m.digest}`).join(', ')}`,
      );
      // Backed up, but no file in Git can move it: the rewriter will not propose it; say why here.
      if (subject.controller) {
        this.#metrics.recordsControlled.inc();
        this.#events.record(
          ref,
          'Warning',
          'ControlledByOperator',
          `backed up, but no change will be proposed and it is never patched: ${subject.controller.kind} ${subject.controller.name} controls it and sets its images`,
        );
      } else if (owner?.notVerified) {
        this.#metrics.ownersNotVerified.inc();
        this.#log.warn('the GitOps owner the workload claims does not list it; not trusted', {
          workload: key,
          claimed: `${owner.kind} ${owner.namespace}/${owner.name}`,
          why: owner.notVerified,
        });
        this.#events.record(
          ref,
          'Warning',
          'OwnerNotVerified',
          `backed up, but no change will be proposed: it claims an owner that does not list it (${owner.notVerified})`,
        );
      } else if (owner?.unsupported) this.#events.record(ref, 'Warning', 'OwnerNotFollowed', `backed up, but no change will be proposed: ${owner.unsupported}`);
      return;
    }
    // Written before: if the rewriter refused it, the workload says why (the rewriter has no access to the cluster).
    const refusal = this.#ledger.refusal(id);
    if (refusal) this.#events.record(ref, 'Warning', 'NotProposed', `backed up, but the change is not proposed: ${forTenants(firstLine(refusal, 900))}`);
  }

  /**
   * What a record moves. A workload with no controller is its own subject. One an operator's resource
   * controls (cluster/operator-images.ts) is moved through that resource: the record names it, with
   * the images of the containers its documented fields set (the rest the operator sets itself, from its
   * own flags). Any other controller: the record names the controller, and nothing is proposed or patched.
   */
  async #recordSubject(ref: WorkloadRef, object: WorkloadObject, moved: HandoffRecord['images']): Promise<RecordSubject> {
    const controller = object.metadata?.ownerReferences?.find((r) => r.controller === true);
    if (!controller) return { workload: ref, images: moved };
    // What is not followed through its resource: named as controlled, never proposed or patched.
    const controlled: RecordSubject = { workload: ref, images: moved, controller: { kind: controller.kind, name: controller.name } };
    const operator = operatorResource(controller.apiVersion, controller.kind);
    const fielded = moved.filter((m) => !m.init && operator?.fields.some((f) => f.container === m.container));
    if (!operator || fielded.length === 0) return controlled;
    let resource: { metadata?: V1ObjectMeta };
    try {
      resource = (await this.#apis.custom.getNamespacedCustomObject({
        group: operator.group,
        version: operator.version,
        namespace: ref.namespace,
        plural: operator.plural,
        name: controller.name,
      })) as { metadata?: V1ObjectMeta };
    } catch (error) {
      const code = (error as { code?: number }).code;
      // Gone, or not ours to read (RBAC): the workload is named as controlled, not retried for ever.
      if (code !== 404 && code !== 403) throw error;
      if (code === 403)
        this.#log.warn(`may not read ${operator.plural}.${operator.group} (RBAC: get); a workload it controls is not moved`, { workload: workloadKey(ref) });
      return controlled;
    }
    // An owner reference is written by whoever writes the workload: it must name this very resource, by uid, as the garbage collector reads it.
    if (resource.metadata?.uid !== controller.uid) return controlled;
    const unset = moved.filter((m) => !fielded.includes(m));
    if (unset.length > 0)
      this.#log.info("images its operator sets from its own settings; not moved with the resource's", {
        workload: workloadKey(ref),
        controller: `${controller.kind}/${controller.name}`,
        containers: unset.map((m) => m.container),
      });
    return {
      workload: { kind: controller.kind, namespace: ref.namespace, name: controller.name, uid: controller.uid },
      images: fielded,
      owned: { group: operator.group, kind: controller.kind, metadata: resource.metadata ?? {} },
    };
  }

  /** How this workload's Pods will pull its backups; for a Secret, whether the pod or its service account lists it. */
  async #recordedPull(kind: WorkloadKind, object: WorkloadObject): Promise<RecordedPull> {
    const setting = this.#backupPull;
    if (setting.via !== 'secret') return setting;
    const spec = podSpecOf(kind, object);
    if ((spec?.imagePullSecrets ?? []).some((r) => r.name === setting.secret)) return { ...setting, listedBy: 'pod' };
    const names = await this.#serviceAccountPullSecrets(object.metadata?.namespace ?? '', spec?.serviceAccountName ?? 'default');
    return { ...setting, listedBy: names.includes(setting.secret) ? 'service-account' : 'none' };
  }

  /**
   * The pull Secrets a service account lists: one GET per account per re-check interval (no
   * cluster-wide list or watch of service accounts). Missing: none. Forbidden (RBAC without `get`
   * on serviceaccounts): none, said once; the change then adds the Secret to the pod template.
   */
  #serviceAccountPullSecrets(namespace: string, name: string): Promise<readonly string[]> {
    const key = `${namespace}/${name}`;
    return this.#serviceAccounts.get(key, () =>
      this.#apis.core.readNamespacedServiceAccount({ name, namespace }).then(
        (account) => (account.imagePullSecrets ?? []).flatMap((r) => (r.name ? [r.name] : [])),
        (error: { code?: number }) => {
          if (error.code === 404) return [];
          if (error.code === 403) {
            if (!this.#serviceAccountsForbidden)
              this.#log.warn(
                'may not read service accounts (RBAC: get serviceaccounts); a workload whose service account lists the pull Secret gets it added to its pod template too',
                { serviceAccount: key },
              );
            this.#serviceAccountsForbidden = true;
            return [];
          }
          throw error;
        },
      ),
    );
  }

  /** Backs up one image, or reuses a recent verdict for it (many workloads share images). */
  #backUp(image: string, namespace: string): Promise<ImageOutcome> {
    let source: ImageReference;
    try {
      source = parseReference(image);
    } catch (error) {
      this.#metrics.copies.inc({ outcome: 'skipped' });
      return Promise.resolve({ kind: 'skipped', reason: describeError(error) });
    }
    if (isInBackupTarget(source, this.#config.backupTarget)) return Promise.resolve({ kind: 'skipped', reason: 'already a backup' });
    return this.#images
      .get(formatReference(source), () => this.#copy(source, namespace))
      .then((outcome) =>
        // Another namespace's share said no while this one waited on the same copy: this one asks on its own.
        outcome.kind === 'refused' && outcome.namespace !== undefined && outcome.namespace !== namespace ? this.#copy(source, namespace) : outcome,
      );
  }

  async #copy(source: ImageReference, namespace: string): Promise<ImageOutcome> {
    try {
      return await this.#copyAndVerify(source, namespace);
    } finally {
      for (const { registry, remaining } of this.#registry.quotas.remaining()) this.#metrics.pullsRemaining.set(remaining, { registry });
    }
  }

  async #copyAndVerify(source: ImageReference, namespace: string): Promise<ImageOutcome> {
    const started = performance.now();
    let backup: ImageReference;
    try {
      backup = backupReference(source, this.#config.backupTarget);
    } catch (error) {
      this.#metrics.copies.inc({ outcome: 'skipped' });
      return { kind: 'skipped', reason: describeError(error) };
    }
    try {
      // "Public" means anonymously public: asked first without credentials, so an image that needs
      // the operator's (another team's private image, on the backup host or any host in the auth
      // file) is never read with them, and never republished where nodes pull anonymously.
      const refusal = await notPublic(this.#registry, source);
      if (refusal !== undefined) {
        this.#metrics.copies.inc({ outcome: 'skipped' });
        this.#log.info('image skipped: not public', { image: formatReference(source), reason: refusal });
        return { kind: 'skipped', reason: 'not public' };
      }
      const share = this.#budget.admit(namespace);
      if (!share.ok) return this.#refuse(source, share.reason, share.why, namespace);
      let result: CopyResult | undefined;
      let deferred = false;
      try {
        result = await this.#registry.engine.copy({
          source,
          destination: backup,
          budget: { bytes: share.bytesLeft, what: "what is left of this namespace's share for this interval (--namespace-max-bytes)" },
          share: namespace,
        });
      } catch (error) {
        deferred = error instanceof RateLimited;
        throw error;
      } finally {
        // Only a copy that found the backup there, or that a pull quota put off, gives its image back: a failed one may have moved bytes.
        this.#budget.settle(share, !deferred && (result === undefined || result.outcome === 'copied'), result?.blobs.bytesTransferred ?? 0);
      }
      this.#metrics.copies.inc({ outcome: result.outcome });
      this.#metrics.durations.observe((performance.now() - started) / 1000);
      if (result.outcome === 'copied')
        this.#log.info('image backed up', { source: result.source, backup: result.destination, digest: result.digest, bytes: result.blobs.bytesTransferred });
      const pinned = `${formatReference({ ...backup, digest: undefined })}@${result.digest}`;
      const unpullable = await backupPullRefusal(this.#registry, this.#backupPull, backup, result.digest);
      if (unpullable !== undefined) return { kind: 'not-pullable', backup: pinned, reason: unpullable };
      // Checked at the backup, after the copy: what the nodes will pull is what is verified.
      const signature = await verifyIfAsked(this.#registry.client, this.#config.signatures, source, backup, result.digest);
      if (signature === undefined) return { kind: 'backed-up', source, backup, result };
      this.#metrics.signatures.inc({ result: signature.verified ? 'verified' : 'not-verified' });
      if (!signature.verified) {
        this.#log.warn('backup signature not verified', { image: formatReference(source), backup: pinned, reason: signature.reason });
        return { kind: 'not-verified', backup: pinned, reason: signature.reason };
      }
      return { kind: 'backed-up', source, backup, result, signature };
    } catch (error) {
      if (error instanceof RateLimited) {
        this.#metrics.deferred.inc({ registry: error.registry ?? source.registry });
        return { kind: 'deferred', until: error.until, reason: error.message };
      }
      if (error instanceof CopyRefused)
        return error.reason === 'budget'
          ? this.#refuse(source, 'namespace-bytes', error.message, namespace)
          : this.#refuse(source, error.reason, error.message);
      if (refusedBySource(error, source)) {
        this.#metrics.copies.inc({ outcome: 'skipped' });
        this.#log.info('image skipped: not public', { image: formatReference(source) });
        return { kind: 'skipped', reason: 'not public' };
      }
      this.#metrics.copies.inc({ outcome: 'failed' });
      return { kind: 'failed', error: error instanceof Error ? error : new Error(String(error)) };
    }
  }

  /** A refusal by a bound; `namespace` when it is that namespace's share that says no. */
  #refuse(source: ImageReference, reason: RefusalReason, message: string, namespace?: string): ImageOutcome {
    this.#metrics.copies.inc({ outcome: 'refused' });
    this.#metrics.refused.inc({ reason });
    this.#log.warn('image not copied: a bound refuses it', { image: formatReference(source), reason, why: message, ...(namespace ? { namespace } : {}) });
    return { kind: 'refused', reason, message, ...(namespace ? { namespace } : {}) };
  }

  /** The workload is settled (moved, or nothing to do): no longer failing, no retry pending. */
  #forget(key: string): void {
    this.#failing.delete(key);
    this.#notPullable.delete(key);
    this.#notVerified.delete(key);
    this.#deferred.delete(key);
    this.#queue.forget(key);
  }

  /** For /healthz: every informer has listed successfully within 5 minutes. */
  healthy(): { ok: boolean; detail: string } {
    // Credentials refused: the kubelet's restart reads them again (a rotated token, a renewed cluster Secret).
    const refused = [...this.#informers.values(), this.#namespaces].filter((i) => i.unauthorized);
    if (refused.length > 0)
      return {
        ok: false,
        detail: `the API server refuses the copier's credentials (401) for ${refused.map((i) => i.name).join(', ')}: an expired, rotated or revoked token; a restart reads them again`,
      };
    const stalled = [...this.#informers.values(), this.#namespaces].filter((i) => !i.synced && i.quietForMs > 5 * 60_000);
    return stalled.length === 0
      ? { ok: true, detail: 'informers alive' }
      : { ok: false, detail: `informers without a successful list for 5 minutes: ${stalled.map((i) => i.name).join(', ')}` };
  }

  /** For /readyz: the first pass has decided every workload, or this replica stands by with warm caches. */
  readiness(): { ok: boolean; detail: string } {
    if (this.#elector && !this.#leading) {
      const synced = [...this.#informers.values()].every((i) => i.synced);
      return { ok: synced, detail: synced ? 'standby (not the leader), caches warm' : 'informers syncing' };
    }
    return this.#firstPassDone
      ? { ok: true, detail: 'every workload decided' }
      : { ok: false, detail: `first pass in progress (${this.#queue.depth} workloads left)` };
  }
}
