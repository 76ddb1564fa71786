/** The rewriter's Git and forge settings: secrets read from files, pr mode's forge token. */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { gitAccess, type GitSettings } from '../../src/commands/rewriter.ts';

let dir: string;
const settings = (extra: Partial<GitSettings>): GitSettings => ({
  mode: 'pr',
  authorName: 'a',
  authorEmail: 'a@example.com',
  gitUsername: 'git',
  prDraft: false,
  ...extra,
});
before(() => {
  dir = mkdtempSync(join(tmpdir(), 'git-access-'));
  writeFileSync(join(dir, 'password'), 'git-token\n');
  writeFileSync(join(dir, 'forge-token'), 'api-token\n');
});
after(() => rmSync(dir, { recursive: true, force: true }));

describe('gitAccess', () => {
  it('pr mode: the Git token opens pull requests too when no forge token is given', () => {
    const access = gitAccess(settings({ gitPasswordFile: join(dir, 'password') }));
    assert.equal(access.gitCredentials?.password, 'git-token');
    assert.equal(access.forge?.token, 'git-token');
  });
  it('pr mode: a forge token file wins', () => {
    assert.equal(gitAccess(settings({ gitPasswordFile: join(dir, 'password'), forgeTokenFile: join(dir, 'forge-token') })).forge?.token, 'api-token');
  });
  it('branch and commit modes open nothing on a forge', () => {
    assert.equal(gitAccess(settings({ mode: 'branch', gitPasswordFile: join(dir, 'password') })).forge, undefined);
  });
});
