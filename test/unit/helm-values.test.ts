/** The Helm values reader (src/rewriter/edit/helm-values.ts): how charts split an image, and what a change can be made to compose. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { parseDocument, type Node } from 'yaml';
import {
  composeHelmImage,
  helmComposes,
  helmImage,
  helmImageMapsIn,
  helmPartsFor,
  helmPinRefusal,
  isDefaultValuesFile,
  isValuesFile,
  repositoryKey,
} from '../../src/rewriter/edit/helm-values.ts';

const node = (yaml: string) => parseDocument(yaml).contents as Node;

describe('the Helm values reader', () => {
  it('knows a values file and the default one by name', () => {
    assert.deepEqual(['charts/a/values.yaml', 'values-prod.yml', 'values.prod.yaml', 'myvalues.yaml', 'values.json'].map(isValuesFile), [
      true,
      true,
      true,
      false,
      false,
    ]);
    assert.deepEqual(['values.yaml', 'values.yml', 'values-prod.yaml'].map(isDefaultValuesFile), [true, true, false]);
  });

  it('finds the image mappings of values with their paths, in the shapes charts use', () => {
    const values = node(
      'image: {repository: bitnami/redis, tag: 7.2.4, digest: ""}\nmetrics:\n  image: {registry: docker.io, repository: bitnami/exporter, tag: "1.5"}\ncontroller:\n  image: {registry: registry.k8s.io, image: ingress-nginx/controller, tag: v1.11.2}\nname: not-an-image\n',
    );
    assert.deepEqual(
      helmImageMapsIn(values, '').map((m) => ({ where: m.where, image: helmImage(m.map) })),
      [
        { where: 'image', image: 'bitnami/redis:7.2.4' },
        { where: 'metrics.image', image: 'docker.io/bitnami/exporter:1.5' },
        { where: 'controller.image', image: 'registry.k8s.io/ingress-nginx/controller:v1.11.2' },
      ],
    );
  });

  it('layers as Helm merges values: the last layer that sets a part wins', () => {
    const base = node('{repository: nginx, tag: "1.25"}');
    const prod = node('{tag: "1.27"}');
    assert.equal(helmImage(base, prod), 'nginx:1.27');
    assert.equal(repositoryKey([base, prod]), 'repository');
    assert.equal(repositoryKey([node('{registry: r.io, image: app, tag: "1"}')]), 'image', "ingress-nginx's spelling");
  });

  it('composes a digest from a `digest` key or a `sha` hex, and nothing without a repository', () => {
    assert.equal(composeHelmImage({ repository: 'a', tag: '1', digest: 'sha256:ab' }), 'a:1@sha256:ab');
    assert.equal(composeHelmImage({ repository: 'a', tag: '1', sha: 'ab' }), 'a:1@sha256:ab');
    assert.equal(composeHelmImage({ tag: '1' }), undefined);
  });

  it('writes the parts a change needs as the values already key them', () => {
    const digest = `sha256:${'d'.repeat(64)}`;
    assert.deepEqual(helmPartsFor(`b.io/m/redis:7.2.4@${digest}`, [node('{registry: docker.io, repository: bitnami/redis, tag: 7.2.4, digest: ""}')]), {
      registry: 'b.io',
      repository: 'm/redis',
      tag: '7.2.4',
      digest,
    });
    assert.deepEqual(helmPartsFor(`b.io/m/am:v1@${digest}`, [node('{repository: quay.io/am, tag: v1, sha: ""}')]), {
      repository: 'b.io/m/am',
      tag: 'v1',
      sha: 'd'.repeat(64),
    });
  });

  it('pins by tag where no digest key is read, and refuses a digest with no tag there, saying why', () => {
    const layers = [node('{repository: bitnami/redis, tag: 7.2.4}')];
    const digest = `sha256:${'d'.repeat(64)}`;
    assert.equal(helmPinRefusal(`b.io/redis:7.2.4@${digest}`, layers), undefined);
    assert.equal(helmComposes(layers, helmPartsFor(`b.io/redis:7.2.4@${digest}`, layers)), 'b.io/redis:7.2.4', 'the tag alone: the chart reads no digest');
    assert.match(helmPinRefusal(`b.io/redis@${digest}`, layers) ?? '', /no digest key and .* names no tag/);
    assert.equal(helmPinRefusal(`b.io/redis@${digest}`, [node('{repository: r, digest: ""}')]), undefined);
  });
});
