/**
 * No Docker engine runs here, so the Dockerfile is checked by reading it: the files it copies
 * exist and are not excluded by .dockerignore, the build emits the entrypoint it runs, and the
 * final stage runs as a non-root user on a supported Node LTS.
 */
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';

const root = join(import.meta.dirname, '../..');
const dockerfile = readFileSync(join(root, 'Dockerfile'), 'utf8');
const ignored = readFileSync(join(root, '.dockerignore'), 'utf8').split('\n').map((l) => l.trim()).filter(Boolean);
const stages = dockerfile.split(/^FROM /m).slice(1);

describe('Dockerfile', () => {
  it('is multi-stage on Node 24 LTS and runs as non-root', () => {
    assert.equal(stages.length, 2);
    for (const stage of stages) assert.match(stage, /^node:24-/);
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
