/**
 * The formats the repository plan edits, in the order their change lines are said. A new format:
 * a module beside these that keeps ./format.ts's contract, and its line here.
 */
import type { Format } from './format.ts';
import { manifestImages } from './manifest-images.ts';
import { releaseValues } from './release-values.ts';
import { templateLiterals } from './template-literals.ts';
import { valuesFiles } from './values-files.ts';

export type { Format, PlanContext } from './format.ts';

export const FORMATS: readonly Format[] = [manifestImages, valuesFiles, templateLiterals, releaseValues];
