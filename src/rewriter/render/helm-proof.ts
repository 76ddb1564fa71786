/**
 * The proof of a HelmRelease edit, made before it is proposed: the release is rendered as Flux
 * renders it, before and after the edit, with real Helm (`helm template` of the chart's package
 * with the release's values) and real kustomize (each kustomize post-renderer: images and patches
 * over the rendered manifests). The edit is proved when
 *  - before it, the workload's containers run the images the cluster runs (so the inputs are
 *    the release's: values from elsewhere, `valuesFrom`, would make this fail and say so);
 *  - after it, they run the backups;
 *  - and nothing else in the rendered output differs but container image fields.
 * The HelmRelease itself is read as its Kustomization applies it: `kustomize build` of the path
 * when it holds a kustomization (overlay patches included), else the declaring document.
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { isDeepStrictEqual } from 'node:util';
import { parse, parseAllDocuments, stringify } from 'yaml';
import type { DeclaredObject } from '../../cluster/gitops.ts';
import { RenderProofError, tool, type RenderTools } from './tools.ts';
import { runsBackup } from '../../image/backup.ts';
import { declaredDocuments } from '../edit/helm-release.ts';
import { composeHelmImage, HELM_IMAGE_PARTS } from '../edit/helm-values.ts';
import { kustomizationIn } from '../edit/kustomize.ts';
import { buildsOutside } from '../edit/tree.ts';

export { RenderProofError, type RenderTools } from './tools.ts';

type Json = Record<string, unknown>;

/** The declared object's spec as its applier applies it (a Kustomization's or a parent Application's build of the path). */
export async function effectiveSpec(tools: RenderTools, root: string, subdir: string | undefined, declared: DeclaredObject): Promise<Json> {
  const dir = resolve(root, subdir ?? '.');
  let documents: Json[];
  if (kustomizationIn(dir)) {
    if (buildsOutside(root, dir))
      throw new RenderProofError(
        `${subdir ?? 'the repository root'} builds on a remote base or on files outside the repository, which the proof does not read`,
      );
    // As Flux's kustomize-controller builds: files may come from anywhere in the repository.
    const built = await tool(tools.kustomize, ['build', '--load-restrictor', 'LoadRestrictionsNone', dir], `kustomize build ${subdir ?? '.'}`);
    documents = parseAllDocuments(built)
      .map((d) => d.toJS() as Json)
      .filter(Boolean);
  } else {
    documents = declaredDocuments(root, subdir, declared);
  }
  const meta = (d: Json) => (d.metadata ?? {}) as Json;
  // A HelmRelease's namespace may be the Kustomization's targetNamespace, whatever the file says.
  const found = documents.filter(
    (d) =>
      d.kind === declared.kind &&
      meta(d).name === declared.name &&
      (declared.kind === 'HelmRelease' || meta(d).namespace === undefined || meta(d).namespace === declared.namespace),
  );
  if (found.length !== 1)
    throw new RenderProofError(`${subdir ?? 'the repository root'} renders ${found.length} ${declared.kind} objects named ${declared.name}, not one`);
  return (found[0]!.spec ?? {}) as Json;
}

/** What a chart is given to render: values files (in order, later ones win), `--set` values, post-renderers. */
export interface RenderInputs {
  readonly valueFiles: readonly string[];
  readonly sets?: ReadonlyArray<{ readonly name: string; readonly value: string; readonly forceString?: boolean }>;
  readonly postRenderers?: readonly Json[];
}

/** A Flux HelmRelease's inputs: its values, its post-renderers. */
export function helmReleaseInputs(spec: Json): RenderInputs {
  return { valueFiles: [JSON.stringify(spec.values ?? {})], postRenderers: Array.isArray(spec.postRenderers) ? (spec.postRenderers as Json[]) : [] };
}

/** An Argo CD Application's inputs, in Argo CD's order: `values`, then `valuesObject`, then `parameters`. */
export function applicationInputs(spec: Json): RenderInputs {
  const source = (spec.source ?? {}) as Json;
  const helm = (source.helm ?? {}) as Json;
  const parameters = Array.isArray(helm.parameters) ? (helm.parameters as Json[]) : [];
  return {
    valueFiles: [...(typeof helm.values === 'string' ? [helm.values] : []), ...(helm.valuesObject ? [JSON.stringify(helm.valuesObject)] : [])],
    sets: parameters
      .filter((p) => typeof p.name === 'string')
      .map((p) => ({ name: String(p.name), value: String(p.value ?? ''), forceString: p.forceString === true })),
  };
}

/** What the chart renders, post-renderers applied: multi-document YAML. */
export async function renderChart(tools: RenderTools, chart: Buffer, releaseName: string, namespace: string, inputs: RenderInputs): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'image-clone-render-'));
  try {
    await writeFile(join(dir, 'chart.tgz'), chart);
    const args = ['template', releaseName, join(dir, 'chart.tgz'), '--namespace', namespace];
    for (const [i, values] of inputs.valueFiles.entries()) {
      await writeFile(join(dir, `values-${i}.yaml`), values);
      args.push('--values', join(dir, `values-${i}.yaml`));
    }
    for (const set of inputs.sets ?? []) args.push(set.forceString ? '--set-string' : '--set', `${set.name}=${set.value}`);
    let rendered = await tool(tools.helm, args, `helm template ${releaseName}`);
    for (const [i, renderer] of (inputs.postRenderers ?? []).entries()) {
      const kustomize = renderer.kustomize as Json | undefined;
      if (!kustomize) continue;
      await writeFile(join(dir, `rendered-${i}.yaml`), rendered);
      await writeFile(
        join(dir, 'kustomization.yaml'),
        stringify({ resources: [`rendered-${i}.yaml`], ...pick(kustomize, ['images', 'patches', 'patchesStrategicMerge', 'patchesJson6902']) }),
      );
      rendered = await tool(tools.kustomize, ['build', dir], `the post-renderer ${i} (kustomize)`);
    }
    return rendered;
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

/** A chart's default values and appVersion, as Helm reads them from its package. */
export async function chartDefaults(tools: RenderTools, chart: Buffer): Promise<{ values: unknown; appVersion?: string }> {
  const dir = await mkdtemp(join(tmpdir(), 'image-clone-chart-'));
  try {
    await writeFile(join(dir, 'chart.tgz'), chart);
    const values = parse(await tool(tools.helm, ['show', 'values', join(dir, 'chart.tgz')], 'helm show values')) as unknown;
    const meta = parse(await tool(tools.helm, ['show', 'chart', join(dir, 'chart.tgz')], 'helm show chart')) as { appVersion?: unknown } | null;
    const appVersion = meta?.appVersion === undefined || meta.appVersion === null ? undefined : String(meta.appVersion);
    return { values: values ?? {}, ...(appVersion ? { appVersion } : {}) };
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
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

/** Why the two renders do not prove the change, or undefined when they do. */
export function compareRenders(before: string, after: string, expected: readonly ExpectedImage[]): string | undefined {
  const a = byObject(before);
  const b = byObject(after);
  const keys = (m: Map<string, Json>) => [...m.keys()].sort().join(', ');
  if (keys(a) !== keys(b)) return `the change alters which objects the chart renders (before: ${keys(a)}; after: ${keys(b)})`;
  for (const [key, doc] of a) {
    if (!isDeepStrictEqual(withoutImages(doc), withoutImages(b.get(key)!))) return `the change alters ${key} beyond its container images`;
  }
  for (const want of expected) {
    const container = `${want.init ? 'init container' : 'container'} ${want.container}`;
    const label = `${want.kind}/${want.name} ${container}`;
    const doc = findWorkload(a, want.kind, want.name);
    if (!doc) return `the chart renders no ${want.kind}/${want.name}`;
    const was = containerImages(a.get(doc)!).get(container);
    const now = containerImages(b.get(doc)!).get(container);
    if (was !== want.source)
      return `before the change, the chart renders ${label} with ${was ?? 'no image'}, not ${want.source} as the cluster runs it (are its values set elsewhere, e.g. valuesFrom?)`;
    if (now === undefined || !runsBackup(now, want.backup, want.digest))
      return `after the change, the chart renders ${label} with ${now ?? 'no image'}, not the backup ${want.backup}@${want.digest}`;
  }
  return undefined;
}

/** Every container whose image differs between two renders of the same objects. */
export function imageChanges(before: string, after: string): Array<{ object: string; container: string; was: string; now: string }> {
  const a = byObject(before);
  const b = byObject(after);
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

/** Whether a render has a workload of that kind and name (in any namespace). */
export function rendersWorkload(text: string, kind: string, name: string): boolean {
  return findWorkload(byObject(text), kind, name) !== undefined;
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
  // A HelmRelease's values image mappings are images too: one an overlay keeps must not move.
  if (doc.kind === 'HelmRelease') {
    const values = (doc.spec as Json | undefined)?.values;
    const mappings = (value: unknown, path: string) => {
      if (Array.isArray(value)) for (const [i, item] of value.entries()) mappings(item, `${path}[${i}]`);
      else if (value && typeof value === 'object') {
        const map = value as Json;
        const image = isHelmImageMap(map)
          ? composeHelmImage(Object.fromEntries(HELM_IMAGE_PARTS.filter((p) => map[p] !== undefined && map[p] !== null).map((p) => [p, String(map[p])])))
          : undefined;
        if (image) found.set(`values ${path || '.'}`, image);
        for (const [k, v] of Object.entries(map)) mappings(v, path ? `${path}.${k}` : k);
      }
    };
    mappings(values, '');
  }
  return found;
}

function byObject(text: string): Map<string, Json> {
  const map = new Map<string, Json>();
  for (const doc of parseAllDocuments(text)) {
    // What is not a Kubernetes object (a values file, a chart template) is not a rendered object.
    if (doc.errors.length > 0) continue;
    const value = doc.toJS() as Json | null;
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
  const blanked = withoutContainerImages(value) as Json;
  if (blanked?.kind !== 'HelmRelease') return blanked;
  const spec = (blanked.spec ?? {}) as Json;
  return { ...blanked, spec: { ...spec, values: withoutHelmImages(spec.values) } };
}

function withoutHelmImages(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(withoutHelmImages);
  if (!value || typeof value !== 'object') return value;
  const map = value as Json;
  const image = isHelmImageMap(map);
  return Object.fromEntries(Object.entries(map).map(([k, v]) => [k, image && (HELM_IMAGE_PARTS as readonly string[]).includes(k) ? '' : withoutHelmImages(v)]));
}

/** A rendered values mapping that spells an image out, as the planner's helmImageMapsIn finds one in YAML. */
function isHelmImageMap(map: Json): boolean {
  return typeof map.repository === 'string' && 'tag' in map;
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

function pick(object: Json, keys: readonly string[]): Json {
  return Object.fromEntries(keys.filter((k) => object[k] !== undefined).map((k) => [k, object[k]]));
}
