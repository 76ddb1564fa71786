/** Reading one chart's entries out of a chart repository's index.yaml (src/rewriter/proof/chart.ts). */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { indexEntries } from '../../src/rewriter/proof/chart.ts';

// As `helm repo index` writes it: entries at column 0, names at 2, versions listed at 2.
const HELM_INDEX = `apiVersion: v1
entries:
  cache:
  - apiVersion: v2
    appVersion: "7.2"
    digest: ${'a'.repeat(64)}
    name: cache
    urls:
    - http://127.0.0.1:1/cache-1.2.0.tgz
    version: 1.2.0
  podinfo:
  - apiVersion: v2
    name: podinfo
    urls:
    - podinfo-6.5.0.tgz
    version: 6.5.0

  - apiVersion: v2
    name: podinfo
    urls:
    - podinfo-6.4.0.tgz
    version: 6.4.0
  zeta:
  - name: zeta
    urls:
    - zeta-1.0.0.tgz
    version: 1.0.0
generated: "2026-12-03T00:00:00Z"
`;

describe('indexEntries', () => {
  it("cuts one chart's versions out of an index laid out as Helm writes it", () => {
    assert.deepEqual(
      indexEntries(HELM_INDEX, 'podinfo', 'index.yaml').map((e) => e.version),
      ['6.5.0', '6.4.0'],
    );
    assert.deepEqual(indexEntries(HELM_INDEX, 'cache', 'index.yaml')[0]?.urls, ['http://127.0.0.1:1/cache-1.2.0.tgz']);
    assert.deepEqual(indexEntries(HELM_INDEX, 'zeta', 'index.yaml')[0]?.version, '1.0.0');
    assert.deepEqual(indexEntries(HELM_INDEX, 'missing', 'index.yaml'), []);
  });

  it('parses another layout whole only when it is small, and says why otherwise', () => {
    const flow = JSON.stringify({ apiVersion: 'v1', entries: { podinfo: [{ version: '6.5.0', urls: ['p.tgz'] }] } });
    assert.deepEqual(indexEntries(flow, 'podinfo', 'index.yaml')[0]?.version, '6.5.0');
    const huge = JSON.stringify({ entries: { podinfo: Array.from({ length: 80_000 }, (_, i) => ({ version: `1.0.${i}`, urls: ['p.tgz'] })) } });
    assert.throws(
      () => indexEntries(huge, 'podinfo', 'https://charts.example/index.yaml'),
      /https:\/\/charts\.example\/index\.yaml is \d+ bytes and not laid out as Helm writes an index; not read/,
    );
  });
});

describe('fetchChart over plain http', () => {
  it('is refused before any request unless the operator named that prefix', async () => {
    const { fetchChart } = await import('../../src/rewriter/proof/chart.ts');
    await assert.rejects(
      fetchChart({ repoURL: 'http://127.0.0.1:9/internal-admin', name: 'x' }),
      /^ChartFetchError: the chart repository http:\/\/127\.0\.0\.1:9\/internal-admin is plain http, which is not fetched unless the operator names it \(--credentials-for http:\/\/127\.0\.0\.1:9\/\)$/,
    );
    await assert.rejects(
      fetchChart({ repoURL: 'oci://127.0.0.1:9/charts', name: 'x', version: '1.0.0', insecure: true }),
      /the chart repository http:\/\/127\.0\.0\.1:9\/ is plain http/,
    );
    // Named: it is asked (and here nothing listens, so it fails at the connection, not the policy).
    await assert.rejects(fetchChart({ repoURL: 'http://127.0.0.1:9/internal-admin', name: 'x' }, { httpPrefixes: ['http://127.0.0.1:9/'] }), (error: Error) => {
      assert.doesNotMatch(error.message, /plain http/);
      return true;
    });
  });
});
