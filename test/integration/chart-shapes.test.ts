/**
 * The chart render proof's parts on the shapes real charts have (test/fixtures/charts/), with the
 * real Helm: rendering for the cluster's version and API versions, what varies on every render, and
 * finding by rendering the values that compose an image where no convention names them.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { HELM_BIN } from '../../devenv/cache.ts';
import { compareRenders, describeVarying, varyingBetween } from '../../src/rewriter/proof/compare.ts';
import { renderChart } from '../../src/rewriter/proof/helm-proof.ts';
import { deriveImageValues, type WantedImage } from '../../src/rewriter/proof/image-values.ts';
import { packageFixtureChart } from '../support/fixture-charts.ts';

const tools = { helm: HELM_BIN, kustomize: 'kustomize' };
const work = mkdtempSync(join(tmpdir(), 'chart-shapes-'));
after(() => rmSync(work, { recursive: true, force: true }));
const REG = 'registry.example:5000';
const DIGEST = `sha256:${'d'.repeat(64)}`;
const chart = (name: string) => readFileSync(packageFixtureChart(HELM_BIN, name, REG, work));
const cluster = { kubeVersion: 'v1.34.4', apiVersions: ['policy/v1', 'policy/v1/PodDisruptionBudget', 'v1'] };
const mirror = (image: string) => `backup.example/mirror/${image.replace(REG, 'registry.example_5000').replace(/@.*/, '')}`;
const want = (container: string, source: string): WantedImage => ({ container, init: false, source, backup: mirror(source), digest: DIGEST });
const renderWith = (bytes: Buffer, release: string) => (values: unknown) =>
  renderChart(tools, bytes, release, 'apps', { valueFiles: [JSON.stringify(values)] }, cluster);
const imageOf = (rendered: string, container: string) => new RegExp(`- name: ${container}\\n\\s+image: "?([^"\\n]+)`).exec(rendered)?.[1];

describe('charts rendered as the GitOps tools render them (real Helm)', () => {
  it("renders for the cluster's version and API versions, and without the chart's test hooks", async () => {
    const constrained = chart('constrained');
    const rendered = await renderChart(tools, constrained, 'web', 'apps', { valueFiles: [] }, cluster);
    assert.match(rendered, /kube-version: "v1\.34\.4"/);
    assert.match(rendered, /apiVersion: policy\/v1\n/);
    await assert.rejects(
      renderChart(tools, constrained, 'web', 'apps', { valueFiles: [] }, { kubeVersion: 'v1.20.0', apiVersions: [] }),
      /chart requires kubeVersion: >=1\.21\.0-0 which is incompatible with Kubernetes v1\.20\.0/,
    );
    // Helm as built here defaults to its client-go's Kubernetes, not v1.20.0: a chart asking for >=1.21 renders even without the cluster's.
    assert.match(await renderChart(tools, constrained, 'web', 'apps', { valueFiles: [] }), /kube-version: "v1\.37\.0"/);
    const generated = await renderChart(tools, chart('generated'), 'gen', 'apps', { valueFiles: [] }, cluster);
    assert.doesNotMatch(generated, /helm\.sh\/hook: test/);
  });

  it('keeps the whole of a chart error that spans lines (its cause and its fix)', async () => {
    const values = { image: { registry: 'elsewhere.example' } };
    await assert.rejects(renderWith(chart('generated'), 'gen')(values), (error: Error) => {
      assert.match(
        error.message,
        /Original containers have been substituted for unrecognized ones\..*Unrecognized images:.*elsewhere\.example\/generated:1\.0.*'global\.security\.allowInsecureImages' to true/,
      );
      return true;
    });
  });

  it('names what varies on every render of the unchanged chart, and proves a change to the image alone despite it', async () => {
    const render = renderWith(chart('generated'), 'gen');
    const [first, second] = [await render({}), await render({})];
    const varying = varyingBetween(first, second);
    assert.deepEqual(
      describeVarying(varying).filter((v) => !v.includes('data.tls')),
      ['Deployment/apps/gen spec.template.metadata.annotations.checksum/secret', 'Secret/gen-tls data.ca.crt', 'Secret/gen-tls data.password'].map((v) =>
        v.replace('Deployment/apps/gen', 'Deployment/gen'),
      ),
    );
    const moved = await render({
      global: { security: { allowInsecureImages: true } },
      image: { registry: 'backup.example/mirror/registry.example_5000', digest: DIGEST },
    });
    const expected = [{ kind: 'Deployment', name: 'gen', ...want('app', `${REG}/generated:1.0`) }];
    assert.match(compareRenders(first, moved, expected) ?? '', /alters .* beyond its container images/);
    assert.equal(compareRenders(first, moved, expected, varying), undefined);
  });
});

describe('the values that compose an image, found by rendering (real Helm)', () => {
  const B = 'backup.example/mirror/registry.example_5000';
  const cases: Array<{
    chart: string;
    release: string;
    kind: string;
    name: string;
    wants: WantedImage[];
    expect: Record<string, string | boolean>;
    runs: string;
  }> = [
    {
      // The tag defaults to "v" + appVersion: the repository moves, the tag value takes the digest.
      chart: 'constrained',
      release: 'metrics',
      kind: 'Deployment',
      name: 'metrics',
      wants: [want('server', `${REG}/metrics/server:v0.7.2`)],
      expect: { 'image.repository': 'backup.example/mirror/registry.example_5000/metrics/server', 'image.tag': `v0.7.2@${DIGEST}` },
      runs: `${B}/metrics/server:v0.7.2@${DIGEST}`,
    },
    {
      // cert-manager's layout: the shared imageRegistry would move the webhook too; the component's own repository is chosen.
      chart: 'components',
      release: 'cm',
      kind: 'Deployment',
      name: 'cm-controller',
      wants: [want('controller', `${REG}/jetstack/cm-controller:v1.14.0`)],
      expect: { 'image.repository': 'backup.example/mirror/registry.example_5000/jetstack/cm-controller', 'image.tag': `v1.14.0@${DIGEST}` },
      runs: `${B}/jetstack/cm-controller:v1.14.0@${DIGEST}`,
    },
    {
      // ingress-nginx's layout: the registry comes from global.image, which a hook Job shares; the
      // controller's own `repository` (absent from its values, read by the template) moves it alone.
      chart: 'ingress',
      release: 'edge',
      kind: 'Deployment',
      name: 'edge-controller',
      wants: [want('controller', `${REG}/ingress/controller:v1.11.0`)],
      expect: { 'controller.image.repository': 'backup.example/mirror/registry.example_5000/ingress/controller', 'controller.image.digest': DIGEST },
      runs: `${B}/ingress/controller:v1.11.0@${DIGEST}`,
    },
    {
      // Bitnami's layout, behind its substitution guard (probed with the guard set).
      chart: 'generated',
      release: 'gen',
      kind: 'Deployment',
      name: 'gen',
      wants: [want('app', `${REG}/generated:1.0`)],
      expect: { 'image.registry': 'backup.example/mirror/registry.example_5000', 'image.digest': DIGEST },
      runs: `${B}/generated@${DIGEST}`,
    },
  ];
  for (const c of cases) {
    it(`${c.chart}: ${Object.keys(c.expect).join(' and ')}`, async () => {
      const bytes = chart(c.chart);
      const render = renderWith(bytes, c.release);
      const defaults = (await import('yaml')).parse(
        readFileSync(join(import.meta.dirname, '../fixtures/charts', c.chart, 'values.yaml'), 'utf8').replaceAll('SOURCE_REGISTRY', REG),
      );
      const derived = await deriveImageValues(render, defaults, { kind: c.kind, name: c.name }, c.wants);
      assert.ok(typeof derived !== 'string', String(derived));
      const overrides = derived.overrides.get(c.wants[0]!.source)!;
      assert.deepEqual(Object.fromEntries(overrides.map((o) => [o.path.join('.'), o.value])), c.expect);
      // And the chart, given them, runs the backup pinned by its digest.
      const values = overrides.reduce((v, o) => setPath(v, o.path, o.value), defaults as object);
      const guarded = c.chart === 'generated' ? setPath(values, ['global', 'security', 'allowInsecureImages'], true) : values;
      assert.equal(imageOf(await render(guarded), c.wants[0]!.container), c.runs);
    });
  }

  it('says so when no value reaches the image (the template writes it)', async () => {
    const derived = await deriveImageValues(renderWith(chart('hardcoded'), 'tool'), { replicas: 1, label: 'tool' }, { kind: 'Deployment', name: 'tool' }, [
      want('tool', `${REG}/fixed/tool:1.0`),
    ]);
    assert.equal(
      derived,
      `no value of the chart reaches ${REG}/fixed/tool:1.0: its template writes the image itself (every candidate value was tried by rendering)`,
    );
  });

  it('gives up within its time budget, saying how many renders it made, rather than hold the pass', async () => {
    const c = cases[0]!;
    const defaults = (await import('yaml')).parse(
      readFileSync(join(import.meta.dirname, '../fixtures/charts', c.chart, 'values.yaml'), 'utf8').replaceAll('SOURCE_REGISTRY', REG),
    );
    // A budget of 1 ms: spent by the first render, which checks the chart renders what the cluster runs.
    const derived = await deriveImageValues(renderWith(chart(c.chart), c.release), defaults, { kind: c.kind, name: c.name }, c.wants, 1);
    assert.equal(derived, "finding the chart's image values took more than 0 s (1 renders); not derived");
  });

  it('says why when the image is not what the chart renders with its values', async () => {
    const derived = await deriveImageValues(renderWith(chart('constrained'), 'metrics'), {}, { kind: 'Deployment', name: 'metrics' }, [
      want('server', `${REG}/metrics/server:v0.6.0`),
    ]);
    assert.equal(
      derived,
      `with the values it is given, the chart renders Deployment/metrics container server with ${REG}/metrics/server:v0.7.2, not ${REG}/metrics/server:v0.6.0 as the cluster runs it`,
    );
  });
});

function setPath(values: object, path: readonly string[], value: unknown): object {
  if (path.length === 0) return value as object;
  const map = values as Record<string, unknown>;
  return { ...map, [path[0]!]: setPath((map[path[0]!] ?? {}) as object, path.slice(1), value) };
}
