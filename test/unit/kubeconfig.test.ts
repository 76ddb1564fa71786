/** Which cluster the controller talks to, and the one-line error when there is none. */
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, it } from 'node:test';
import { loadKubeConfig } from '../../src/cluster/kubeconfig.ts';
import { ConfigError } from '../../src/errors.ts';

const KUBECONFIG = JSON.stringify({
  apiVersion: 'v1',
  kind: 'Config',
  'current-context': 'c',
  clusters: [{ name: 'k', cluster: { server: 'https://127.0.0.1:6443' } }],
  users: [{ name: 'u', user: { token: 't' } }],
  contexts: [{ name: 'c', context: { cluster: 'k', user: 'u' } }],
});

describe('loadKubeConfig', () => {
  let home: string;
  const saved = { HOME: process.env.HOME, KUBECONFIG: process.env.KUBECONFIG };
  beforeEach(() => {
    home = mkdtempSync(join(tmpdir(), 'kubeconfig-home-'));
    process.env.HOME = home;
    delete process.env.KUBECONFIG;
  });
  afterEach(() => {
    for (const [k, v] of Object.entries(saved))
      if (v === undefined) delete process.env[k];
      else process.env[k] = v;
    rmSync(home, { recursive: true, force: true });
  });

  it('says there is no cluster rather than falling back to http://localhost:8080', () => {
    assert.throws(
      () => loadKubeConfig(undefined),
      (error: Error) => {
        assert.ok(error instanceof ConfigError);
        assert.match(
          error.message,
          /^no cluster to talk to: no --kubeconfig, no \$KUBECONFIG, no ~\/\.kube\/config, and no service account token at \/var\/run\/secrets\/kubernetes\.io\/serviceaccount\/token/,
        );
        return true;
      },
    );
  });

  it('reads ~/.kube/config, $KUBECONFIG and --kubeconfig', () => {
    mkdirSync(join(home, '.kube'));
    writeFileSync(join(home, '.kube', 'config'), KUBECONFIG);
    assert.equal(loadKubeConfig(undefined).getCurrentCluster()?.server, 'https://127.0.0.1:6443');
    const other = join(home, 'other');
    writeFileSync(other, KUBECONFIG.replace('6443', '7443'));
    process.env.KUBECONFIG = other;
    assert.equal(loadKubeConfig(undefined).getCurrentCluster()?.server, 'https://127.0.0.1:7443');
    assert.equal(loadKubeConfig(join(home, '.kube', 'config')).getCurrentCluster()?.server, 'https://127.0.0.1:6443');
  });

  it('names the file it cannot read', () => {
    assert.throws(() => loadKubeConfig(join(home, 'missing')), /^ConfigError: cannot load the kubeconfig .*missing/);
  });
});
