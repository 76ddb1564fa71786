/**
 * The copier's metrics, served on /metrics, declared in one place: the counters and the histogram it
 * updates as it works, and the gauges read from its state at each scrape.
 */
import { Counter, Gauge, Histogram, MetricsRegistry } from '../observability/metrics.ts';

/** The copier's state the gauges read. */
export interface CopierState {
  readonly queueDepth: () => number;
  readonly inFlight: () => number;
  readonly leading: () => boolean;
  readonly eventsDropped: () => number;
  readonly failing: () => number;
  readonly notPullable: () => number;
  readonly notVerified: () => number;
}

export class CopierMetrics {
  readonly registry = new MetricsRegistry();

  #counter(name: string, help: string): Counter {
    return this.registry.register(new Counter(name, help));
  }

  readonly copies = this.#counter('image_clone_copies_total', 'Images checked or copied, by outcome (copied, present, unchanged, failed, refused, skipped).');
  readonly bytes = this.#counter('image_clone_copied_bytes_total', 'Blob bytes transferred to the backup registry.');
  readonly blobs = this.#counter('image_clone_blobs_total', 'Blobs placed in the backup registry, by how (transferred, mounted, present).');
  readonly durations = this.registry.register(
    new Histogram('image_clone_copy_duration_seconds', 'Time to back up one image, including checks.', [0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300]),
  );
  readonly records = this.#counter('image_clone_handoff_records_total', 'Handoff records written for the rewriter.');
  readonly recordsControlled = this.#counter(
    'image_clone_records_controlled_total',
    'Records of workloads another controller owns and sets the images of, outside the resources this moves in Git (not proposed, never direct-patched).',
  );
  readonly ownersNotVerified = this.#counter(
    'image_clone_owners_not_verified_total',
    'Records whose workload claims a GitOps owner that does not list it (not proposed, never direct-patched).',
  );
  readonly refused = this.#counter(
    'image_clone_copies_refused_total',
    'Images not copied because a bound refused them, by reason (image-too-large, namespace-images, namespace-bytes).',
  );
  readonly restarts = this.#counter('image_clone_informer_restarts_total', 'Informer restarts after a watch error or stall.');
  readonly signatures = this.#counter(
    'image_clone_signature_verifications_total',
    'Backups whose signature --verify-signature asks for was checked at the backup, by result (verified, not-verified).',
  );
  readonly deferred = this.#counter(
    'image_clone_copies_deferred_total',
    "Images not copied yet because their registry's pull quota was spent (tried again when it allows), by registry.",
  );
  readonly pullsRemaining = this.registry.register(
    new Gauge(
      'image_clone_registry_pulls_remaining',
      'Manifest GETs (what registries count as pulls) left in the current window, per registry that says (ratelimit-remaining) or has --registry-rate.',
    ),
  );
  readonly retries = this.#counter('image_clone_registry_retries_total', 'Registry requests retried after a 5xx, 429 or dropped connection.');

  /** The gauges, read from `state` at each scrape. */
  observe(state: CopierState): void {
    this.registry.register(new Gauge('image_clone_queue_depth', 'Workloads waiting or being processed.')).set(state.queueDepth);
    this.registry.register(new Gauge('image_clone_copies_in_flight', 'Images being copied now.')).set(state.inFlight);
    this.registry.register(new Gauge('image_clone_leader', '1 while this replica leads.')).set(() => (state.leading() ? 1 : 0));
    this.registry.register(new Gauge('image_clone_events_dropped', 'Events not recorded because too many were queued.')).set(state.eventsDropped);
    this.registry.register(new Gauge('image_clone_workloads_failing', 'Workloads whose last backup attempt failed.')).set(state.failing);
    this.registry
      .register(
        new Gauge(
          'image_clone_workloads_not_pullable',
          'Workloads backed up but not handed off, because their nodes could not pull the backup (see --backup-pull).',
        ),
      )
      .set(state.notPullable);
    this.registry
      .register(
        new Gauge(
          'image_clone_workloads_not_verified',
          'Workloads backed up but not handed off, because a signature --verify-signature asks for does not verify at the backup.',
        ),
      )
      .set(state.notVerified);
  }
}
