import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { parseManifest } from '../../src/registry/manifest.ts';

describe('manifest parsing', () => {
  const layer = { mediaType: 'application/vnd.oci.image.layer.v1.tar+gzip', digest: `sha256:${'1'.repeat(64)}`, size: 10 };
  it('reads images and indexes, with platforms', () => {
    const image = parseManifest(
      Buffer.from(JSON.stringify({ schemaVersion: 2, config: layer, layers: [layer] })),
      'application/vnd.oci.image.manifest.v1+json',
      'x',
    );
    assert.equal(image.kind, 'image');
    const index = parseManifest(
      Buffer.from(
        JSON.stringify({
          schemaVersion: 2,
          mediaType: 'application/vnd.oci.image.index.v1+json',
          manifests: [{ ...layer, platform: { os: 'linux', architecture: 'arm64', variant: 'v8' } }],
        }),
      ),
      undefined,
      'x',
    );
    assert.equal(index.kind, 'index');
    assert.deepEqual(index.kind === 'index' && index.manifests[0]?.platform, { os: 'linux', architecture: 'arm64', variant: 'v8' });
  });
  it('rejects schema 1, garbage and bad descriptors with the image named', () => {
    assert.throws(
      () => parseManifest(Buffer.from('{"schemaVersion":1}'), 'application/vnd.docker.distribution.manifest.v1+prettyjws', 'img:1'),
      /img:1: Docker schema 1/,
    );
    assert.throws(() => parseManifest(Buffer.from('<html>'), 'text/html', 'img:1'), /img:1: the manifest is not valid JSON/);
    assert.throws(
      () => parseManifest(Buffer.from(JSON.stringify({ config: layer, layers: [{ digest: 'nope', size: -1 }] })), undefined, 'img:1'),
      /layers\[0\] is not a valid descriptor/,
    );
  });
});
