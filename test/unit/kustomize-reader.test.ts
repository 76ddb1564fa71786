/** The kustomization reader (src/rewriter/edit/kustomize.ts): images as kustomize splits, matches and transforms them. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { entryOutput, kustomizeMatches, nameOf, REMOTE_RESOURCE, splitImage, type KustomizeEntry } from '../../src/rewriter/edit/kustomize.ts';

const entry = (fields: Partial<KustomizeEntry>) => ({ name: 'nginx', ...fields }) as KustomizeEntry;

describe('the kustomization reader', () => {
  it('splits an image as kustomize does: a port is not a tag', () => {
    assert.deepEqual(splitImage('localhost:5000/app:1.0@sha256:ab'), { name: 'localhost:5000/app', tag: '1.0', digest: 'sha256:ab' });
    assert.deepEqual(splitImage('localhost:5000/app'), { name: 'localhost:5000/app', tag: undefined, digest: undefined });
    assert.equal(nameOf('ghcr.io/org/app:2'), 'ghcr.io/org/app');
  });

  it('matches an entry name against the image as written, up to its tag or digest', () => {
    assert.deepEqual(
      ['nginx', 'nginx:1.25', 'nginx@sha256:ab', 'nginx-exporter:1', 'docker.io/library/nginx:1.25'].map((i) => kustomizeMatches(i, 'nginx')),
      [true, true, true, false, false],
    );
  });

  it('gives what an entry makes of a literal: newName replaces the name, newTag or digest replace both', () => {
    assert.equal(entryOutput(entry({ newName: 'b.io/nginx' }), 'nginx:1.25'), 'b.io/nginx:1.25');
    assert.equal(entryOutput(entry({ newTag: '1.27' }), 'nginx:1.25@sha256:ab'), 'nginx:1.27');
    assert.equal(entryOutput(entry({ newTag: '1.27', digest: 'sha256:cd' }), 'nginx:1.25'), 'nginx:1.27@sha256:cd');
    assert.equal(entryOutput(entry({ newName: 'b.io/nginx' }), undefined), undefined, 'a rename alone pins nothing');
  });

  it('tells a URL kustomize would fetch from a path', () => {
    assert.deepEqual(
      [
        'https://github.com/org/repo//base?ref=v1',
        'git@github.com:org/repo.git',
        'github.com/org/repo/base',
        'git::https://x/y',
        'HTTPS://X/y',
        '../base',
        'base/github.com',
      ].map((r) => REMOTE_RESOURCE.test(r)),
      [true, true, true, true, true, false, false],
    );
  });
});
