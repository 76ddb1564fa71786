/**
 * Which values compose a container's image, found by rendering the chart instead of guessing from
 * a list of conventions: every value that could take part (a string that appears in the image, or
 * an empty or unset registry/repository/image/name/tag/digest key) is set, one at a time, to a
 * marker; the render shows where in the image the marker lands, so each value's place is known:
 * the image reads `A + value + B`. The override that makes the image the backup is then the value
 * whose A and B frame the backup's name (the chart's own `repository` when it has one, a registry
 * prefix otherwise), plus, where the chart takes one, the digest (a digest value, else the tag
 * value as `tag@digest`), each candidate checked by one more render. The conventions the planners
 * know (`repository`/`tag`, Bitnami's, ingress-nginx's) stay their fast path; this is the general
 * one, for `"v" + appVersion` tags, `global.image.registry` merges, cert-manager's
 * `imageRegistry`/`imageNamespace`/`name`, and whatever a chart does next.
 *
 * A value that moves containers beyond the record's (a `global.imageRegistry` every workload of the
 * chart reads, hook Jobs included) is chosen only where nothing more specific frames the name (a
 * `registry` or `repository` the record's own image mapping leaves out is tried too); the render
 * proof that follows refuses the edit if any container moves that the record did not ask for.
 */
import { renderedObjects } from './documents.ts';
import { runsBackup } from '../../image/backup.ts';

type Json = Record<string, unknown>;

export interface WantedImage {
  readonly container: string;
  readonly init: boolean;
  /** What the workload runs now, as the chart renders it. */
  readonly source: string;
  /** The backup reference (with the source's tag) and its digest. */
  readonly backup: string;
  readonly digest: string;
}

export interface ValueOverride {
  readonly path: readonly string[];
  readonly value: string | boolean;
}

export interface DerivedImageValues {
  /** By source image: the overrides that move it to its backup (the substitution guard apart). */
  readonly overrides: ReadonlyMap<string, readonly ValueOverride[]>;
  /** For a reader: how each was found (`cert-manager image.repository: found by rendering`). */
  readonly notes: readonly string[];
}

/** Renders the chart with these values (as the tool would, release name and namespace fixed). */
export type RenderWithValues = (values: unknown) => Promise<string>;

/** At most this many values are tried: an image map has a handful; a chart that offers more candidates is refused, not searched for minutes. */
export const MAX_PROBES = 48;
/**
 * All the renders of one derivation: each render has 120 s, and 48 probes and their tries at that
 * pace would hold the rewriter's pass (every tenant's) for well over an hour.
 */
export const PROBING_BUDGET_MS = 5 * 60_000;
/** Bitnami's documented substitution guard: a chart that has it refuses to render images other than its own unless it is true. */
export const SUBSTITUTION_GUARD: readonly string[] = ['global', 'security', 'allowInsecureImages'];
const IMAGE_KEY = /(registry|repository|image|name|tag|digest)$/i;

/**
 * The overrides that move each wanted container of `workload` to its backup, found by rendering;
 * or the reason they cannot be found.
 */
export async function deriveImageValues(
  render: RenderWithValues,
  values: unknown,
  workload: { readonly kind: string; readonly name: string },
  wants: readonly WantedImage[],
  budgetMs = PROBING_BUDGET_MS,
): Promise<DerivedImageValues | string> {
  const started = Date.now();
  let renders = 0;
  const overBudget = () =>
    Date.now() - started > budgetMs
      ? `finding the chart's image values took more than ${Math.round(budgetMs / 1000)} s (${renders} renders); not derived`
      : undefined;
  // Probed with the guard off, as the edit will set it.
  const guard = valueAt(values, SUBSTITUTION_GUARD) !== undefined ? [{ path: SUBSTITUTION_GUARD, value: true }] : [];
  const withOverrides = (overrides: readonly ValueOverride[]) => overrides.reduce((v, o) => setPath(v, o.path, o.value), values);
  const imagesOf = async (overrides: readonly ValueOverride[]) => {
    renders++;
    return containerImages(await render(withOverrides([...guard, ...overrides])));
  };
  let base: Map<string, string>;
  try {
    base = await imagesOf([]);
  } catch (error) {
    return `the chart does not render with the values it is given: ${(error as Error).message}`;
  }
  const label = (w: WantedImage) => `${workload.kind}/${workload.name} ${w.init ? 'init container' : 'container'} ${w.container}`;
  for (const w of wants) {
    const now = base.get(label(w));
    if (now !== w.source) return `with the values it is given, the chart renders ${label(w)} with ${now ?? 'no image'}, not ${w.source} as the cluster runs it`;
  }

  const candidates = [...leaves(values), ...absentImageKeys(values)].filter(
    (l) => (l.value.length >= 2 && wants.some((w) => w.source.includes(l.value))) || (l.value === '' && IMAGE_KEY.test(String(l.path.at(-1)))),
  );
  if (candidates.length > MAX_PROBES)
    return `${candidates.length} values of the chart could compose the image; more than the ${MAX_PROBES} the rewriter tries by rendering`;
  // Where each value lands in each wanted image: `A + value + B`, and whether it moves other containers too.
  const probes: Array<{ path: readonly string[]; original: string; frames: Map<string, { before: string; after: string }>; shared: boolean }> = [];
  for (const [i, leaf] of candidates.entries()) {
    const over = overBudget();
    if (over) return over;
    const marker = `imgprobe${i}x`;
    let images: Map<string, string>;
    try {
      images = await imagesOf([{ path: leaf.path, value: marker }]);
    } catch {
      continue; // the chart refuses the marker there (a validated value): not an image part
    }
    const frames = new Map<string, { before: string; after: string }>();
    for (const w of wants) {
      const image = images.get(label(w)) ?? '';
      const at = image.indexOf(marker);
      if (at >= 0 && image.indexOf(marker, at + 1) < 0) frames.set(w.source, { before: image.slice(0, at), after: image.slice(at + marker.length) });
    }
    if (frames.size === 0) continue;
    const wanted = new Set(wants.map(label));
    const shared = [...images].some(([key, image]) => !wanted.has(key) && base.get(key) !== image);
    probes.push({ path: leaf.path, original: leaf.value, frames, shared });
  }

  const overrides = new Map<string, ValueOverride[]>();
  const notes: string[] = [];
  for (const w of wants) {
    const { name: sourceName, rest } = splitName(w.source);
    const target = `${splitName(w.backup).name}${rest}`;
    // The value whose frame holds the backup's name: specific values before shared ones, a value that is the
    // whole name (a component's own `repository`) before a part of it (a registry), set values before empty ones.
    const whole = (p: (typeof probes)[number]) => p.frames.get(w.source)!.before === '' && p.frames.get(w.source)!.after === rest;
    const naming = probes
      .filter((p) => {
        const f = p.frames.get(w.source);
        return (
          f &&
          target.startsWith(f.before) &&
          target.endsWith(f.after) &&
          f.before.length + f.after.length <= target.length &&
          f.before.length < sourceName.length
        );
      })
      .sort((a, b) => Number(a.shared) - Number(b.shared) || Number(whole(b)) - Number(whole(a)) || Number(a.original === '') - Number(b.original === ''));
    const pinned = rest.includes('@');
    let found: ValueOverride[] | undefined;
    for (const p of naming) {
      const f = p.frames.get(w.source)!;
      const name: ValueOverride = { path: p.path, value: target.slice(f.before.length, target.length - f.after.length) };
      // Pinned by a digest value, else by the tag value as `tag@digest`, else by the backup's tag (copied from the same digest).
      const digestValue = probes.find((d) => d !== p && d.frames.get(w.source)?.after === '' && d.frames.get(w.source)!.before.endsWith('@'));
      // The tag value (set, or empty where the chart defaults it, e.g. to "v" + appVersion) given as `tag@digest`.
      const tagValue = probes.find((t) => t !== p && t.frames.get(w.source)?.after === '' && t.frames.get(w.source)!.before.endsWith(':'));
      const tag = rest.startsWith(':') ? rest.slice(1) : undefined;
      const tries: ValueOverride[][] = [
        ...(pinned ? [] : digestValue ? [[name, { path: digestValue.path, value: w.digest }]] : []),
        ...(pinned || !tag || !tagValue ? [] : [[name, { path: tagValue.path, value: `${tag}@${w.digest}` }]]),
        [name],
      ];
      for (const attempt of tries) {
        const over = overBudget();
        if (over) return over;
        const image = await imagesOf(attempt).then(
          (images) => images.get(label(w)),
          () => undefined,
        );
        if (image !== undefined && runsBackup(image, w.backup, w.digest)) {
          found = attempt;
          break;
        }
      }
      if (found) break;
    }
    if (!found)
      return probes.some((p) => p.frames.has(w.source))
        ? `no value of the chart composes the name of ${w.source} so that it can become ${w.backup} (the values that reach it, found by rendering: ${probes
            .filter((p) => p.frames.has(w.source))
            .map((p) => p.path.join('.'))
            .join(', ')})`
        : `no value of the chart reaches ${w.source}: its template writes the image itself (every candidate value was tried by rendering)`;
    // The guard itself is the planner's to set (argo-application.ts), whichever way the value was found.
    overrides.set(w.source, found);
    notes.push(`${label(w)}: ${found.map((o) => o.path.join('.')).join(' and ')} found by rendering the chart`);
  }
  return { overrides, notes };
}

/** `registry.k8s.io/x/y:v1@sha256:…` → name `registry.k8s.io/x/y`, rest `:v1@sha256:…`. */
function splitName(image: string): { name: string; rest: string } {
  const at = image.indexOf('@');
  const beforeDigest = at < 0 ? image : image.slice(0, at);
  const colon = beforeDigest.lastIndexOf(':');
  const end = colon > beforeDigest.lastIndexOf('/') ? colon : beforeDigest.length;
  return { name: image.slice(0, end), rest: image.slice(end) };
}

/**
 * The `registry` and `repository` a mapping of image parts leaves out (ingress-nginx's `controller.image`
 * has `image`, `tag`, `digest` and takes its registry from `global.image`): charts that merge such a
 * mapping over a shared one read them when set, so they are candidates too, empty.
 */
function absentImageKeys(values: unknown, path: string[] = []): Array<{ path: readonly string[]; value: string }> {
  if (!values || typeof values !== 'object' || Array.isArray(values)) return [];
  const map = values as Json;
  const parts = Object.keys(map).filter((k) => /^(image|repository|tag|digest|registry|name)$/.test(k) && (map[k] === null || typeof map[k] !== 'object'));
  const own = parts.length >= 2 ? ['registry', 'repository'].filter((k) => !(k in map)).map((k) => ({ path: [...path, k], value: '' })) : [];
  return [...own, ...Object.entries(map).flatMap(([k, v]) => absentImageKeys(v, [...path, k]))];
}

/** Every scalar leaf of the values (numbers as text: `tag: 7.2`), with its path; null leaves as empty. */
function leaves(values: unknown, path: string[] = []): Array<{ path: readonly string[]; value: string }> {
  if (values === null) return [{ path, value: '' }];
  if (typeof values === 'string' || typeof values === 'number') return [{ path, value: String(values) }];
  if (!values || typeof values !== 'object' || Array.isArray(values)) return [];
  return Object.entries(values as Json).flatMap(([k, v]) => leaves(v, [...path, k]));
}

/** The value at `path` in plain values, or undefined where the path leaves them. */
export function valueAt(values: unknown, path: readonly string[]): unknown {
  return path.reduce<unknown>((node, key) => (node && typeof node === 'object' && !Array.isArray(node) ? (node as Json)[key] : undefined), values);
}

/** A copy of plain values with `value` at `path`, the mappings on the way made where missing. */
export function setPath(values: unknown, path: readonly string[], value: unknown): unknown {
  if (path.length === 0) return value;
  const map = values && typeof values === 'object' && !Array.isArray(values) ? (values as Json) : {};
  return { ...map, [path[0]!]: setPath(map[path[0]!], path.slice(1), value) };
}

/** Each container's image in a render, keyed `Kind/name container web` (init containers `init container …`). */
function containerImages(rendered: string): Map<string, string> {
  const found = new Map<string, string>();
  for (const object of renderedObjects(rendered, '1.1') as Iterable<Json>) {
    if (typeof object.kind !== 'string') continue;
    const name = String((object.metadata as Json | undefined)?.name);
    const walk = (value: unknown, key: string) => {
      if (Array.isArray(value)) {
        for (const item of value) {
          if ((key === 'containers' || key === 'initContainers') && item && typeof item === 'object' && typeof (item as Json).image === 'string')
            found.set(
              `${object.kind}/${name} ${key === 'initContainers' ? 'init container' : 'container'} ${String((item as Json).name)}`,
              String((item as Json).image),
            );
          walk(item, '');
        }
      } else if (value && typeof value === 'object') for (const [k, v] of Object.entries(value)) walk(v, k);
    };
    walk(object, '');
  }
  return found;
}
