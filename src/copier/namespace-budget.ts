/**
 * What one namespace's workloads may have copied within a re-check interval: a number of images
 * and of bytes. Every tenant shares one copier, one backup registry and its quota; without a share,
 * one namespace that runs a thousand large images holds everyone else's backups behind its own.
 * An image counts when its copy starts (so copies running at once cannot all pass the check) and is
 * given back when nothing was copied; bytes count as they are transferred. Only copies count:
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

export type Admission = { readonly ok: true; readonly bytesLeft: number } | { readonly ok: false; readonly why: string };

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
      return { ok: false, why: `this namespace has copied ${window.images} images in this ${minutes}-minute interval, its share (--namespace-max-images)` };
    if (window.bytes >= this.#limits.bytes)
      return {
        ok: false,
        why: `this namespace has copied ${formatBytes(window.bytes)} in this ${minutes}-minute interval, its share (--namespace-max-bytes ${formatBytes(this.#limits.bytes)})`,
      };
    window.images++;
    return { ok: true, bytesLeft: this.#limits.bytes - window.bytes };
  }

  /** After an admitted copy: the bytes it transferred, or (nothing copied) the image given back. */
  settle(namespace: string, copied: boolean, bytes: number): void {
    const window = this.#window(namespace);
    if (!copied) window.images = Math.max(0, window.images - 1);
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
