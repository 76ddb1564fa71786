/**
 * Helm values files (a chart's own `values.yaml`, or one an Application reads), each environment's
 * file (`values-prod.yaml`) layered over the `values.yaml` beside it as `helm -f` merges them: the
 * layer that decides a requested image is edited (../helm-layers.ts).
 */
import { dirname, relative } from 'node:path';
import { isMap, type Node } from 'yaml';
import { HELM_IMAGE_PARTS, helmImageMapsIn, isDefaultValuesFile, isValuesFile, valuesAt } from '../helm-values.ts';
import { planHelmLayers } from '../helm-layers.ts';
import { helmRenderImage, type HelmValueRender } from '../release-renders.ts';
import { fileSource } from '../kustomize.ts';
import type { PlannedEdits } from '../planned-edits.ts';
import { get, type ParsedYaml } from '../yaml-scalars.ts';
import type { Format, PlanContext } from './format.ts';

export const valuesFiles: Format = {
  name: 'Helm values files',
  plan: ({ rootReal, parsed, matches }: PlanContext): PlannedEdits =>
    planHelmLayers(valuesFileRenders(parsed, rootReal), (render) => matches(helmRenderImage(render)), rootReal),
};

/**
 * The images values files compose, as Helm layers them: each image mapping of a directory's
 * `values.yaml` on its own (the default install), and each environment's file (`values-prod.yaml`)
 * over it, where it sets any part of a mapping (a `tag` alone, say) or a whole one.
 */
function valuesFileRenders(parsed: ReadonlyMap<string, ParsedYaml>, rootReal: string): HelmValueRender[] {
  const renders: HelmValueRender[] = [];
  const byDir = new Map<string, string[]>();
  for (const file of parsed.keys()) if (isValuesFile(file)) byDir.set(dirname(file), [...(byDir.get(dirname(file)) ?? []), file]);
  const rootOf = (file: string): HelmValueRender['release'] => ({ kind: 'values', namespace: undefined, name: relative(rootReal, file) });
  for (const files of byDir.values()) {
    const base = files.find(isDefaultValuesFile);
    const baseValues = base ? (parsed.get(base)!.documents[0]?.contents as Node | undefined) : undefined;
    const baseSource = base ? fileSource(base, parsed.get(base)!.text) : undefined;
    const baseMaps = base ? helmImageMapsIn(baseValues, '') : [];
    for (const m of baseMaps)
      renders.push({ root: base!, release: rootOf(base!), names: [], path: m.path, where: m.where, layers: [{ source: baseSource!, map: m.map }] });
    for (const file of files) {
      if (file === base) continue;
      const yaml = parsed.get(file)!;
      const values = yaml.documents[0]?.contents as Node | undefined;
      const source = fileSource(file, yaml.text);
      const seen = new Set<string>();
      for (const m of baseMaps) {
        const over = valuesAt(values, m.path);
        if (!isMap(over) || !HELM_IMAGE_PARTS.some((p) => get(over, p) !== undefined)) continue;
        seen.add(JSON.stringify(m.path));
        renders.push({
          root: file,
          release: rootOf(file),
          names: [],
          path: m.path,
          where: m.where,
          layers: [
            { source: baseSource!, map: m.map },
            { source, map: over },
          ],
        });
      }
      for (const m of helmImageMapsIn(values, ''))
        if (!seen.has(JSON.stringify(m.path)))
          renders.push({ root: file, release: rootOf(file), names: [], path: m.path, where: m.where, layers: [{ source, map: m.map }] });
    }
  }
  return renders;
}
