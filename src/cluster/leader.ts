/**
 * Leader election on a coordination.k8s.io/v1 Lease, with client-go's loop: a lease lasts 15 s,
 * the leader renews every 2 s and gives up leadership if it could not renew within 10 s. Updates
 * are optimistic (resourceVersion; a 409 means another replica won). Whether someone else's lease
 * has expired is judged by when *we* last saw the record change, not by its renewTime, so clock
 * skew between nodes cannot steal leadership.
 */
import { ApiException, V1MicroTime, type CoordinationV1Api, type V1Lease } from '@kubernetes/client-node';
import { describeError } from '../errors.ts';
import type { Logger } from '../observability/log.ts';

export interface LeaderElectionOptions {
  readonly api: CoordinationV1Api;
  readonly namespace: string;
  readonly name: string;
  readonly identity: string;
  readonly logger: Logger;
  readonly leaseDurationMs?: number;
  readonly renewDeadlineMs?: number;
  readonly retryPeriodMs?: number;
  readonly onStartedLeading: () => void;
  readonly onStoppedLeading: () => void;
}

export class LeaderElector {
  readonly #o: Required<Omit<LeaderElectionOptions, 'logger' | 'api' | 'onStartedLeading' | 'onStoppedLeading'>> & LeaderElectionOptions;
  #leading = false;
  #stopped = false;
  #timer: NodeJS.Timeout | undefined;
  #observed: { holder: string | undefined; resourceVersion: string | undefined; at: number } = { holder: undefined, resourceVersion: undefined, at: 0 };
  #lastRenew = 0;

  constructor(options: LeaderElectionOptions) {
    this.#o = { leaseDurationMs: 15_000, renewDeadlineMs: 10_000, retryPeriodMs: 2_000, ...options };
  }

  get leading(): boolean {
    return this.#leading;
  }

  start(): void {
    this.#stopped = false;
    void this.#tick();
  }

  /** Stops, and releases the lease if held so a standby takes over at once. */
  async stop(): Promise<void> {
    this.#stopped = true;
    clearTimeout(this.#timer);
    if (this.#leading) {
      try {
        const lease = await this.#o.api.readNamespacedLease({ name: this.#o.name, namespace: this.#o.namespace });
        if (lease.spec?.holderIdentity === this.#o.identity) {
          lease.spec.holderIdentity = undefined;
          lease.spec.leaseDurationSeconds = 1;
          await this.#o.api.replaceNamespacedLease({ name: this.#o.name, namespace: this.#o.namespace, body: lease });
        }
      } catch (error) {
        this.#o.logger.warn('could not release the leader lease', { error: describeError(error) });
      }
      this.#setLeading(false);
    }
  }

  async #tick(): Promise<void> {
    if (this.#stopped) return;
    try {
      const acquired = await this.#tryAcquireOrRenew();
      if (acquired) this.#lastRenew = Date.now();
      this.#setLeading(acquired || (this.#leading && Date.now() - this.#lastRenew < this.#o.renewDeadlineMs));
    } catch (error) {
      this.#o.logger.warn('leader election request failed', { error: describeError(error) });
      if (this.#leading && Date.now() - this.#lastRenew >= this.#o.renewDeadlineMs) this.#setLeading(false);
    }
    if (!this.#stopped) {
      this.#timer = setTimeout(() => void this.#tick(), this.#o.retryPeriodMs);
      this.#timer.unref();
    }
  }

  async #tryAcquireOrRenew(): Promise<boolean> {
    const { api, namespace, name, identity } = this.#o;
    const now = new V1MicroTime();
    let lease: V1Lease;
    try {
      lease = await api.readNamespacedLease({ name, namespace });
    } catch (error) {
      if (!(error instanceof ApiException) || error.code !== 404) throw error;
      try {
        await api.createNamespacedLease({
          namespace,
          body: {
            metadata: { name, namespace },
            spec: { holderIdentity: identity, leaseDurationSeconds: this.#o.leaseDurationMs / 1000, acquireTime: now, renewTime: now, leaseTransitions: 0 },
          },
        });
        return true;
      } catch (createError) {
        if (createError instanceof ApiException && createError.code === 409) return false;
        throw createError;
      }
    }
    const holder = lease.spec?.holderIdentity ?? undefined;
    if (lease.metadata?.resourceVersion !== this.#observed.resourceVersion) {
      this.#observed = { holder, resourceVersion: lease.metadata?.resourceVersion, at: Date.now() };
    }
    const durationMs = (lease.spec?.leaseDurationSeconds ?? this.#o.leaseDurationMs / 1000) * 1000;
    const heldByOther = holder !== undefined && holder !== '' && holder !== identity;
    if (heldByOther && Date.now() - this.#observed.at < durationMs) return false;

    const spec = lease.spec ?? {};
    lease.spec = {
      ...spec,
      holderIdentity: identity,
      leaseDurationSeconds: this.#o.leaseDurationMs / 1000,
      renewTime: now,
      ...(holder === identity ? {} : { acquireTime: now, leaseTransitions: (spec.leaseTransitions ?? 0) + 1 }),
    };
    try {
      const updated = await api.replaceNamespacedLease({ name, namespace, body: lease });
      this.#observed = { holder: identity, resourceVersion: updated.metadata?.resourceVersion, at: Date.now() };
      return true;
    } catch (error) {
      if (error instanceof ApiException && error.code === 409) return false;
      throw error;
    }
  }

  #setLeading(leading: boolean): void {
    if (leading === this.#leading) return;
    this.#leading = leading;
    this.#o.logger.info(leading ? 'became leader' : 'lost leadership', { lease: `${this.#o.namespace}/${this.#o.name}`, identity: this.#o.identity });
    if (leading) this.#o.onStartedLeading();
    else this.#o.onStoppedLeading();
  }
}
