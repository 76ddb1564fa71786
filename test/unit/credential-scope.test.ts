/** Where the Git and forge credentials may go (src/rewriter/git/credential-scope.ts). */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { credentialRefusal, plainHttpNamed } from '../../src/rewriter/git/credential-scope.ts';

describe('credentialRefusal', () => {
  it('binds the credentials to the prefixes given, at a path boundary, scp-like URLs included', () => {
    const scopes = ['https://git.example.com/team-a/', 'ssh://git@git.example.com/team-b'];
    assert.equal(credentialRefusal('https://git.example.com/team-a/apps.git', scopes, true), undefined);
    assert.equal(credentialRefusal('https://GIT.example.com/team-a/apps.git', scopes, true), undefined);
    assert.equal(credentialRefusal('git@git.example.com:team-b/apps.git', scopes, true), undefined);
    assert.equal(credentialRefusal('ssh://git@git.example.com/team-b/apps.git', scopes, true), undefined);
    assert.match(
      credentialRefusal('ssh://git@git.example.com/team-bx/apps.git', scopes, true) ?? '',
      /no credentials are configured for ssh:\/\/git\.example\.com/,
    );
    assert.match(
      credentialRefusal('https://tenant.example/team-a/apps.git', scopes, true) ?? '',
      /^no credentials are configured for https:\/\/tenant\.example \(the Git and forge credentials are bound to/,
    );
    assert.match(
      credentialRefusal('http://git.example.com/team-a/apps.git', scopes, true) ?? '',
      /no credentials are configured for http:\/\/git\.example\.com/,
    );
  });

  it('unbound: any https or ssh repository, never plain http; a URL with a password never echoes it', () => {
    assert.equal(credentialRefusal('https://github.com/org/apps.git', undefined, true), undefined);
    assert.equal(credentialRefusal('git@github.com:org/apps.git', undefined, true), undefined);
    assert.match(credentialRefusal('http://10.0.0.7/org/apps.git', undefined, true) ?? '', /no credentials are sent over plain http \(http:\/\/10\.0\.0\.7\)/);
    assert.doesNotMatch(credentialRefusal('http://bot:s3cret@10.0.0.7/x.git', [], true) ?? '', /s3cret/);
    // An explicit http:// prefix allows a lab's server.
    assert.equal(credentialRefusal('http://127.0.0.1:3000/org/apps.git', ['http://127.0.0.1:3000/'], true), undefined);
  });

  it('refuses a URL git would read otherwise than the check (a backslash, a user name, a control character) or cannot be read', () => {
    const scopes = ['http://localhost/my-org/'];
    assert.match(credentialRefusal('http://localhost\\my-org\\@127.0.0.1:9999/x', scopes, true) ?? '', /backslash, a control character or a user name/);
    assert.match(credentialRefusal('https://trusted.example@evil.example/my-org/x.git', ['https://trusted.example@evil.example/'], true) ?? '', /a user name/);
    assert.match(credentialRefusal('https://git.example.com/my-org/x.git\n', scopes, true) ?? '', /control character/);
    assert.match(credentialRefusal('::not-a-url', scopes, true) ?? '', /cannot be read/);
    // An ssh:// login name is ordinary.
    assert.equal(credentialRefusal('ssh://deploy@git.example.com:2222/org/apps.git', undefined, true), undefined);
  });

  it('does not refuse what holds no credentials, or a local repository', () => {
    assert.equal(credentialRefusal('http://anything.example/x.git', ['https://git.example.com/'], false), undefined);
    assert.equal(credentialRefusal('file:///srv/git/apps.git', ['https://git.example.com/'], true), undefined);
  });
});

describe('plain-http prefixes for anonymous fetches', () => {
  it('compare the URL as curl resolves it: dot segments cannot climb out of the named prefix', () => {
    assert.equal(plainHttpNamed('http://lab.example/team-a/base.git', ['http://lab.example/team-a']), true);
    assert.equal(plainHttpNamed('http://lab.example/team-a/../team-b/base.git', ['http://lab.example/team-a']), false);
    assert.equal(plainHttpNamed('http://lab.example/team-a/%2e%2e/team-b/base.git', ['http://lab.example/team-a']), false);
    assert.equal(plainHttpNamed('https://lab.example/team-a/base.git', ['http://lab.example/team-a']), false);
  });
});
