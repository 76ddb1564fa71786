/**
 * What one namespace's workloads may have copied within a re-check interval: a number of images
 * and of bytes. Every tenant shares one copier, one backup registry and its quota; without a share,
 * one namespace that runs a thousand large images holds everyone else's backups behind its own.
 * An image counts when its copy starts (so copies running at once cannot all pass the check), and is
 * given back only when the backup was already there; bytes count when the copy ends. Only copies count:
 * an image already backed up costs a HEAD and no share.
 */
import { formatBytes } from '../util/size.ts';

export interface NamespaceLimits {
  /** Images copied per namespace per interval. */
  readonly images: number;
  /** Bytes transferred per namespace per interval. */
  readonly bytes: number;
}

export const DEFAULT_NAMESPACE_LIMITS: NamespaceLimits = { images: 200, bytes: 100 * 1024 ** 3 };

interface Window {
  readonly since: number;
  images: number;
  bytes: number;
}

/** Admitted: the bytes left at admission, and the interval it counts in (settled there, not in a later one). */
export type Admission =
  | { readonly ok: true; readonly bytesLeft: number; readonly namespace: string; readonly window: object }
  | { readonly ok: false; readonly reason: 'namespace-images' | 'namespace-bytes'; readonly why: string };

export class NamespaceBudget {
  readonly #limits: NamespaceLimits;
  readonly #intervalMs: number;
  readonly #now: () => number;
  readonly #windows = new Map<string, Window>();

  constructor(limits: NamespaceLimits, intervalMs: number, now: () => number = Date.now) {
    this.#limits = limits;
    this.#intervalMs = intervalMs;
    this.#now = now;
  }

  /** Whether `namespace` may start another copy now; when it may, the image is counted. */
  admit(namespace: string): Admission {
    const window = this.#window(namespace);
    const minutes = Math.round(this.#intervalMs / 60_000);
    if (window.images >= this.#limits.images)
      return {
        ok: false,
        reason: 'namespace-images',
        why: `this namespace has copied ${window.images} images in this ${minutes}-minute interval, its share (--namespace-max-images)`,
      };
    if (window.bytes >= this.#limits.bytes)
      return {
        ok: false,
        reason: 'namespace-bytes',
        why: `this namespace has copied ${formatBytes(window.bytes)} in this ${minutes}-minute interval, its share (--namespace-max-bytes ${formatBytes(this.#limits.bytes)})`,
      };
    window.images++;
    return { ok: true, bytesLeft: this.#limits.bytes - window.bytes, namespace, window };
  }

  /**
   * After an admitted copy: the bytes it transferred; `counts` false (the backup was there, nothing
   * moved) gives the image back. In the interval it was admitted in only: a later one never counted it.
   */
  settle(admission: Admission, counts: boolean, bytes: number): void {
    if (!admission.ok || this.#windows.get(admission.namespace) !== admission.window) return;
    const window = admission.window as Window;
    if (!counts) window.images = Math.max(0, window.images - 1);
    window.bytes += bytes;
  }

  #window(namespace: string): Window {
    const now = this.#now();
    let window = this.#windows.get(namespace);
    if (window === undefined || now - window.since >= this.#intervalMs) {
      window = { since: now, images: 0, bytes: 0 };
      this.#windows.set(namespace, window);
    }
    return window;
  }
}
