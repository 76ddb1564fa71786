/**
 * Helm values as the planner reads them: image mappings split into parts (`repository` and `tag`,
 * and the Bitnami `registry` and `digest`), what image such a mapping composes when overrides are
 * layered over it (a values file, a HelmRelease's `spec.values` and the patches an overlay applies
 * to them), and the edits that make it compose another. Pure: nodes in, edits out.
 */
import { basename } from 'node:path';
import { isMap, isSeq, type Node, type YAMLMap } from 'yaml';
import { parseReference } from '../../image/reference.ts';
import { setInMap } from './yaml-insert.ts';
import { get, scalarText, stringAt, type TextEdit } from './yaml-scalars.ts';

/** `values.yaml`, `values-prod.yaml`, `values.staging.yml`: a chart's values files. */
export const isValuesFile = (file: string) => /^values[^/\\]*\.ya?ml$/.test(basename(file));
/** A chart's own `values.yaml`, which every render reads (the others are an environment's, given with `-f`). */
export const isDefaultValuesFile = (file: string) => /^values\.ya?ml$/.test(basename(file));

/** `sha` is the digest's hex without `sha256:`, as kube-prometheus-stack, kube-state-metrics and node-exporter read it. */
export const HELM_IMAGE_PARTS = ['registry', 'repository', 'tag', 'digest', 'sha'] as const;
export type HelmImagePart = (typeof HELM_IMAGE_PARTS)[number];

export interface HelmImageMap {
  readonly map: YAMLMap;
  /** Its place in the values, for a reader (`redis.image`). */
  readonly where: string;
  /** Its place in the values, as keys and indexes (to find it again in an override). */
  readonly path: readonly (string | number)[];
}

/**
 * Image mappings (`repository` and `tag`, optionally `registry` and `digest`; or ingress-nginx's
 * `registry`, `image` and `tag`, where `image` is the repository) anywhere under a values node.
 */
export function helmImageMapsIn(values: Node | undefined, where: string): HelmImageMap[] {
  const found: HelmImageMap[] = [];
  const walk = (node: Node | undefined, path: (string | number)[]) => {
    if (isMap(node)) {
      const at = path
        .map((p) => (typeof p === 'number' ? `[${p}]` : `.${p}`))
        .join('')
        .replace(/^\./, '');
      const repository = stringAt(node, 'repository') ?? (stringAt(node, 'registry') !== undefined ? stringAt(node, 'image') : undefined);
      if (repository !== undefined && get(node, 'tag') !== undefined) found.push({ map: node, where: `${where}${where && at ? ' ' : ''}${at}`, path });
      for (const pair of node.items) walk(pair.value as Node | undefined, [...path, String((pair.key as { value?: unknown })?.value ?? '?')]);
    } else if (isSeq(node)) {
      for (const [i, item] of node.items.entries()) walk(item as Node, [...path, i]);
    }
  };
  walk(values, []);
  return found;
}

/** The node at `path` under `values` (undefined where the path leaves the tree). */
export function valuesAt(values: Node | undefined, path: readonly (string | number)[]): Node | undefined {
  let node = values;
  for (const key of path) {
    if (typeof key === 'number') node = isSeq(node) ? (node.items[key] as Node | undefined) : undefined;
    else node = get(node, key);
  }
  return node;
}

/** Each part of an image mapping seen through its layers: the last layer that sets it wins, as Helm merges values. */
export function helmParts(layers: readonly Node[]): Partial<Record<HelmImagePart, string>> {
  const parts: Partial<Record<HelmImagePart, string>> = {};
  const key = repositoryKey(layers);
  for (const layer of layers) {
    for (const part of HELM_IMAGE_PARTS) {
      const value = scalarText(get(layer, part === 'repository' ? key : part));
      if (value !== undefined) parts[part] = value;
    }
  }
  return parts;
}

/** The key the layers spell the repository with: `repository`, or ingress-nginx's `image` where no layer has `repository`. */
export function repositoryKey(layers: readonly Node[]): 'repository' | 'image' {
  return !layers.some((l) => get(l, 'repository') !== undefined) && layers.some((l) => stringAt(l, 'image') !== undefined) ? 'image' : 'repository';
}

/** The image a mapping (or its layers) composes: `[registry/]repository[:tag][@digest]`. */
export function helmImage(...layers: Node[]): string | undefined {
  return composeHelmImage(helmParts(layers));
}

/** The image that parts compose, as charts that split it compose it. */
export function composeHelmImage({ registry, repository, tag, digest, sha }: Partial<Record<HelmImagePart, string>>): string | undefined {
  if (!repository) return undefined;
  const pinned = digest || (sha ? `sha256:${sha}` : undefined);
  return `${registry ? `${registry}/` : ''}${repository}${tag ? `:${tag}` : ''}${pinned ? `@${pinned}` : ''}`;
}

/**
 * The parts that make the mapping compose `to`, keyed as the mapping (or its layers) already
 * keys them: `registry` and `repository` apart only where a registry key exists; a digest only
 * where the chart reads one.
 */
export function helmPartsFor(to: string, layers: readonly Node[]): Partial<Record<HelmImagePart, string>> {
  const target = parseReference(to);
  const has = (part: HelmImagePart) => layers.some((l) => get(l, part) !== undefined);
  const parts: Partial<Record<HelmImagePart, string>> = has('registry')
    ? { registry: target.registry, repository: target.repository }
    : { repository: `${target.registry}/${target.repository}` };
  if (target.tag !== undefined) parts.tag = target.tag;
  if (has('digest')) parts.digest = target.digest ?? '';
  // A `sha` key holds the digest's hex (empty: unpinned); a sha256 digest goes there, anything else empties it.
  else if (has('sha')) parts.sha = target.digest?.startsWith('sha256:') ? target.digest.slice('sha256:'.length) : '';
  return parts;
}

/**
 * Why values shaped like `layers` cannot be made to run `to`, or undefined: a digest with no tag,
 * where no layer has a `digest` key, leaves the chart composing the old tag on the new repository.
 * (With a tag as well, the tag is written and the chart runs the backup's tag: see `helmComposes`.)
 */
export function helmPinRefusal(to: string, layers: readonly Node[]): string | undefined {
  const target = parseReference(to);
  if (target.digest === undefined || target.tag !== undefined || layers.some((l) => get(l, 'digest') !== undefined || get(l, 'sha') !== undefined))
    return undefined;
  return `these values have no digest key and ${to} names no tag, so the chart cannot be made to run it (ask for the image with its tag, or add the digest key if the chart reads one)`;
}

/** The image the values compose once `parts` are written over `layers`: what the change really gives. */
export function helmComposes(layers: readonly Node[], parts: Partial<Record<HelmImagePart, string>>): string | undefined {
  return composeHelmImage({ ...helmParts(layers), ...parts });
}

/** Edits that set each part in `map` (edited in place, or added after its last key). */
export function helmPartEdits(
  text: string,
  map: YAMLMap,
  parts: Partial<Record<HelmImagePart, string>>,
  key: 'repository' | 'image' = 'repository',
): TextEdit[] {
  return HELM_IMAGE_PARTS.flatMap((part) => (parts[part] === undefined ? [] : setInMap(text, map, part === 'repository' ? key : part, parts[part]!)));
}
