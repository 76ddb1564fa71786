/**
 * Informers (list + watch) that keep themselves alive. client-node's ListWatch relists on 410 Gone
 * but stops for good on any other error, and watches have been seen to stall silently; so each
 * informer here is restarted from its error handler with capped exponential backoff, and a
 * watchdog restarts one that has shown no sign of life for too long.
 */
import {
  makeInformer,
  type AppsV1Api,
  type BatchV1Api,
  type CoreV1Api,
  type CustomObjectsApi,
  type Informer,
  type KubeConfig,
  type KubernetesObject,
  type ObjectCache,
  type V1Namespace,
} from '@kubernetes/client-node';
import { describeError } from '../errors.ts';
import type { Logger } from '../observability/log.ts';
import { KIND_INFO, slimWorkload, type WorkloadKind, type WorkloadObject } from './workloads.ts';

export interface ResilientInformerOptions<T extends KubernetesObject> {
  readonly name: string;
  readonly kubeConfig: KubeConfig;
  readonly path: string;
  readonly list: () => Promise<{ items: T[]; metadata?: { resourceVersion?: string } }>;
  readonly logger: Logger;
  readonly onChange: (kind: 'add' | 'update' | 'delete', object: T) => void;
  readonly onRestart?: (reason: string) => void;
}

const MAX_BACKOFF_MS = 30_000;

export class ResilientInformer<T extends KubernetesObject> {
  readonly name: string;
  readonly #options: ResilientInformerOptions<T>;
  readonly #informer: Informer<T> & ObjectCache<T>;
  #synced = false;
  #stopped = false;
  #lastError: unknown;
  #errorsThisStart = 0;
  #failures = 0;
  #lastSign = Date.now();
  #restartTimer: NodeJS.Timeout | undefined;
  #watchdog: NodeJS.Timeout | undefined;

  constructor(options: ResilientInformerOptions<T>) {
    this.name = options.name;
    this.#options = options;
    this.#informer = makeInformer(options.kubeConfig, options.path, options.list as never);
    const sign = () => {
      this.#lastSign = Date.now();
      this.#failures = 0;
    };
    for (const kind of ['add', 'update', 'delete'] as const) {
      this.#informer.on(kind, (o) => {
        sign();
        options.onChange(kind, o);
      });
    }
    // 'connect' fires before the list, so it means life, not "synced".
    this.#informer.on('connect', sign);
    this.#informer.on('error', (error: unknown) => {
      this.#lastError = error;
      this.#errorsThisStart++;
      this.#scheduleRestart(`watch error: ${describeError(error)}`);
    });
  }

  /** Whether a list has completed (every object seen once). */
  get synced(): boolean {
    return this.#synced;
  }

  /** Set when the API server refused to list or watch (RBAC): retrying will not help. */
  get forbidden(): string | undefined {
    const error = this.#lastError as { code?: number; body?: unknown } | undefined;
    if (error?.code !== 403) return undefined;
    let status: { message?: unknown } | undefined;
    try {
      status = (typeof error.body === 'string' ? JSON.parse(error.body) : error.body) as typeof status;
    } catch {
      status = undefined;
    }
    return `${this.name}: ${typeof status?.message === 'string' ? status.message : 'forbidden'}`;
  }

  /**
   * Set when the API server no longer takes the credentials (401: an expired, rotated or revoked
   * token): retrying with them will not help; a restart, which reads them again, may.
   */
  get unauthorized(): boolean {
    const error = this.#lastError as { code?: number; statusCode?: number } | undefined;
    return error?.code === 401 || error?.statusCode === 401;
  }

  /** The last list or watch error, described, while it has not synced since. */
  get problem(): string | undefined {
    return this.#lastError === undefined ? undefined : describeError(this.#lastError);
  }

  /** Milliseconds since the informer last showed life. */
  get quietForMs(): number {
    return Date.now() - this.#lastSign;
  }

  get(name: string, namespace?: string): T | undefined {
    return this.#informer.get(name, namespace);
  }

  list(): readonly T[] {
    return this.#informer.list();
  }

  async start(): Promise<void> {
    this.#stopped = false;
    // Restart when nothing (event, reconnect) was seen for this long.
    const stallAfterMs = 15 * 60_000;
    this.#watchdog = setInterval(
      () => {
        if (this.quietForMs > stallAfterMs) this.#scheduleRestart(`no watch activity for ${Math.round(this.quietForMs / 1000)} s`, 0);
      },
      Math.min(stallAfterMs, 60_000),
    );
    this.#watchdog.unref();
    await this.#run();
  }

  /** Starts the ListWatch; it lists, then watches, and reports list errors through 'error'. */
  async #run(): Promise<void> {
    this.#errorsThisStart = 0;
    try {
      await this.#informer.start();
      if (this.#errorsThisStart === 0) {
        this.#synced = true;
        this.#lastError = undefined;
      }
    } catch (error) {
      this.#lastError = error;
      this.#scheduleRestart(`start failed: ${describeError(error)}`);
    }
  }

  async stop(): Promise<void> {
    this.#stopped = true;
    clearInterval(this.#watchdog);
    clearTimeout(this.#restartTimer);
    await this.#informer.stop();
  }

  #scheduleRestart(reason: string, delayMs?: number): void {
    if (this.#stopped || this.#restartTimer !== undefined) return;
    this.#failures++;
    const backoff = delayMs ?? Math.min(MAX_BACKOFF_MS, 500 * 2 ** (this.#failures - 1)) * (0.5 + Math.random() / 2);
    this.#options.logger.warn('informer restarting', { informer: this.name, reason, inMs: Math.round(backoff) });
    this.#options.onRestart?.(reason);
    this.#restartTimer = setTimeout(async () => {
      this.#restartTimer = undefined;
      if (this.#stopped) return;
      this.#lastSign = Date.now();
      await this.#informer.stop();
      await this.#run();
    }, backoff);
    this.#restartTimer.unref();
  }
}

export interface ClusterApis {
  readonly core: CoreV1Api;
  readonly apps: AppsV1Api;
  readonly batch: BatchV1Api;
  readonly custom: CustomObjectsApi;
}

/** Whether the API server serves a kind (a CRD's kind exists only where it is installed). */
export async function servesKind(apis: ClusterApis, kind: WorkloadKind): Promise<boolean> {
  const { apiVersion, plural } = KIND_INFO[kind];
  const [group, version] = apiVersion.split('/') as [string, string];
  try {
    const resources = await apis.custom.getAPIResources({ group, version });
    return resources.resources.some((r) => r.name === plural);
  } catch (error) {
    if ((error as { code?: number }).code === 404) return false;
    throw error;
  }
}

const LIST_PAGE_SIZE = 500;

interface Page<T> {
  items: T[];
  metadata?: { _continue?: string; resourceVersion?: string };
}

/**
 * The list function for a workload kind across all namespaces: pages of 500 (one snapshot, so the
 * final resourceVersion is consistent), each slimmed before the next is read, which bounds memory
 * on large clusters.
 */
export function listAll(apis: ClusterApis, kind: WorkloadKind): () => Promise<{ items: WorkloadObject[]; metadata: { resourceVersion?: string } }> {
  const page = (limit: number, _continue: string | undefined): Promise<Page<WorkloadObject>> => {
    const args = { limit, ...(_continue ? { _continue } : {}) };
    switch (kind) {
      case 'Deployment':
        return apis.apps.listDeploymentForAllNamespaces(args);
      case 'DaemonSet':
        return apis.apps.listDaemonSetForAllNamespaces(args);
      case 'StatefulSet':
        return apis.apps.listStatefulSetForAllNamespaces(args);
      case 'CronJob':
        return apis.batch.listCronJobForAllNamespaces(args);
      case 'Rollout':
        return apis.custom.listClusterCustomObject({ group: 'argoproj.io', version: 'v1alpha1', plural: 'rollouts', ...args }) as Promise<Page<WorkloadObject>>;
    }
  };
  return async () => {
    const items: WorkloadObject[] = [];
    let next: string | undefined;
    let resourceVersion: string | undefined;
    do {
      const result = await page(LIST_PAGE_SIZE, next);
      for (const item of result.items) items.push(slimWorkload(kind, item));
      next = result.metadata?._continue || undefined;
      resourceVersion = result.metadata?.resourceVersion;
    } while (next !== undefined);
    return { items, metadata: { ...(resourceVersion === undefined ? {} : { resourceVersion }) } };
  };
}

/** The watch path of a kind across all namespaces: `/apis/apps/v1/deployments`. */
export function watchPath(kind: WorkloadKind): string {
  const { apiVersion, plural } = KIND_INFO[kind];
  return `/apis/${apiVersion}/${plural}`;
}

export function listNamespaces(apis: ClusterApis): () => Promise<{ items: V1Namespace[] }> {
  return () => apis.core.listNamespace();
}
