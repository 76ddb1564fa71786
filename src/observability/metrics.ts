/**
 * A small Prometheus registry: counters, gauges and histograms with labels, rendered in the text
 * exposition format (version 0.0.4) that every Prometheus scrapes.
 */
type Labels = Readonly<Record<string, string>>;

interface Metric {
  readonly name: string;
  render(): string;
}

const escapeLabel = (v: string) => v.replace(/\\/g, '\\\\').replace(/\n/g, '\\n').replace(/"/g, '\\"');
const labelKey = (labels: Labels) =>
  Object.keys(labels)
    .sort()
    .map((k) => `${k}="${escapeLabel(labels[k]!)}"`)
    .join(',');
const series = (name: string, key: string) => (key === '' ? name : `${name}{${key}}`);

export class Counter implements Metric {
  readonly name: string;
  readonly #help: string;
  readonly #values = new Map<string, number>();
  constructor(name: string, help: string) {
    this.name = name;
    this.#help = help;
  }
  inc(labels: Labels = {}, by = 1): void {
    const key = labelKey(labels);
    this.#values.set(key, (this.#values.get(key) ?? 0) + by);
  }
  get(labels: Labels = {}): number {
    return this.#values.get(labelKey(labels)) ?? 0;
  }
  render(): string {
    const lines = [`# HELP ${this.name} ${this.#help}`, `# TYPE ${this.name} counter`];
    for (const [key, value] of this.#values) lines.push(`${series(this.name, key)} ${value}`);
    return lines.join('\n');
  }
}

export class Gauge implements Metric {
  readonly name: string;
  readonly #help: string;
  readonly #values = new Map<string, number | (() => number)>();
  constructor(name: string, help: string) {
    this.name = name;
    this.#help = help;
  }
  set(value: number | (() => number), labels: Labels = {}): void {
    this.#values.set(labelKey(labels), value);
  }
  get(labels: Labels = {}): number {
    const v = this.#values.get(labelKey(labels));
    return typeof v === 'function' ? v() : (v ?? 0);
  }
  render(): string {
    const lines = [`# HELP ${this.name} ${this.#help}`, `# TYPE ${this.name} gauge`];
    for (const [key, value] of this.#values) lines.push(`${series(this.name, key)} ${typeof value === 'function' ? value() : value}`);
    return lines.join('\n');
  }
}

export class Histogram implements Metric {
  readonly name: string;
  readonly #help: string;
  readonly #buckets: readonly number[];
  readonly #series = new Map<string, { counts: number[]; sum: number; count: number }>();
  constructor(name: string, help: string, buckets: readonly number[]) {
    this.name = name;
    this.#help = help;
    this.#buckets = [...buckets].sort((a, b) => a - b);
  }
  observe(value: number, labels: Labels = {}): void {
    const key = labelKey(labels);
    let s = this.#series.get(key);
    if (!s) {
      s = { counts: this.#buckets.map(() => 0), sum: 0, count: 0 };
      this.#series.set(key, s);
    }
    this.#buckets.forEach((bound, i) => {
      if (value <= bound) s.counts[i]!++;
    });
    s.sum += value;
    s.count++;
  }
  render(): string {
    const lines = [`# HELP ${this.name} ${this.#help}`, `# TYPE ${this.name} histogram`];
    for (const [key, s] of this.#series) {
      const prefix = key === '' ? '' : `${key},`;
      for (const [i, bound] of this.#buckets.entries()) lines.push(`${this.name}_bucket{${prefix}le="${bound}"} ${s.counts[i]}`);
      lines.push(
        `${this.name}_bucket{${prefix}le="+Inf"} ${s.count}`,
        `${series(`${this.name}_sum`, key)} ${s.sum}`,
        `${series(`${this.name}_count`, key)} ${s.count}`,
      );
    }
    return lines.join('\n');
  }
}

export class MetricsRegistry {
  readonly #metrics: Metric[] = [];
  register<M extends Metric>(metric: M): M {
    if (this.#metrics.some((m) => m.name === metric.name)) throw new Error(`metric ${metric.name} registered twice`);
    this.#metrics.push(metric);
    return metric;
  }
  render(): string {
    return `${this.#metrics.map((m) => m.render()).join('\n')}\n`;
  }
}
