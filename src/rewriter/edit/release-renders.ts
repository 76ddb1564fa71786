/**
 * A HelmRelease's image values as a kustomize build gives them to Helm: each image mapping of its
 * `spec.values` (`image: {repository, tag}` and its kin), then the same mapping in every overlay's
 * strategic-merge patch of the release, layered over it in order. The build model
 * (./kustomize-build.ts) follows them through the builds; the Helm values planners
 * (./helm-layers.ts) edit the layer that decides.
 */
import { isMap, type Node, type YAMLMap } from 'yaml';
import { HELM_IMAGE_PARTS, helmImage, helmImageMapsIn, valuesAt } from './helm-values.ts';
import { workloadOf, type Workload } from './kubernetes.ts';
import type { Source } from './kustomize.ts';
import { get } from './yaml-scalars.ts';

/** A mapping of a values layer (the HelmRelease's own, then each patch's). */
export interface HelmLayer {
  readonly source: Source;
  readonly map: YAMLMap;
}

export interface HelmValueRender {
  readonly root: string;
  readonly release: Workload;
  readonly names: readonly string[];
  readonly path: readonly (string | number)[];
  readonly where: string;
  /** The mapping's layers, the HelmRelease's first: each part is the last layer's that sets it. */
  readonly layers: readonly HelmLayer[];
}

export const helmRenderImage = (render: HelmValueRender) => helmImage(...render.layers.map((l) => l.map));

/** The image mappings of a HelmRelease's own values (none for another object). */
export function releaseValueRenders(object: Node, source: Source): HelmValueRender[] {
  const release = workloadOf(object);
  if (release?.kind !== 'HelmRelease') return [];
  return helmImageMapsIn(get(get(object, 'spec'), 'values'), `HelmRelease/${release.name} spec.values`).map((m) => ({
    root: '',
    release,
    names: [release.name],
    path: m.path,
    where: m.where,
    layers: [{ source, map: m.map }],
  }));
}

/**
 * A strategic-merge patch of a HelmRelease (`release`, its `object` in `source`): each mapping it
 * sets over one a release it `hits` has becomes that mapping's next layer; one no release has yet
 * stands alone (the release was not read, or gains the mapping).
 */
export function layerReleasePatch(
  renders: readonly HelmValueRender[],
  hits: (kind: string, names: readonly string[]) => boolean,
  object: Node,
  release: Workload,
  source: Source,
): HelmValueRender[] {
  const values = get(get(object, 'spec'), 'values');
  const seen = new Set<string>();
  const layered = renders.map((r) => {
    if (!hits(r.release.kind, r.names)) return r;
    seen.add(JSON.stringify(r.path));
    const node = valuesAt(values, r.path);
    return isMap(node) && HELM_IMAGE_PARTS.some((p) => get(node, p) !== undefined) ? { ...r, layers: [...r.layers, { source, map: node }] } : r;
  });
  for (const m of helmImageMapsIn(values, `HelmRelease/${release.name} spec.values`)) {
    if (!seen.has(JSON.stringify(m.path)))
      layered.push({ root: '', release, names: [release.name], path: m.path, where: m.where, layers: [{ source, map: m.map }] });
  }
  return layered;
}
