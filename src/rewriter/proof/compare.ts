/**
 * The render comparison every proof uses: two renders of the same inputs but for the change, read as
 * Kubernetes reads them, must differ in container image fields only, and each expected container
 * must run what the cluster runs before and its backup after.
 *
 * Like with like: both sides are read with YAML 1.1 semantics, as the API server reads manifests
 * (`defaultMode: 0755` is 493, whether Helm wrote `0755` or kustomize re-serialised it as `493`),
 * and fields set to null are dropped (the API server and kustomize both drop them). What differs
 * between two renders of the *unchanged* inputs (a generated certificate, a random password and
 * the checksums of them) cannot be blamed on the change: `varyingBetween` finds it, and the
 * comparison leaves it out and names it.
 */
import { renderedObjects } from './documents.ts';
import { documentSpans } from '../edit/yaml-scalars.ts';
import { isDeepStrictEqual } from 'node:util';
import { runsBackup } from '../../image/backup.ts';
import { operatorResource } from '../../cluster/operator-images.ts';
import { composeHelmImage, HELM_IMAGE_PARTS } from '../edit/helm-values.ts';

type Json = Record<string, unknown>;

/**
 * What varies between two renders of the same inputs: objects only one of them has, and the fields
 * (as `Kind/namespace/name path.to[0].field`) whose values differ. Empty for a deterministic chart.
 */
export interface Varying {
  readonly objects: ReadonlySet<string>;
  readonly fields: ReadonlyMap<string, ReadonlyArray<readonly (string | number)[]>>;
}

export const NOTHING_VARIES: Varying = { objects: new Set(), fields: new Map() };

/** What differs between two renders of the same inputs (see Varying). */
export function varyingBetween(first: string, second: string): Varying {
  const a = byObject(first);
  const b = byObject(second);
  const objects = new Set([...a.keys(), ...b.keys()].filter((k) => !a.has(k) || !b.has(k)));
  const fields = new Map<string, Array<(string | number)[]>>();
  for (const [key, doc] of a) {
    const other = b.get(key);
    if (!other) continue;
    const paths = differingPaths(doc, other, []);
    if (paths.length > 0) fields.set(key, paths);
  }
  return { objects, fields };
}

/** For a reader: what varies, as `Secret/apps/web-tls data.tls.crt` lines (at most `max`, then how many more). */
export function describeVarying(varying: Varying, max = 10): string[] {
  const all = [
    ...[...varying.objects].map((k) => `${k.replace(/\/\//, '/')} (its name)`),
    ...[...varying.fields].flatMap(([k, paths]) => paths.map((p) => `${k.replace(/\/\//, '/')} ${formatPath(p)}`)),
  ].sort();
  return all.length > max ? [...all.slice(0, max), `and ${all.length - max} more`] : all;
}

export interface ExpectedImage {
  readonly kind: string;
  readonly name: string;
  readonly container: string;
  readonly init: boolean;
  /** What runs now, and the backup it must run after: `backup` with `digest`, or with the source's tag. */
  readonly source: string;
  readonly backup: string;
  readonly digest: string;
}

/**
 * Two renders of the same objects, each read once. Where both split into as many documents (a render
 * and its re-render after an image edit always do), a document whose text is the same on both sides
 * is the same object on both sides: only the differing ones are parsed, and an unchanged one is read
 * when a check asks for its workload. A 5 MB render that an edit changes in three places is then three
 * documents parsed, not two renders of 6,000.
 */
export class RenderPair {
  readonly before: Map<string, Json>;
  readonly after: Map<string, Json>;
  readonly #unchanged: string[];

  /** `names`: the workloads a check may ask for; an unchanged document that names none of them is dropped (all are kept without it). */
  constructor(was: string, now: string, names?: readonly string[]) {
    const a = documentSpans(was);
    const b = documentSpans(now);
    const text = (t: string, s: { start: number; end: number }) => t.slice(s.start, s.end);
    const aligned = a.length === b.length;
    const differs = (i: number) => !aligned || text(was, a[i]!) !== text(now, b[i]!);
    const changed = (t: string, spans: typeof a) => spans.filter((_, i) => differs(i)).map((sp) => text(t, sp));
    this.before = byObject(aligned ? changed(was, a).join('\n---\n') : was);
    this.after = byObject(aligned ? changed(now, b).join('\n---\n') : now);
    this.#unchanged = aligned
      ? a
          .filter((_, i) => !differs(i))
          .map((sp) => text(was, sp))
          .filter((d) => names === undefined || names.some((n) => d.includes(n)))
      : [];
  }

  /** The key of a workload of that kind and name, in whatever namespace; an unchanged one is read on demand. */
  workload(kind: string, name: string): string | undefined {
    const found = findWorkload(this.before, kind, name);
    if (found !== undefined || !this.#unchanged.some((d) => d.includes(name))) return found;
    for (const [key, object] of byObject(this.#unchanged.filter((d) => d.includes(name)).join('\n---\n'))) {
      if (this.before.has(key)) continue;
      this.before.set(key, object);
      this.after.set(key, object);
    }
    return findWorkload(this.before, kind, name);
  }
}

/**
 * Why the two renders do not prove the change, or undefined when they do. `varying` (what differs
 * between two renders of the unchanged inputs) is left out of the comparison.
 */
export function compareRenders(
  before: string | RenderPair,
  after: string,
  expected: readonly ExpectedImage[],
  varying: Varying = NOTHING_VARIES,
): string | undefined {
  const pair = typeof before === 'string' ? { before: byObject(before), after: byObject(after), workload: undefined } : before;
  const a = pair.before;
  const b = pair.after;
  // An object whose very name varies (a kind that has one) is matched by nothing; new names of that kind are its new draw.
  const drawn = new Set([...varying.objects].map((k) => k.split('/')[0]));
  const keys = (m: Map<string, Json>, other: Map<string, Json>) =>
    [...m.keys()]
      .filter((k) => !varying.objects.has(k) && !(drawn.has(k.split('/')[0]) && !other.has(k)))
      .sort()
      .join(', ');
  if (keys(a, b) !== keys(b, a)) return `the change alters which objects the chart renders (before: ${keys(a, b)}; after: ${keys(b, a)})`;
  for (const [key, doc] of a) {
    const other = b.get(key);
    if (!other) continue;
    const paths = varying.fields.get(key) ?? [];
    if (!isDeepStrictEqual(masked(withoutImages(doc), paths), masked(withoutImages(other), paths)))
      return `the change alters ${key} beyond its container images (${formatPath(differingPaths(masked(withoutImages(doc), paths), masked(withoutImages(other), paths), [])[0] ?? [])})`;
  }
  for (const want of expected) {
    const container = `${want.init ? 'init container' : 'container'} ${want.container}`;
    const label = `${want.kind}/${want.name} ${container}`;
    const doc = pair.workload ? pair.workload(want.kind, want.name) : findWorkload(a, want.kind, want.name);
    if (!doc) return `the chart renders no ${want.kind}/${want.name}`;
    const was = containerImages(a.get(doc)!).get(container);
    const now = containerImages(b.get(doc)!).get(container);
    // Already on its backup before this edit (a change pushed before a crash, on the branch this edit builds on): nothing to prove for it.
    if (was !== undefined && now !== undefined && was === now && runsBackup(was, want.backup, want.digest)) continue;
    if (was !== want.source)
      return `before the change, the chart renders ${label} with ${was ?? 'no image'}, not ${want.source} as the cluster runs it (are its values set elsewhere, e.g. valuesFrom?)`;
    if (now === undefined || !runsBackup(now, want.backup, want.digest))
      return `after the change, the chart renders ${label} with ${now ?? 'no image'}, not the backup ${want.backup}@${want.digest}`;
  }
  return undefined;
}

/** Every container whose image differs between two renders of the same objects. */
export function imageChanges(before: string | RenderPair, after = ''): Array<{ object: string; container: string; was: string; now: string }> {
  const a = typeof before === 'string' ? byObject(before) : before.before;
  const b = typeof before === 'string' ? byObject(after) : before.after;
  const changes: Array<{ object: string; container: string; was: string; now: string }> = [];
  for (const [key, doc] of a) {
    const other = b.get(key);
    if (!other) continue;
    const now = containerImages(other);
    for (const [container, was] of containerImages(doc)) {
      const after = now.get(container);
      if (after !== undefined && after !== was) changes.push({ object: key, container, was, now: after });
    }
  }
  return changes;
}

/** The key of a rendered workload of that kind and name, in whatever namespace. */
function findWorkload(objects: ReadonlyMap<string, Json>, kind: string, name: string): string | undefined {
  return [...objects.keys()].find((k) => k.startsWith(`${kind}/`) && k.endsWith(`/${name}`));
}

/**
 * The images of an object: each container's, wherever its pod specs sit (`container web` → image,
 * `init container …`, `ephemeral container …`), and a HelmRelease's values image mappings (`values redis`).
 */
function containerImages(doc: Json): Map<string, string> {
  const found = new Map<string, string>();
  const walk = (value: unknown, key: string) => {
    if (Array.isArray(value)) {
      for (const item of value) {
        if (CONTAINER_LISTS.has(key) && item && typeof item === 'object' && typeof (item as Json).image === 'string')
          found.set(`${CONTAINER_LABELS[key]} ${String((item as Json).name)}`, String((item as Json).image));
        walk(item, '');
      }
    } else if (value && typeof value === 'object') {
      for (const [k, v] of Object.entries(value)) walk(v, k);
    }
  };
  walk(doc, '');
  // An operator's image fields, as the containers it runs them in.
  for (const { container, path } of operatorResource(String(doc.apiVersion), String(doc.kind))?.fields ?? []) {
    const image = path.reduce<unknown>((node, key) => (node && typeof node === 'object' ? (node as Json)[key] : undefined), doc);
    if (typeof image === 'string') found.set(`container ${container}`, image);
  }
  // A HelmRelease's values image mappings are images too: one an overlay keeps must not move.
  if (doc.kind === 'HelmRelease') {
    const values = (doc.spec as Json | undefined)?.values;
    const mappings = (value: unknown, path: string) => {
      if (Array.isArray(value)) for (const [i, item] of value.entries()) mappings(item, `${path}[${i}]`);
      else if (value && typeof value === 'object') {
        const map = value as Json;
        const image = isHelmImageMap(map)
          ? composeHelmImage({
              ...Object.fromEntries(HELM_IMAGE_PARTS.filter((p) => map[p] !== undefined && map[p] !== null).map((p) => [p, String(map[p])])),
              repository: String(map.repository ?? map.image),
            })
          : undefined;
        if (image) found.set(`values ${path || '.'}`, image);
        for (const [k, v] of Object.entries(map)) mappings(v, path ? `${path}.${k}` : k);
      }
    };
    mappings(values, '');
  }
  return found;
}

/** The rendered objects by `Kind/namespace/name`, read as the API server reads them (YAML 1.1, nulls dropped). */
function byObject(text: string): Map<string, Json> {
  const map = new Map<string, Json>();
  for (const object of renderedObjects(text, '1.1')) {
    // What is not a Kubernetes object (a values file, a chart template) is not a rendered object.
    const value = withoutNulls(object) as Json | null;
    if (!value || typeof value !== 'object' || typeof value.kind !== 'string') continue;
    const metadata = (value.metadata ?? {}) as Json;
    map.set(`${String(value.kind)}/${String(metadata.namespace ?? '')}/${String(metadata.name)}`, value);
  }
  return map;
}

const CONTAINER_LABELS: Readonly<Record<string, string>> = {
  containers: 'container',
  initContainers: 'init container',
  ephemeralContainers: 'ephemeral container',
};
const CONTAINER_LISTS = new Set(Object.keys(CONTAINER_LABELS));

/**
 * A copy of an object with every image field blanked: each container's image and the pod's
 * imagePullSecrets, wherever pod specs sit in it, and in a HelmRelease's values each image
 * mapping's registry, repository, tag and digest.
 */
function withoutImages(value: unknown): unknown {
  const blanked = withoutOperatorImages(withoutContainerImages(value) as Json);
  if (blanked?.kind !== 'HelmRelease') return blanked;
  const spec = (blanked.spec ?? {}) as Json;
  return { ...blanked, spec: { ...spec, values: withoutHelmImages(spec.values) } };
}

function withoutHelmImages(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(withoutHelmImages);
  if (!value || typeof value !== 'object') return value;
  const map = value as Json;
  const image = isHelmImageMap(map);
  const parts: readonly string[] = typeof map.repository === 'string' ? HELM_IMAGE_PARTS : [...HELM_IMAGE_PARTS, 'image'];
  return Object.fromEntries(Object.entries(map).map(([k, v]) => [k, image && parts.includes(k) ? '' : withoutHelmImages(v)]));
}

/** A rendered values mapping that spells an image out, as the planner's helmImageMapsIn finds one in YAML (ingress-nginx's `registry` + `image` too). */
function isHelmImageMap(map: Json): boolean {
  return (typeof map.repository === 'string' || (typeof map.image === 'string' && typeof map.registry === 'string')) && 'tag' in map;
}

/** An operator's resource with its documented image fields blanked (cluster/operator-images.ts). */
function withoutOperatorImages(object: Json): Json {
  const operator = operatorResource(String(object?.apiVersion), String(object?.kind));
  if (!operator) return object;
  const blank = (node: unknown, path: readonly string[]): unknown => {
    if (!node || typeof node !== 'object' || Array.isArray(node)) return node;
    const [key, ...rest] = path;
    if (!(key! in (node as Json))) return node;
    return { ...(node as Json), [key!]: rest.length === 0 ? '' : blank((node as Json)[key!], rest) };
  };
  return operator.fields.reduce<Json>((o, f) => blank(o, f.path) as Json, object);
}

function withoutContainerImages(value: unknown, key = ''): unknown {
  if (Array.isArray(value))
    return value.map((item) =>
      CONTAINER_LISTS.has(key) && item && typeof item === 'object' ? { ...(withoutContainerImages(item) as Json), image: '' } : withoutContainerImages(item),
    );
  // The pull Secrets a change may add with the images (--backup-pull secret:NAME) count as image fields.
  if (value && typeof value === 'object')
    return Object.fromEntries(
      Object.entries(value)
        .filter(([k]) => k !== 'imagePullSecrets')
        .map(([k, v]) => [k, withoutContainerImages(v, k)]),
    );
  return value;
}

function withoutNulls(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(withoutNulls);
  if (value && typeof value === 'object')
    return Object.fromEntries(
      Object.entries(value)
        .filter(([, v]) => v !== null && v !== undefined)
        .map(([k, v]) => [k, withoutNulls(v)]),
    );
  return value;
}

/** The paths (keys and indexes) at which two values differ, at the deepest level both still share. */
function differingPaths(a: unknown, b: unknown, path: (string | number)[]): Array<(string | number)[]> {
  if (isDeepStrictEqual(a, b)) return [];
  if (Array.isArray(a) && Array.isArray(b) && a.length === b.length) return a.flatMap((item, i) => differingPaths(item, b[i], [...path, i]));
  if (a && b && typeof a === 'object' && typeof b === 'object' && !Array.isArray(a) && !Array.isArray(b)) {
    const keys = new Set([...Object.keys(a), ...Object.keys(b)]);
    return [...keys].flatMap((k) => differingPaths((a as Json)[k], (b as Json)[k], [...path, k]));
  }
  return [path];
}

/** A copy with the value at each path (where it exists) replaced by one placeholder. */
function masked(value: unknown, paths: ReadonlyArray<readonly (string | number)[]>): unknown {
  if (paths.length === 0) return value;
  if (paths.some((p) => p.length === 0)) return '<varies on every render>';
  if (Array.isArray(value))
    return value.map((item, i) =>
      masked(
        item,
        paths.filter((p) => p[0] === i).map((p) => p.slice(1)),
      ),
    );
  if (value && typeof value === 'object')
    return Object.fromEntries(
      Object.entries(value).map(([k, v]) => [
        k,
        masked(
          v,
          paths.filter((p) => p[0] === k).map((p) => p.slice(1)),
        ),
      ]),
    );
  return value;
}

function formatPath(path: readonly (string | number)[]): string {
  return path.map((p, i) => (typeof p === 'number' ? `[${p}]` : `${i > 0 ? '.' : ''}${p}`)).join('') || '(the whole object)';
}
