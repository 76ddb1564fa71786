/**
 * Helm values as layers: the values a chart is given for one image, base first (a chart's
 * values.yaml under an environment's file, a HelmRelease's values under an overlay's patch of them),
 * edited so that the most specific layer composes the new image while every other build that shares
 * a layer keeps what it runs. The library the Helm values planners share (formats/values-files.ts,
 * formats/release-values.ts, helm-release.ts).
 */
import { relative } from 'node:path';
import type { YAMLMap } from 'yaml';
import { formatReference } from '../../image/reference.ts';
import { helmComposes, helmImage, helmPartEdits, helmParts, helmPartsFor, helmPinRefusal, repositoryKey, type HelmImagePart } from './helm-values.ts';
import { helmRenderImage, type HelmLayer, type HelmValueRender } from './release-renders.ts';
import { PlannedEdits, type PlannedChange, type Replacement } from './planned-edits.ts';
import { get } from './yaml-scalars.ts';

type HelmParts = Partial<Record<HelmImagePart, string>>;

/**
 * Helm values layers: for each render `choose` gives a replacement, its last layer (the most
 * specific: an overlay's patch, else the HelmRelease's own values) is made to compose the new
 * image. A build that shares a layer so edited but keeps its image gets, in its own last layer,
 * the parts the shared one no longer gives it (its `repository`, when it patches only the `tag`).
 * The renders whose values cannot be made to run their new image are skipped uses, with why.
 */
export function planHelmLayers(
  renders: readonly HelmValueRender[],
  choose: (render: HelmValueRender) => Replacement | undefined,
  rootReal: string,
): PlannedEdits {
  const planned = new PlannedEdits();
  const rel = (file: string) => relative(rootReal, file);
  const layerParts = new Map<YAMLMap, { layer: HelmLayer; parts: HelmParts; key: 'repository' | 'image' }>();
  const report = (layer: HelmLayer, change: Omit<PlannedChange, 'file' | 'line'>) =>
    planned.report(layer.map, { file: rel(layer.source.file), line: layer.source.line(layer.map.range![0]), ...change });
  for (const render of renders) {
    const replacement = choose(render);
    if (!replacement) continue;
    const layer = render.layers.at(-1)!;
    const layers = render.layers.map((l) => l.map);
    const cannot = replacement.detectOnly ? undefined : helmPinRefusal(replacement.to, layers);
    if (cannot) {
      const line = layer.source.line(layer.map.range![0]);
      planned.skipped.push({
        image: formatReference(replacement.from),
        note: `${rel(layer.source.file)}:${line} Helm values ${render.where} compose ${helmRenderImage(render)}, but ${cannot}; left alone`,
      });
      continue;
    }
    const parts = helmPartsFor(replacement.to, layers);
    const gives = replacement.detectOnly ? replacement.to : helmComposes(layers, parts)!;
    report(layer, { what: `Helm values ${render.where}${byTagOnly(gives, replacement.to)}`, before: helmRenderImage(render)!, after: gives });
    if (!replacement.detectOnly && !layerParts.has(layer.map)) layerParts.set(layer.map, { layer, parts, key: repositoryKey(layers) });
  }
  for (const render of renders) {
    const layers = render.layers.map((l) => l.map);
    const own = render.layers.at(-1)!;
    if (layerParts.has(own.map)) continue;
    const before = helmParts(layers);
    const pin: HelmParts = {};
    render.layers.forEach((layer, i) => {
      const moved = layerParts.get(layer.map)?.parts ?? {};
      for (const part of Object.keys(moved) as HelmImagePart[]) {
        const decidedHere = !layers.slice(i + 1).some((l) => get(l, part) !== undefined);
        if (decidedHere && before[part] !== undefined) pin[part] = before[part];
      }
    });
    if (Object.keys(pin).length === 0) continue;
    layerParts.set(own.map, { layer: own, parts: pin, key: repositoryKey(layers) });
    report(own, {
      what: `Helm values ${render.where} keeps ${Object.keys(pin).join(', ')} its base no longer gives, so ${rel(render.root) || '.'} still runs what it ran`,
      before: helmImage(...layers)!,
      after: helmImage(...layers)!,
    });
  }
  for (const { layer, parts, key } of layerParts.values())
    planned.editSource(rootReal, layer.source, layer.source.line(layer.map.range![0]), 'Helm values', helmPartEdits(layer.source.text, layer.map, parts, key));
  return planned;
}

/** Said on a change line whose values have no digest key: the new image is pinned by its tag alone. */
const byTagOnly = (gives: string, to: string) => (gives === to ? '' : ' (no digest key: pinned by its tag)');
