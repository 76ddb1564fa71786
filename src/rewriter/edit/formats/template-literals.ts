/**
 * Chart templates that are not YAML (they hold `{{ }}` actions): a literal image on a line with no
 * template action, found by its text (../chart-templates.ts), edited in place and said to be one.
 */
import { relative } from 'node:path';
import { templateImageLiterals } from '../chart-templates.ts';
import { PlannedEdits } from '../planned-edits.ts';
import { formatScalar } from '../yaml-scalars.ts';
import type { Format, PlanContext } from './format.ts';

export const templateLiterals: Format = {
  name: 'literal images in chart templates',
  plan({ rootReal, templates, matches }: PlanContext): PlannedEdits {
    const planned = new PlannedEdits();
    for (const [file, text] of templates) {
      for (const site of templateImageLiterals(text)) {
        const replacement = matches(site.value);
        if (!replacement) continue;
        planned.report(site, {
          file: relative(rootReal, file),
          line: site.line,
          what: 'Helm chart template literal (the line has no template action)',
          before: site.value,
          after: replacement.to,
        });
        if (!replacement.detectOnly) planned.edit(file, [{ start: site.start, end: site.end, text: formatScalar(replacement.to, site) }]);
      }
    }
    return planned;
  },
};
