/**
 * Whether an Application deploys to this cluster, as Argo CD reads its destination: a name against
 * the cluster's names, a server URL against its URLs, never one for the other.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ARGOCD_IN_CLUSTER, destinationRefused } from '../../src/cluster/gitops.ts';

const app = (destination: Record<string, string>) => ({ spec: { destination } });
const EAST = ['east', 'https://east.example.test:6443'];

describe("an Application's destination", () => {
  it('matches this cluster by its name or by its API server URL (a trailing slash aside)', () => {
    assert.equal(destinationRefused(app({ name: 'east' }), 'argocd', 'a', EAST), undefined);
    assert.equal(destinationRefused(app({ server: 'https://east.example.test:6443/' }), 'argocd', 'a', EAST), undefined);
    assert.equal(destinationRefused(app({ name: 'in-cluster' }), 'argocd', 'a', ARGOCD_IN_CLUSTER), undefined);
    assert.equal(destinationRefused(app({ server: 'https://kubernetes.default.svc' }), 'argocd', 'a', ARGOCD_IN_CLUSTER), undefined);
  });

  it('never takes a name for a server or a server for a name (Argo CD would deploy such an Application nowhere)', () => {
    assert.match(destinationRefused(app({ server: 'east' }), 'argocd', 'a', EAST) ?? '', /deploys to another cluster than this one \(its destination server/);
    assert.match(destinationRefused(app({ name: 'https://east.example.test:6443' }), 'argocd', 'a', EAST) ?? '', /its destination name/);
  });

  it('refuses both or neither, and names no cluster in its refusal (a tenant reads it in Events)', () => {
    assert.match(
      destinationRefused(app({ name: 'east', server: 'https://east.example.test:6443' }), 'argocd', 'a', EAST) ?? '',
      /names both a name and a server/,
    );
    assert.match(destinationRefused(app({}), 'argocd', 'a', EAST) ?? '', /names no destination cluster/);
    const refused = destinationRefused(app({ name: 'west-prod' }), 'argocd', 'shop', EAST) ?? '';
    assert.match(refused, /^Application argocd\/shop deploys to another cluster than this one/);
    assert.doesNotMatch(refused, /west|east/);
  });
});
