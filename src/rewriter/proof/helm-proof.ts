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
import { renderedObjects } from './documents.ts';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { parse, stringify } from 'yaml';
import type { DeclaredObject } from '../../handoff/schema.ts';
import type { ClusterCapabilities } from '../../handoff/schema.ts';
import { buildReadRefusal } from './build-gate.ts';
import { HELM_TEMPLATE_FLAGS, RenderProofError, tool, type RenderTools } from './tools.ts';
import { declaredDocuments } from '../edit/helm-release.ts';
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
    const refusal = buildReadRefusal(root, dir);
    if (refusal) throw new RenderProofError(`${subdir ?? 'the repository root'} is not built: ${refusal}`);
    // As Flux's kustomize-controller builds: files may come from anywhere in the repository.
    const built = await tool(tools.kustomize, ['build', '--load-restrictor', 'LoadRestrictionsNone', dir], `kustomize build ${subdir ?? '.'}`);
    documents = [...renderedObjects(built)] as Json[];
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

/**
 * What the chart renders, post-renderers applied: multi-document YAML. Rendered for `cluster` as
 * Flux and Argo CD render (its version and API versions; without them, Helm's built-in default),
 * and without the chart's test hooks, which neither tool applies.
 */
export async function renderChart(
  tools: RenderTools,
  chart: Buffer,
  releaseName: string,
  namespace: string,
  inputs: RenderInputs,
  cluster?: ClusterCapabilities,
): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'image-clone-render-'));
  try {
    await writeFile(join(dir, 'chart.tgz'), chart);
    const args = ['template', releaseName, join(dir, 'chart.tgz'), '--namespace', namespace, ...HELM_TEMPLATE_FLAGS];
    if (cluster) {
      args.push('--kube-version', cluster.kubeVersion);
      // One comma-separated flag: Helm splits it, and a large cluster's hundreds stay one argument.
      if (cluster.apiVersions.length > 0) args.push('--api-versions', cluster.apiVersions.join(','));
    }
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

function pick(object: Json, keys: readonly string[]): Json {
  return Object.fromEntries(keys.filter((k) => object[k] !== undefined).map((k) => [k, object[k]]));
}
