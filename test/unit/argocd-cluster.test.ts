import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { argoCdCluster } from '../../src/cluster/argocd-cluster.ts';
import { scrub } from '../../src/observability/secrets.ts';

const WHERE = 'the Argo CD cluster Secret argocd/east';
const CA = Buffer.from('-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n').toString('base64');
const config = (value: object) => JSON.stringify(value);

describe('an Argo CD cluster Secret, read as Argo CD reads it, or refused with the reason', () => {
  it('reaches the spoke with its bearer token and CA, and names it by its name and server', () => {
    const token = 'spoke-token-7f3a9c1e';
    const spoke = argoCdCluster(WHERE, {
      name: 'east',
      server: 'https://east.example.test:6443/',
      config: config({ bearerToken: token, tlsClientConfig: { insecure: false, caData: CA, serverName: 'kubernetes' } }),
    });
    const cluster = spoke.kubeConfig.getCurrentCluster()!;
    assert.equal(cluster.server, 'https://east.example.test:6443');
    assert.equal(cluster.caData, CA);
    assert.equal(cluster.tlsServerName, 'kubernetes');
    assert.equal(cluster.skipTLSVerify, false);
    assert.equal(spoke.kubeConfig.getCurrentUser()?.token, token);
    assert.deepEqual(spoke.destinations, ['east', 'https://east.example.test:6443/', 'https://east.example.test:6443']);
    assert.equal(spoke.clusterName, 'east');
    assert.equal(scrub(`request failed with ${token}`).includes(token), false, 'the token is held from every log line');
  });

  it('takes the shape `argocd cluster add` writes (insecure: false always present, compression off, nothing else)', () => {
    const spoke = argoCdCluster(WHERE, {
      name: 'gke_prod',
      server: 'https://10.0.0.1',
      config: config({ bearerToken: 't-81d2', tlsClientConfig: { insecure: false, caData: CA }, disableCompression: true, awsAuthConfig: null }),
    });
    assert.deepEqual(spoke.destinations, ['gke_prod', 'https://10.0.0.1']);
    assert.equal(spoke.clusterName, undefined, 'gke_prod is no DNS label: the uid names the cluster');
  });

  it('takes basic auth and a client certificate; a name that is no DNS label is no cluster name', () => {
    const basic = argoCdCluster(WHERE, { name: 'East Prod', server: 'https://e.test', config: config({ username: 'u', password: 'p-3c9e1' }) });
    assert.equal(basic.kubeConfig.getCurrentUser()?.username, 'u');
    assert.equal(basic.clusterName, undefined);
    const cert = argoCdCluster(WHERE, { name: 'e', server: 'https://e.test', config: config({ tlsClientConfig: { certData: CA, keyData: 'a2V5LTFmOWE=' } }) });
    assert.equal(cert.kubeConfig.getCurrentUser()?.certData, CA);
  });

  const refusals: Array<[string, Parameters<typeof argoCdCluster>[1], RegExp]> = [
    ['no server', { name: 'e', config: config({ bearerToken: 't' }) }, /has no server$/],
    ['plain http', { server: 'http://e.test', config: config({ bearerToken: 't' }) }, /must be https/],
    ['insecure TLS', { server: 'https://e.test', config: config({ bearerToken: 't', tlsClientConfig: { insecure: true } }) }, /asks for insecure TLS/],
    [
      'an exec plugin',
      { server: 'https://e.test', config: config({ execProviderConfig: { command: '/bin/sh' } }) },
      /sets execProviderConfig, which the copier does not support/,
    ],
    ['AWS IAM', { server: 'https://e.test', config: config({ awsAuthConfig: { clusterName: 'x' }, bearerToken: 't' }) }, /sets awsAuthConfig/],
    ['a proxy', { server: 'https://e.test', config: config({ bearerToken: 't', proxyUrl: 'http://p' }) }, /sets proxyUrl/],
    ['no credentials', { server: 'https://e.test', config: config({ tlsClientConfig: { caData: CA } }) }, /has no credentials/],
    ['a config that is not JSON', { server: 'https://e.test', config: '{bearerToken' }, /its config is not JSON$/],
    ['a token that is no string', { server: 'https://e.test', config: config({ bearerToken: 42 }) }, /bearerToken has the wrong type/],
    ['some namespaces only', { server: 'https://e.test', namespaces: 'shop,web', config: config({ bearerToken: 't' }) }, /reach only some namespaces/],
    ['a server with a user in it', { server: 'https://admin:pw-1234567@e.test', config: config({ bearerToken: 't' }) }, /must be a plain https URL/],
    [
      'the hub itself (in-cluster)',
      { name: 'in-cluster', server: 'https://e.test', config: config({ bearerToken: 't' }) },
      /names the cluster Argo CD runs in/,
    ],
    ['the hub itself (its service)', { server: 'https://kubernetes.default.svc', config: config({ bearerToken: 't' }) }, /names the cluster Argo CD runs in/],
    [
      'a token a header cannot carry',
      { server: 'https://e.test', config: config({ bearerToken: 'abc\u0000def-12345' }) },
      /bearerToken holds a control character/,
    ],
  ];
  for (const [what, fields, reason] of refusals)
    it(`refuses ${what}`, () => {
      assert.throws(
        () => argoCdCluster(WHERE, fields),
        (error: Error) => error.name === 'ConfigError' && error.message.startsWith(WHERE) && reason.test(error.message),
      );
    });

  it('never quotes a value of the Secret in a refusal', () => {
    const secret = 'hunter2-e9f1';
    for (const fields of [
      { server: `https://e.test`, config: `{"bearerToken": "${secret}"` },
      { server: `https://e.test`, config: config({ bearerToken: secret, tlsClientConfig: { insecure: true } }) },
      { server: secret, config: config({ bearerToken: secret }) },
    ])
      assert.throws(
        () => argoCdCluster(WHERE, fields),
        (error: Error) => !error.message.includes(secret),
      );
  });
});
