/**
 * The contract of a format the repository plan edits: given the tree as read and modelled once, and
 * which replacement an image asks for, it returns its edits (../planned-edits.ts). Formats are peers:
 * none imports another; what they share (the build model, the Helm layers, the readers of YAML and
 * kustomizations) lives beside them in ../. They are listed in ./index.ts.
 */
import type { BuildModel } from '../kustomize-build.ts';
import type { PlannedEdits, Replacement } from '../planned-edits.ts';
import type { Kustomization } from '../kustomize.ts';
import type { ParsedYaml } from '../yaml-scalars.ts';

export interface PlanContext {
  readonly rootReal: string;
  /** Each YAML file read, parsed in the documents that can name a requested image. */
  readonly parsed: ReadonlyMap<string, ParsedYaml>;
  readonly kustomizations: readonly Kustomization[];
  /** Chart templates with template actions, read as text (../chart-templates.ts). */
  readonly templates: ReadonlyMap<string, string>;
  /** What each build renders (../kustomize-build.ts). */
  readonly build: BuildModel;
  /** The replacement asked for an image as a build runs it, if any; the plan remembers which matched. */
  readonly matches: (image: string | undefined) => Replacement | undefined;
}

export interface Format {
  /** What it edits, in a few words. */
  readonly name: string;
  plan(context: PlanContext): PlannedEdits;
}
