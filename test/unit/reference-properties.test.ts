/**
 * Property-based tests over image references (fast-check): parse → format → parse is stable,
 * nothing but the project's own ImageReferenceError is ever thrown, and the backup mapping never maps
 * two different sources to the same backup name, in either layout.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { ImageReferenceError } from '../../src/errors.ts';
import { backupReference, parseBackupTarget } from '../../src/image/backup.ts';
import { formatReference, parseReference, repositoryName, type ImageReference } from '../../src/image/reference.ts';

const alnum = fc.stringMatching(/^[a-z0-9]{1,6}$/);
const separator = fc.constantFrom('.', '_', '__', '-', '--');
const component = fc.tuple(alnum, fc.array(fc.tuple(separator, alnum), { maxLength: 2 })).map(([first, rest]) => first + rest.map(([s, a]) => s + a).join(''));
const path = fc.array(component, { minLength: 1, maxLength: 3 }).map((parts) => parts.join('/'));
const host = fc.oneof(
  fc.constantFrom('docker.io', 'index.docker.io', 'quay.io', 'ghcr.io', 'localhost', 'registry.k8s.io', 'Registry.Example.com'),
  fc.tuple(fc.stringMatching(/^[a-z][a-z0-9-]{0,6}[a-z0-9]$/), fc.constantFrom('.io', '.com', '.example')).map(([a, b]) => a + b),
  fc.tuple(fc.constantFrom('localhost', '127.0.0.1', 'reg.local'), fc.integer({ min: 1, max: 65535 })).map(([h, p]) => `${h}:${p}`),
);
const tag = fc.stringMatching(/^[A-Za-z0-9_][A-Za-z0-9_.-]{0,20}$/);
const digest = fc.stringMatching(/^[a-f0-9]{64}$/).map((h) => `sha256:${h}`);
const reference = fc
  .tuple(fc.option(host, { nil: undefined }), path, fc.option(tag, { nil: undefined }), fc.option(digest, { nil: undefined }))
  // Without a host, a first component with a "." would itself be read as a host (Docker's rule).
  .map(([h, p, t, d]) => `${h ? `${h}/` : ''}${h ? p : p.replace(/^[^/]*/, (first) => first.replaceAll('.', '-'))}${t ? `:${t}` : ''}${d ? `@${d}` : ''}`);

/**
 * Families of lookalike references, the inputs that could collide in a flat name: the same text
 * with "/" and "_" swapped, and a port turned into a path component.
 */
const lookalikes = fc
  .tuple(host, path)
  .chain(([h, p]) =>
    fc.constant([`${h}/${p}`, `${h}/${p.replaceAll('/', '_')}`, `${h}/${p.replace('_', '/')}`, `${h.replace(':', '/')}/${p}`, `${h}/${p.replace('__', '/')}`]),
  );

describe('image reference properties', () => {
  it('parse → format → parse is stable for valid references', () => {
    fc.assert(
      fc.property(reference, (text) => {
        let parsed: ImageReference;
        try {
          parsed = parseReference(text);
        } catch (error) {
          // Generated names can exceed 255 characters; nothing else may be refused.
          assert.ok(error instanceof ImageReferenceError && /longer than 255/.test(error.message), `${text}: ${(error as Error).message}`);
          return;
        }
        const formatted = formatReference(parsed);
        assert.deepEqual(parseReference(formatted), parsed.tag === undefined && parsed.digest === undefined ? { ...parsed, tag: 'latest' } : parsed);
        assert.equal(formatReference(parseReference(formatted)), formatted);
      }),
      { numRuns: 2000 },
    );
  });

  it('throws nothing but ImageReferenceError on any input', () => {
    fc.assert(
      fc.property(
        fc.oneof(
          fc.string(),
          fc.string({ unit: 'binary' }),
          reference.map((r) => r.replace(/[a-z]/, 'A')),
          reference.chain((r) => fc.nat(r.length).map((i) => r.slice(0, i) + r.slice(i + 1))),
        ),
        (text) => {
          try {
            parseReference(text);
          } catch (error) {
            assert.ok(error instanceof ImageReferenceError, `${JSON.stringify(text)} threw ${(error as Error).name}`);
            assert.ok(error.message.startsWith('invalid image reference'), error.message);
          }
        },
      ),
      { numRuns: 3000 },
    );
  });

  for (const layout of ['nested', 'flat'] as const) {
    it(`never maps two different sources to one backup name (${layout})`, () => {
      const target = parseBackupTarget(layout === 'flat' ? 'docker.io/backups' : 'backup.example.com/mirror', layout);
      const batch = fc
        .tuple(fc.uniqueArray(reference, { maxLength: 20 }), fc.array(lookalikes, { minLength: 1, maxLength: 5 }))
        .map(([a, b]) => [...new Set([...a, ...b.flat()])]);
      fc.assert(
        fc.property(batch, (texts) => {
          const seen = new Map<string, string>();
          for (const text of texts) {
            let source: ImageReference;
            let backup: ImageReference;
            try {
              source = parseReference(text);
              backup = backupReference(source, target);
            } catch (error) {
              assert.ok(error instanceof ImageReferenceError, (error as Error).message);
              continue;
            }
            const name = repositoryName(backup);
            const from = repositoryName(source);
            const previous = seen.get(name);
            assert.ok(previous === undefined || previous === from, `${previous} and ${from} both map to ${name}`);
            seen.set(name, from);
          }
        }),
        { numRuns: 500 },
      );
    });
  }
});
