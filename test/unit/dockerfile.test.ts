/**
 * The Dockerfile read, for what a build would only show late: the files it copies exist and are not
 * excluded by .dockerignore, the build emits the entrypoint it runs, the final stage runs as a
 * non-root user with the Node of a supported LTS. test/image/ builds it and runs the Pod from it.
 */
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';

const root = join(import.meta.dirname, '../..');
const dockerfile = readFileSync(join(root, 'Dockerfile'), 'utf8');
const ignored = readFileSync(join(root, '.dockerignore'), 'utf8')
  .split('\n')
  .map((l) => l.trim())
  .filter(Boolean);
const stages = dockerfile.split(/^FROM /m).slice(1);

describe('Dockerfile', () => {
  it('builds on Node 24 LTS, runs its Node binary on Debian slim, as non-root, with pinned helm and kustomize', () => {
    assert.equal(stages.length, 3);
    assert.match(stages[0]!, /^node:24-bookworm-slim AS build\n/);
    assert.match(stages[1]!, /^golang:1\.26-bookworm AS tools\n/);
    assert.match(stages[1]!, /helm\.sh\/helm\/v3\/cmd\/helm@v3\.22\.0/);
    // As scripts/build-helm.sh builds the tests' Helm: the Kubernetes version it defaults to is set, not v1.20.0.
    const script = readFileSync(join(root, 'scripts/build-helm.sh'), 'utf8');
    const [, major, minor] = /KUBE_MAJOR=(\d+) KUBE_MINOR=(\d+)/.exec(script)!;
    assert.match(stages[1]!, new RegExp(`chartutil\\.k8sVersionMajor=${major} -X helm\\.sh/helm/v3/pkg/chartutil\\.k8sVersionMinor=${minor}`));
    assert.match(script, /chartutil\.k8sVersionMajor=\$KUBE_MAJOR/);
    assert.match(stages[1]!, /sigs\.k8s\.io\/kustomize\/kustomize\/v5@v5\.7\.1/);
    assert.match(stages[2]!, /^debian:bookworm-slim\n/);
    assert.match(stages[2]!, /^COPY --from=build \/usr\/local\/bin\/node \/usr\/local\/bin\/node$/m);
    assert.match(stages[2]!, /^COPY --from=tools \/go\/bin\/helm \/go\/bin\/kustomize \/usr\/local\/bin\/$/m);
    const final = stages.at(-1)!;
    const user = /^USER (\d+)(?::(\d+))?$/m.exec(final);
    assert.ok(user && Number(user[1]) !== 0, 'a numeric non-root USER in the final stage');
  });
  it('copies only files that exist and are not ignored', () => {
    for (const [, from] of dockerfile.matchAll(/^COPY (?!--from)(.+) \S+$/gm)) {
      for (const path of from!.split(/\s+/)) {
        assert.ok(existsSync(join(root, path)), `${path} exists`);
        assert.ok(!ignored.includes(path), `${path} is not in .dockerignore`);
      }
    }
  });
  it('runs an entrypoint the build emits', () => {
    const entry = /^ENTRYPOINT \[(.+)\]$/m.exec(dockerfile)?.[1];
    const script = JSON.parse(`[${entry}]`).find((a: string) => a.endsWith('.js')) as string;
    const build = JSON.parse(readFileSync(join(root, 'tsconfig.build.json'), 'utf8')) as { compilerOptions: { outDir: string; rootDir: string } };
    const source = script.replace(build.compilerOptions.outDir, build.compilerOptions.rootDir).replace(/\.js$/, '.ts');
    assert.ok(existsSync(join(root, source)), `${script} is built from ${source}`);
    assert.match(dockerfile, /tsc -p tsconfig\.build\.json/);
  });
});
