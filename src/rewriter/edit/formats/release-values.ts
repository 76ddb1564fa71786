/**
 * A Flux HelmRelease's inline `spec.values`, and the overlays' patches of them, layered as kustomize
 * merges them: the owner's layer is edited, and a build that shares a layer so edited keeps its image
 * (../helm-layers.ts).
 */
import { planHelmLayers } from '../helm-layers.ts';
import { helmRenderImage } from '../release-renders.ts';
import type { PlannedEdits } from '../planned-edits.ts';
import type { Format, PlanContext } from './format.ts';

export const releaseValues: Format = {
  name: 'HelmRelease values',
  plan: ({ rootReal, build, matches }: PlanContext): PlannedEdits => planHelmLayers(build.helm, (render) => matches(helmRenderImage(render)), rootReal),
};
