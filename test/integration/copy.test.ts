/**
 * The copy engine against real `docker-registry` servers on 127.0.0.1: plain HTTP, TLS with a
 * generated CA, htpasswd Basic auth, and token auth verified by the registry; faults injected by
 * a proxy in front of a real registry.
 */
import assert from 'node:assert/strict';
import diagnostics from 'node:diagnostics_channel';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { request } from 'undici';
import { startFaultProxy } from '../../devenv/fault-proxy.ts';
import { startRegistryServer, type RegistryServer } from '../../devenv/registry-server.ts';
import { manifestDigestAt, seedDispatcher, seedImage, type SeedImageSpec } from '../../devenv/seed.ts';
import { createCertificateAuthority, createServerCertificate } from '../../devenv/tls.ts';
import { startTokenServer } from '../../devenv/token-server.ts';
import { RegistryError } from '../../src/errors.ts';
import { parseReference } from '../../src/image/reference.ts';
import { TagPolicy } from '../../src/image/tag-policy.ts';
import { CredentialStore } from '../../src/registry/credentials.ts';
import { createRegistryStack, type RegistryStackOptions } from '../../src/registry/index.ts';

const KiB = 1024;
const fastRetry = { attempts: 4, baseDelayMs: 20, maxDelayMs: 100, maxRetryAfterSeconds: 5 };

const small = (repository: string, tag: string, format: 'docker' | 'oci' = 'docker', extra: Partial<SeedImageSpec> = {}): SeedImageSpec => ({
  repository,
  tag,
  format,
  layers: [
    { seed: 'base-os', size: 300 * KiB, shared: true },
    { seed: `${repository}:${tag}`, size: 100 * KiB },
  ],
  ...extra,
});

function stack(options: RegistryStackOptions) {
  return createRegistryStack({ retry: fastRetry, ...options });
}

describe('copy between plain-HTTP registries', () => {
  let source: RegistryServer;
  let backup: RegistryServer;
  before(async () => {
    [source, backup] = await Promise.all([startRegistryServer(), startRegistryServer()]);
  });
  after(async () => {
    await Promise.all([source?.stop(), backup?.stop()]);
  });
  const insecure = () => ({ insecureRegistries: [source.address, backup.address] });
  const ref = (registry: RegistryServer, name: string) => parseReference(`${registry.address}/${name}`);

  for (const [label, format, platforms] of [
    ['Docker v2 schema 2 manifest', 'docker', undefined],
    ['OCI image manifest', 'oci', undefined],
    [
      'Docker manifest list (3 platforms)',
      'docker',
      [
        { os: 'linux', architecture: 'amd64' },
        { os: 'linux', architecture: 'arm64', variant: 'v8' },
        { os: 'linux', architecture: 'arm', variant: 'v7' },
      ],
    ],
    [
      'OCI index (2 platforms)',
      'oci',
      [
        { os: 'linux', architecture: 'amd64' },
        { os: 'linux', architecture: 's390x' },
      ],
    ],
  ] as const) {
    it(`copies a ${label} byte for byte, so the digest is preserved`, async () => {
      const repository = `formats/${format}${platforms ? `-${platforms.length}` : ''}`;
      const seeded = await seedImage({ url: source.url }, small(repository, 'v1', format, platforms ? { platforms } : {}));
      const { engine, close } = stack(insecure());
      try {
        const result = await engine.copy({ source: ref(source, `${repository}:v1`), destination: ref(backup, `mirror/${repository}:v1`) });
        assert.equal(result.outcome, 'copied');
        assert.equal(result.digest, seeded.digest);
        assert.equal(await manifestDigestAt({ url: backup.url }, `mirror/${repository}`, 'v1'), seeded.digest);
        for (const child of seeded.children)
          assert.equal(await manifestDigestAt({ url: backup.url }, `mirror/${repository}`, child), child, 'every platform copied');
        assert.equal(result.platforms.length, platforms?.length ?? 0);
        if (platforms) assert.ok(result.platforms.includes('linux/arm64/v8') || result.platforms.includes('linux/s390x'));
        // Every layer is in the backup repository.
        for (const layer of seeded.layerDigests) {
          const head = await request(`${backup.url}/v2/mirror/${repository}/blobs/${layer}`, { method: 'HEAD' });
          await head.body.dump();
          assert.equal(head.statusCode, 200, `layer ${layer}`);
        }
      } finally {
        await close();
      }
    });
  }

  it('sends one request after another over one connection: none opened for each (a TCP and TLS handshake more over a WAN)', async () => {
    await seedImage({ url: source.url }, small('reuse/app', 'latest'));
    const { engine, close } = stack(insecure());
    const opened = new Map<string, number>();
    const count = ({ connectParams }: { connectParams: { host: string } }) => opened.set(connectParams.host, (opened.get(connectParams.host) ?? 0) + 1);
    const channel = diagnostics.channel('undici:client:connected');
    try {
      await engine.copy({ source: ref(source, 'reuse/app:latest'), destination: ref(backup, 'mirror/reuse/app:latest') });
    } finally {
      await close();
    }
    // A re-check of a backed-up mutable tag: GET /v2/ then HEAD of the manifest, on each side, in turn.
    // Without referrers: distribution 2.8 answers every HEAD with `Connection: close`, so what a
    // re-check asks after it (the referrers: referrers.test.ts) needs a connection of its own.
    const { engine: again, close: closeAgain } = stack({ ...insecure(), referrers: { mode: 'none' } });
    channel.subscribe(count as (message: unknown) => void);
    try {
      const result = await again.copy({ source: ref(source, 'reuse/app:latest'), destination: ref(backup, 'mirror/reuse/app:latest') });
      assert.equal(result.outcome, 'unchanged');
    } finally {
      channel.unsubscribe(count as (message: unknown) => void);
      await closeAgain();
    }
    assert.deepEqual(Object.fromEntries(opened), { [source.address]: 1, [backup.address]: 1 });
  });

  it('trusts an immutable tag once backed up, and re-checks latest by digest', async () => {
    await seedImage({ url: source.url }, small('policy/app', '1.0'));
    await seedImage({ url: source.url }, small('policy/app', 'latest'));
    const { engine, close } = stack(insecure());
    try {
      const copy = (tag: string) => engine.copy({ source: ref(source, `policy/app:${tag}`), destination: ref(backup, `policy/app:${tag}`) });
      assert.equal((await copy('1.0')).outcome, 'copied');
      assert.equal((await copy('latest')).outcome, 'copied');
      // The source moves both tags to new content.
      const moved10 = await seedImage({ url: source.url }, { ...small('policy/app', '1.0'), layers: [{ seed: 'moved-1.0', size: 10 * KiB }] });
      const movedLatest = await seedImage({ url: source.url }, { ...small('policy/app', 'latest'), layers: [{ seed: 'moved-latest', size: 10 * KiB }] });
      const again10 = await copy('1.0');
      assert.equal(again10.outcome, 'present', 'an immutable tag already backed up is not copied again');
      assert.notEqual(again10.digest, moved10.digest);
      const againLatest = await copy('latest');
      assert.equal(againLatest.outcome, 'copied', 'latest is re-checked and copied when the source changed');
      assert.equal(againLatest.digest, movedLatest.digest);
      assert.equal((await copy('latest')).outcome, 'unchanged');
    } finally {
      await close();
    }
  });

  it('re-checks tags matching a configured mutable pattern', async () => {
    await seedImage({ url: source.url }, small('policy/snap', '2.0-SNAPSHOT'));
    const { engine, close } = stack({ ...insecure(), tagPolicy: new TagPolicy(['latest', '*-SNAPSHOT']) });
    try {
      const copy = () => engine.copy({ source: ref(source, 'policy/snap:2.0-SNAPSHOT'), destination: ref(backup, 'policy/snap:2.0-SNAPSHOT') });
      assert.equal((await copy()).outcome, 'copied');
      const moved = await seedImage({ url: source.url }, { ...small('policy/snap', '2.0-SNAPSHOT'), layers: [{ seed: 'snap-2', size: KiB }] });
      const again = await copy();
      assert.equal(again.outcome, 'copied');
      assert.equal(again.digest, moved.digest);
    } finally {
      await close();
    }
  });

  it('mounts blobs that already sit in another repository of the backup registry', async () => {
    await seedImage({ url: source.url }, small('mount/app', 'v1'));
    const { engine, close } = stack(insecure());
    try {
      const first = await engine.copy({ source: ref(source, 'mount/app:v1'), destination: ref(backup, 'mount-a/app:v1') });
      assert.equal(first.blobs.transferred, 3);
      const second = await engine.copy({ source: ref(source, 'mount/app:v1'), destination: ref(backup, 'mount-b/app:v1') });
      assert.equal(second.blobs.transferred, 0);
      assert.equal(second.blobs.mounted, 3);
      // Source and target in one registry: mount straight from the source repository.
      const local = await engine.copy({ source: ref(backup, 'mount-a/app:v1'), destination: ref(backup, 'mount-c/app:v1') });
      assert.equal(local.blobs.transferred, 0);
      assert.equal(local.blobs.mounted, 3);
    } finally {
      await close();
    }
  });

  it('transfers a base layer shared by a batch of images once', async () => {
    const names = ['a', 'b', 'c', 'd', 'e', 'f'];
    await Promise.all(names.map((n) => seedImage({ url: source.url }, small(`dedupe/${n}`, 'v1'))));
    const { engine, close } = stack(insecure());
    try {
      const results = await engine.copyAll(names.map((n) => ({ source: ref(source, `dedupe/${n}:v1`), destination: ref(backup, `dedupe-out/${n}:v1`) })));
      assert.ok(
        results.every((r) => r.ok),
        JSON.stringify(results.filter((r) => !r.ok).map((r) => !r.ok && r.error.message)),
      );
      const transferred = results.reduce((sum, r) => sum + (r.ok ? r.result.blobs.transferred : 0), 0);
      const mounted = results.reduce((sum, r) => sum + (r.ok ? r.result.blobs.mounted : 0), 0);
      // 6 own layers + 6 configs + the shared base once; the base reaches the other 5 by mount.
      assert.equal(transferred, 13);
      assert.equal(mounted, 5);
    } finally {
      await close();
    }
  });

  it('copies the same request asked twice at once only once', async () => {
    await seedImage({ url: source.url }, small('dupe/app', 'v1'));
    const { engine, close } = stack(insecure());
    try {
      const request = { source: ref(source, 'dupe/app:v1'), destination: ref(backup, 'dupe/app:v1') };
      const [a, b] = await Promise.all([engine.copy(request), engine.copy(request)]);
      assert.equal(a, b);
    } finally {
      await close();
    }
  });

  it('names the image, the registry and the status when a tag does not exist', async () => {
    const { engine, close } = stack(insecure());
    try {
      await assert.rejects(
        engine.copy({ source: ref(source, 'nothing/here:v9'), destination: ref(backup, 'nothing/here:v9') }),
        (error: unknown) => error instanceof RegistryError && error.message.includes(`${source.address}/nothing/here:v9`) && /404/.test(error.message),
      );
    } finally {
      await close();
    }
  });

  it('copies a digest-pinned reference and keeps it alive under a digest tag', async () => {
    const seeded = await seedImage({ url: source.url }, small('pinned/app', 'v1'));
    const { engine, close } = stack(insecure());
    try {
      const result = await engine.copy({ source: ref(source, `pinned/app@${seeded.digest}`), destination: ref(backup, `pinned/app@${seeded.digest}`) });
      assert.equal(result.digest, seeded.digest);
      assert.equal(await manifestDigestAt({ url: backup.url }, 'pinned/app', seeded.digest.replace(':', '-')), seeded.digest);
    } finally {
      await close();
    }
  });
});

describe('copy with TLS, Basic auth and token auth', () => {
  let dir: string;
  let caFile: string;
  let tlsSource: RegistryServer;
  let basicBackup: RegistryServer;
  let tokenBackup: RegistryServer;
  let tokenServer: Awaited<ReturnType<typeof startTokenServer>>;
  const password = 'correct horse battery staple';

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'image-clone-tls-'));
    const ca = await createCertificateAuthority(dir);
    caFile = ca.certFile;
    const cert = await createServerCertificate(dir, ca);
    tokenServer = await startTokenServer({ users: { robot: password }, anonymousPull: false, dir });
    [tlsSource, basicBackup, tokenBackup] = await Promise.all([
      startRegistryServer({ tls: { ...cert, caFile } }),
      startRegistryServer({ auth: { kind: 'basic', users: { robot: password } } }),
      startRegistryServer({
        auth: { kind: 'token', realm: tokenServer.realm, service: tokenServer.service, issuer: tokenServer.issuer, rootCertFile: tokenServer.rootCertFile },
      }),
    ]);
    const dispatcher = seedDispatcher(readFileSync(caFile, 'utf8'));
    await seedImage(
      { url: tlsSource.url, dispatcher },
      small('secure/app', 'v1', 'oci', {
        platforms: [
          { os: 'linux', architecture: 'amd64' },
          { os: 'linux', architecture: 'arm64' },
        ],
      }),
    );
    await dispatcher.close();
  });
  after(async () => {
    await Promise.all([tlsSource?.stop(), basicBackup?.stop(), tokenBackup?.stop(), tokenServer?.stop()]);
    rmSync(dir, { recursive: true, force: true });
  });

  const credentials = (user: string, pass: string) => {
    const store = new CredentialStore([
      [basicBackup.address, { username: user, password: pass }],
      [tokenBackup.address, { username: user, password: pass }],
    ]);
    return () => store;
  };
  const src = () => parseReference(`${tlsSource.address}/secure/app:v1`);

  it('verifies TLS against a CA given with caFile, and explains a failure without it', async () => {
    const trusting = stack({ caFile, insecureRegistries: [basicBackup.address], credentials: credentials('robot', password) });
    const result = await trusting.engine.copy({ source: src(), destination: parseReference(`${basicBackup.address}/tls/app:v1`) });
    assert.equal(result.outcome, 'copied');
    await trusting.close();

    const untrusting = stack({ insecureRegistries: [basicBackup.address], credentials: credentials('robot', password) });
    await assert.rejects(
      untrusting.engine.copy({ source: src(), destination: parseReference(`${basicBackup.address}/tls/app2:v1`) }),
      /TLS verification failed.*--ca-file/,
    );
    await untrusting.close();
  });

  it('pushes with Basic auth, and refuses a wrong password without printing it', async () => {
    const good = stack({ caFile, insecureRegistries: [basicBackup.address], credentials: credentials('robot', password) });
    assert.equal((await good.engine.copy({ source: src(), destination: parseReference(`${basicBackup.address}/basic/app:v1`) })).outcome, 'copied');
    await good.close();

    const wrong = 'not-the-password-canary';
    const bad = stack({ caFile, insecureRegistries: [basicBackup.address], credentials: credentials('robot', wrong) });
    await assert.rejects(bad.engine.copy({ source: src(), destination: parseReference(`${basicBackup.address}/basic/app2:v1`) }), (error: Error) => {
      assert.match(error.message, /refused the credentials.*401/);
      assert.ok(!error.message.includes(wrong));
      assert.ok(!error.message.includes(Buffer.from(`robot:${wrong}`).toString('base64')));
      return true;
    });
    await bad.close();
  });

  it('pushes with registry-verified bearer tokens, scoped per repository and cached', async () => {
    const before = tokenServer.requests.length;
    const good = stack({ caFile, insecureRegistries: [tokenBackup.address], credentials: credentials('robot', password) });
    const result = await good.engine.copy({ source: src(), destination: parseReference(`${tokenBackup.address}/token/app:v1`) });
    assert.equal(result.outcome, 'copied');
    const asked = tokenServer.requests.slice(before);
    assert.ok(
      asked.some((r) => r.user === 'robot' && r.scopes.includes('repository:token/app:pull,push')),
      JSON.stringify(asked),
    );
    assert.ok(asked.length <= 3, `tokens are cached: ${asked.length} token requests`);
    assert.equal((await good.engine.copy({ source: src(), destination: parseReference(`${tokenBackup.address}/token/app:v1`) })).outcome, 'present');
    await good.close();

    const bad = stack({ caFile, insecureRegistries: [tokenBackup.address], credentials: credentials('robot', 'wrong-canary') });
    await assert.rejects(bad.engine.copy({ source: src(), destination: parseReference(`${tokenBackup.address}/token/app2:v1`) }), (error: Error) => {
      assert.match(error.message, /token server .* refused the credentials of user "robot"/);
      assert.ok(!error.message.includes('wrong-canary'));
      return true;
    });
    await bad.close();
  });

  it('reads credentials from a Docker config.json', () => {
    const file = join(dir, 'config.json');
    writeFileSync(
      file,
      JSON.stringify({
        auths: { 'https://index.docker.io/v1/': { auth: Buffer.from('hub:pw').toString('base64') }, [basicBackup.address]: { username: 'robot', password } },
      }),
    );
    const store = CredentialStore.fromFile(file);
    assert.deepEqual(store.get('docker.io'), { username: 'hub', password: 'pw' });
    assert.deepEqual(store.get(basicBackup.address), { username: 'robot', password });
    writeFileSync(file, '{"auths": {"x.io": {"auth": "bm9jb2xvbg=="}}}');
    assert.throws(() => CredentialStore.fromFile(file), /"x.io".*neither a valid "auth"/);
  });
});

describe('copy through injected faults', () => {
  let source: RegistryServer;
  let backup: RegistryServer;
  before(async () => {
    [source, backup] = await Promise.all([startRegistryServer({ auth: { kind: 'basic', users: { reader: 'reader-pw' } } }), startRegistryServer()]);
    const authorization = `Basic ${Buffer.from('reader:reader-pw').toString('base64')}`;
    await seedImage({ url: source.url, authorization }, small('faults/app', 'v1'));
  });
  after(async () => {
    await Promise.all([source?.stop(), backup?.stop()]);
  });

  async function withProxy(
    fn: (proxy: Awaited<ReturnType<typeof startFaultProxy>>, copy: (dst: string) => Promise<unknown>) => Promise<void>,
    options: { cdnInsecure?: boolean } = {},
  ) {
    const proxy = await startFaultProxy(source.url);
    const store = new CredentialStore([[proxy.address, { username: 'reader', password: 'reader-pw' }]]);
    const insecure = [proxy.address, backup.address, ...(options.cdnInsecure === false ? [] : [proxy.cdnAddress])];
    const { engine, close } = stack({ insecureRegistries: insecure, credentials: () => store });
    try {
      await fn(proxy, (dst) =>
        engine.copy({ source: parseReference(`${proxy.address}/faults/app:v1`), destination: parseReference(`${backup.address}/${dst}:v1`) }),
      );
    } finally {
      await close();
      await proxy.stop();
    }
  }

  it('waits as long as a 429 Retry-After says, then succeeds', async () => {
    await withProxy(async (proxy, copy) => {
      proxy.rules.push({ method: 'GET', path: /\/manifests\//, fault: { kind: 'status', status: 429, headers: { 'retry-after': '1' } }, times: 1 });
      const started = Date.now();
      await copy('faults/429');
      assert.ok(Date.now() - started >= 1000, 'waited for Retry-After');
      assert.equal(proxy.rules[0]?.times, 0);
    });
  });

  it('retries a 500 and succeeds', async () => {
    await withProxy(async (proxy, copy) => {
      proxy.rules.push({ path: /\/blobs\/sha256/, fault: { kind: 'status', status: 500 }, times: 2 });
      await copy('faults/500');
      assert.equal(proxy.rules[0]?.times, 0);
    });
  });

  it('opens an upload session only once the source answers: a refused GET is retried without one', async () => {
    const sourceProxy = await startFaultProxy(source.url);
    const backupProxy = await startFaultProxy(backup.url);
    const store = new CredentialStore([[sourceProxy.address, { username: 'reader', password: 'reader-pw' }]]);
    const { engine, close } = stack({ insecureRegistries: [sourceProxy.address, backupProxy.address], credentials: () => store });
    try {
      sourceProxy.rules.push({ method: 'GET', path: /\/blobs\/sha256/, fault: { kind: 'status', status: 503 }, times: 3 });
      await engine.copy({
        source: parseReference(`${sourceProxy.address}/faults/app:v1`),
        destination: parseReference(`${backupProxy.address}/faults/sessions:v1`),
      });
      assert.equal(sourceProxy.rules[0]?.times, 0, 'three GETs were refused');
      const blobs = sourceProxy.log.filter((l) => /^GET \/v2\/faults\/app\/blobs\//.test(l)).length - 3;
      const sessions = backupProxy.log.filter((l) => /^POST \/v2\/faults\/sessions\/blobs\/uploads\/$/.test(l)).length;
      assert.equal(sessions, blobs, 'one upload session per blob, none for a refused GET');
      assert.equal(backupProxy.log.filter((l) => l.startsWith('DELETE ')).length, 0, 'no session abandoned');
    } finally {
      await close();
      await Promise.all([sourceProxy.stop(), backupProxy.stop()]);
    }
  });

  it('reopens a blob whose connection dropped mid-body', async () => {
    await withProxy(async (proxy, copy) => {
      proxy.rules.push({ method: 'GET', path: /\/blobs\/sha256/, fault: { kind: 'cut-body', afterBytes: 50 * KiB }, times: 1 });
      await copy('faults/cut');
      assert.equal(proxy.rules[0]?.times, 0);
      assert.ok(await manifestDigestAt({ url: backup.url }, 'faults/cut', 'v1'), 'the image landed');
    });
  });

  it('follows a blob redirect to another host without the registry Authorization header', async () => {
    await withProxy(async (proxy, copy) => {
      proxy.rules.push({ method: 'GET', path: /\/blobs\/sha256/, fault: { kind: 'redirect-to-cdn' }, times: Infinity });
      await copy('faults/redirect');
      assert.ok(proxy.cdnAuthorization.length >= 3, 'blobs came from the CDN');
      assert.deepEqual(
        proxy.cdnAuthorization.filter((a) => a !== undefined),
        [],
      );
    });
  });

  it('does not follow a redirect to plain http on a host not named insecure (a hostile registry steering to an internal service)', async () => {
    await withProxy(
      async (proxy, copy) => {
        proxy.rules.push({ method: 'GET', path: /\/blobs\/sha256/, fault: { kind: 'redirect-to-cdn' }, times: Infinity });
        await assert.rejects(
          copy('faults/steered'),
          /redirected to a http URL, which is not followed \(only https, or a host named with --insecure-registry\)/,
        );
        assert.deepEqual(proxy.cdnAuthorization, [], 'the other host received no request at all');
      },
      { cdnInsecure: false },
    );
  });

  it('gives up after bounded attempts, naming image, registry and status, and leaves no tag behind', async () => {
    await withProxy(async (proxy, copy) => {
      proxy.rules.push({ method: 'GET', path: /\/blobs\/sha256/, fault: { kind: 'status', status: 503 }, times: Infinity });
      await assert.rejects(copy('faults/never'), (error: Error) => {
        assert.match(error.message, new RegExp(`${proxy.address}/faults/app:v1`));
        assert.match(error.message, /HTTP 503/);
        return true;
      });
      assert.equal(await manifestDigestAt({ url: backup.url }, 'faults/never', 'v1'), undefined, 'no tag points at a half-copied image');
    });
  });
});
