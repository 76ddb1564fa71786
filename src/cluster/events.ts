/**
 * Kubernetes Events on a workload ("BackedUp", "BackupFailed"), so `kubectl describe` shows what
 * the controller did. The same reason for the same workload is recorded at most once per interval,
 * so a failing registry does not flood the API server.
 */
import type { CoreV1Api } from '@kubernetes/client-node';
import { describeError } from '../errors.ts';
import type { Logger } from '../observability/log.ts';
import { KIND_INFO, workloadKey, type WorkloadRef } from './workloads.ts';

export class EventRecorder {
  readonly #api: CoreV1Api;
  readonly #component: string;
  readonly #logger: Logger;
  readonly #intervalMs: number;
  readonly #recent = new Map<string, number>();

  constructor(api: CoreV1Api, component: string, logger: Logger, intervalMs = 10 * 60_000) {
    this.#api = api;
    this.#component = component;
    this.#logger = logger;
    this.#intervalMs = intervalMs;
  }

  async record(ref: WorkloadRef, type: 'Normal' | 'Warning', reason: string, message: string): Promise<void> {
    const key = `${workloadKey(ref)}|${reason}|${message}`;
    const last = this.#recent.get(key);
    if (last !== undefined && Date.now() - last < this.#intervalMs) return;
    this.#recent.set(key, Date.now());
    if (this.#recent.size > 10_000) this.#recent.delete(this.#recent.keys().next().value!);
    const now = new Date();
    try {
      await this.#api.createNamespacedEvent({
        namespace: ref.namespace,
        body: {
          metadata: { generateName: `${ref.name}.`, namespace: ref.namespace },
          involvedObject: { apiVersion: KIND_INFO[ref.kind].apiVersion, kind: ref.kind, namespace: ref.namespace, name: ref.name, uid: ref.uid },
          type,
          reason,
          message: message.slice(0, 1000),
          source: { component: this.#component },
          reportingComponent: this.#component,
          firstTimestamp: now,
          lastTimestamp: now,
          count: 1,
        },
      });
    } catch (error) {
      // An Event is a courtesy; failing to record one must not fail the backup.
      this.#logger.warn('could not record an Event', { workload: workloadKey(ref), reason, error: describeError(error) });
    }
  }
}
