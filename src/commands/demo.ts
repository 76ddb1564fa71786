/**
 * `image-clone demo`: the whole copy path on one machine with nothing outside it. Starts a local
 * "public" registry seeded with a multi-platform image, and an empty backup registry (both real
 * docker-registry servers on 127.0.0.1), backs the image up through the same code the controller
 * uses, proves the digest survived, shows that a second pass copies nothing, and cleans up.
 */
import { startRegistryServer, type RegistryServer } from '../devenv/registry-server.ts';
import { seedImage } from '../devenv/seed.ts';
import { describeError } from '../errors.ts';
import { backupReference, parseBackupTarget } from '../image/backup.ts';
import { formatReference, parseReference } from '../image/reference.ts';
import { createRegistryStack } from '../registry/index.ts';
import { formatBytes } from './copy.ts';

export async function demoCommand(say: (line: string) => void): Promise<number> {
  const servers: RegistryServer[] = [];
  const step = (n: number, text: string) => say(`\n[${n}/5] ${text}`);
  try {
    step(1, 'Starting two real registries on 127.0.0.1 (docker-registry): a "public" one and your backup registry');
    const [publicRegistry, backupRegistry] = await Promise.all([startRegistryServer(), startRegistryServer()]);
    servers.push(publicRegistry, backupRegistry);
    say(`      public registry: ${publicRegistry.url}\n      backup registry: ${backupRegistry.url}`);

    step(2, 'Seeding the public registry with demo/web:1.0, an OCI index for linux/amd64 and linux/arm64 (a shared 4 MiB base layer and a 2 MiB layer per platform)');
    const seeded = await seedImage({ url: publicRegistry.url }, {
      repository: 'demo/web',
      tag: '1.0',
      format: 'oci',
      platforms: [{ os: 'linux', architecture: 'amd64' }, { os: 'linux', architecture: 'arm64', variant: 'v8' }],
      layers: [{ seed: 'demo-base', size: 4 << 20, shared: true }, { seed: 'demo-app', size: 2 << 20 }],
    });
    say(`      source digest: ${seeded.digest}`);

    const source = parseReference(`${publicRegistry.address}/demo/web:1.0`);
    const target = parseBackupTarget(`${backupRegistry.address}/backup`);
    const destination = backupReference(source, target);
    step(3, `Backing up ${formatReference(source)}\n      to ${formatReference(destination)} (the controller's default naming: PREFIX/<source host>/<path>)`);
    const stack = createRegistryStack({ insecureRegistries: [publicRegistry.address, backupRegistry.address] });
    try {
      const started = Date.now();
      const first = await stack.engine.copy({ source, destination });
      say(`      ${first.outcome}: ${first.digest}, platforms ${first.platforms.join(', ')}, ${formatBytes(first.blobs.bytesTransferred)} transferred in ${Date.now() - started} ms`);

      step(4, 'Checking the backup: the digest in the backup registry must equal the source digest');
      const stored = await stack.client.headManifest(destination, '1.0');
      if (stored?.digest !== seeded.digest) throw new Error(`the backup has digest ${stored?.digest}, expected ${seeded.digest}`);
      say(`      backup digest: ${stored.digest}  ✔ identical, so a workload pinned to it runs the very same image`);

      step(5, 'Running the backup again: an immutable tag already backed up costs one HEAD request and copies nothing');
      const second = await stack.engine.copy({ source, destination });
      say(`      ${second.outcome}: ${second.digest}`);
    } finally {
      await stack.close();
    }
    say('\nDone. The registries are stopped and their data removed. Next: `image-clone copy --help`.');
    return 0;
  } catch (error) {
    say(`\ndemo failed: ${describeError(error)}`);
    return 1;
  } finally {
    await Promise.all(servers.map((s) => s.stop()));
  }
}
