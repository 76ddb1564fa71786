import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ImageReferenceError } from '../../src/errors.ts';
import { effectiveTag, formatReference, parseReference } from '../../src/image/reference.ts';

const D = `sha256:${'a'.repeat(64)}`;

describe('parseReference normalises like Docker and Kubernetes', () => {
  const cases: Array<[string, string]> = [
    ['nginx', 'docker.io/library/nginx:latest'],
    ['nginx:1.25', 'docker.io/library/nginx:1.25'],
    ['library/nginx', 'docker.io/library/nginx:latest'],
    ['bitnami/redis:7', 'docker.io/bitnami/redis:7'],
    ['docker.io/nginx', 'docker.io/library/nginx:latest'],
    ['index.docker.io/library/nginx:1', 'docker.io/library/nginx:1'],
    ['quay.io/nginx', 'quay.io/nginx:latest'],
    ['localhost/app', 'localhost/app:latest'],
    ['localhost:5000/app:v1', 'localhost:5000/app:v1'],
    ['127.0.0.1:5000/a/b/c:tag', '127.0.0.1:5000/a/b/c:tag'],
    ['Registry.Example.com/team/app', 'Registry.Example.com/team/app:latest'],
    ['[::1]:5000/app', '[::1]:5000/app:latest'],
    [`nginx@${D}`, `docker.io/library/nginx@${D}`],
    [`nginx:1.25@${D}`, `docker.io/library/nginx:1.25@${D}`],
    ['ghcr.io/org/a__b.c-d---e:v1.2_3-rc.4', 'ghcr.io/org/a__b.c-d---e:v1.2_3-rc.4'],
    ['registry.k8s.io/pause:3.9', 'registry.k8s.io/pause:3.9'],
  ];
  for (const [input, expected] of cases) {
    it(`${input} → ${expected}`, () => {
      assert.equal(formatReference(parseReference(input)), expected);
    });
  }

  it('keeps registry, repository, tag and digest apart', () => {
    assert.deepEqual(parseReference(`localhost:5000/team/app:v1@${D}`), {
      registry: 'localhost:5000',
      repository: 'team/app',
      tag: 'v1',
      digest: D,
    });
  });

  it('uses latest only when there is neither tag nor digest', () => {
    assert.equal(effectiveTag(parseReference('nginx')), 'latest');
    assert.equal(effectiveTag(parseReference(`nginx@${D}`)), undefined);
    assert.equal(effectiveTag(parseReference(`nginx:1@${D}`)), '1');
  });

  it('treats nginx:1.25 and docker.io/library/nginx:1.25 as one image, nginx as another', () => {
    const same = (a: string, b: string) => formatReference(parseReference(a)) === formatReference(parseReference(b));
    assert.ok(same('nginx:1.25', 'docker.io/library/nginx:1.25'));
    assert.ok(!same('nginx', 'nginx:1.25'));
    assert.ok(same('nginx', 'nginx:latest'));
  });
});

describe('parseReference rejects malformed input with a reason', () => {
  const cases: Array<[string, RegExp]> = [
    ['', /empty/],
    [' nginx', /white space/],
    ['Nginx', /must be lowercase/],
    ['docker.io/Library/nginx', /must be lowercase/],
    ['nginx:', /tag ""/],
    ['nginx:-bad', /tag "-bad"/],
    [`nginx:${'t'.repeat(129)}`, /tag/],
    ['nginx@sha256:abc', /digest/],
    [`nginx@sha256:${'A'.repeat(64)}`, /lowercase hex/],
    [`nginx@md5:${'a'.repeat(32)}`, /not supported/],
    ['a'.repeat(64), /image ID/],
    ['nginx//x', /empty component/],
    ['/nginx', /empty component/],
    ['nginx/', /empty component/],
    ['foo_/bar', /path component "foo_"/],
    ['foo/-bar', /path component "-bar"/],
    ['-host.com/app', /not a valid host name/],
    ['host.com:99999/app', /port "99999"/],
    ['host.com:abc/app', /tag|port/],
    [`@sha256:${'a'.repeat(64)}`, /empty/],
    [`example.com/${'a/'.repeat(130)}b`, /longer than 255/],
  ];
  for (const [input, reason] of cases) {
    it(JSON.stringify(input.length > 40 ? `${input.slice(0, 40)}…` : input), () => {
      assert.throws(
        () => parseReference(input),
        (error: unknown) => error instanceof ImageReferenceError && reason.test(error.message) && error.message.includes('invalid image reference'),
      );
    });
  }
});
