/** The chart template reader (src/rewriter/edit/chart-templates.ts): which files are templates, and their literal images. */
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { chartDirOf, isChartTemplate, templateImageLiterals } from '../../src/rewriter/edit/chart-templates.ts';
import { fileTree } from '../support/file-tree.ts';

describe('the chart template reader', () => {
  it('knows a template by its chart and its actions', () => {
    const root = fileTree({ 'charts/web/Chart.yaml': 'name: web\n', 'charts/web/templates/a.yaml': '', 'plain/templates/b.yaml': '' });
    const inChart = join(root, 'charts/web/templates/a.yaml');
    assert.equal(chartDirOf(inChart, root), join(root, 'charts/web'));
    assert.equal(isChartTemplate(inChart, 'image: {{ .Values.image }}\n', root), true);
    assert.equal(isChartTemplate(inChart, 'image: busybox:1.36\n', root), false, 'no action: plain YAML');
    assert.equal(isChartTemplate(join(root, 'plain/templates/b.yaml'), '{{ x }}', root), false, 'no Chart.yaml above it');
  });

  it('finds literal images on lines without an action, in their quoting, and nothing inside an action or cut at a #', () => {
    const text = [
      '{{- if .Values.hook }}',
      '        - image: "busybox:1.36" # pinned',
      "          image: 'nginx:1.25'",
      '          image: {{ .Values.image }}',
      '          image: app:1#x',
      '{{/*',
      '          image: inside:comment',
      '*/}}',
      '          image: docker.io/library/redis:7\r',
      '{{- end }}',
    ].join('\n');
    assert.deepEqual(
      templateImageLiterals(text).map((s) => [s.line, s.raw]),
      [
        [2, '"busybox:1.36"'],
        [3, "'nginx:1.25'"],
        [9, 'docker.io/library/redis:7'],
      ],
      '`app:1#x` is one value (a comment starts after a space), and no image: never taken for `app:1`',
    );
  });
});
