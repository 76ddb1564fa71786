import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { Readable } from 'node:stream';
import { describe, it } from 'node:test';
import { DigestVerifier, digestOf } from '../../src/registry/digest.ts';

/** Streams `chunks` through a verifier; what came out, chunk by chunk, or the error. */
async function through(chunks: readonly Buffer[], digest: string, size: number): Promise<Buffer[]> {
  const out: Buffer[] = [];
  const verifier = Readable.from(chunks, { objectMode: false }).pipe(new DigestVerifier(digest, size, 'blob x'));
  for await (const chunk of verifier) out.push(chunk as Buffer);
  return out;
}

describe('digest verification while streaming', () => {
  const bytes = randomBytes(300 * 1024);
  const digest = `sha256:${createHash('sha256').update(bytes).digest('hex')}`;

  it('passes the bytes on unchanged and in order, large chunks as they are', async () => {
    const chunks = [bytes.subarray(0, 100 * 1024), bytes.subarray(100 * 1024, 200 * 1024), bytes.subarray(200 * 1024)];
    const out = await through(chunks, digest, bytes.length);
    assert.deepEqual(
      out.map((c) => c.length),
      chunks.map((c) => c.length),
    );
    assert.ok(Buffer.concat(out).equals(bytes));
  });

  it('gathers small chunks (a few packets each, as over a WAN) into 64 KiB ones, the rest at the end', async () => {
    const chunks: Buffer[] = [];
    for (let at = 0; at < bytes.length; at += 19_000) chunks.push(bytes.subarray(at, at + 19_000));
    const out = await through(chunks, digest, bytes.length);
    assert.ok(Buffer.concat(out).equals(bytes));
    assert.ok(out.length < chunks.length / 3, `${out.length} chunks out of ${chunks.length}`);
    for (const chunk of out.slice(0, -1)) assert.ok(chunk.length >= 64 * 1024 && chunk.length < 64 * 1024 + 19_000, `${chunk.length}`);
  });

  it('fails on a wrong digest, a short body and a long one, naming the blob', async () => {
    const small = [bytes.subarray(0, 1000)];
    await assert.rejects(through(small, digestOf(Buffer.from('other')), 1000), /blob x: content digest sha256:\w+ does not match the expected/);
    await assert.rejects(through(small, digestOf(bytes.subarray(0, 1000)), 2000), /blob x: the source sent 1000 of 2000 bytes/);
    await assert.rejects(through(small, digestOf(bytes.subarray(0, 1000)), 999), /blob x: the source sent more than the 999 bytes its descriptor declares/);
  });

  it('holds back the gathered tail of a blob whose digest is wrong: the upload never gets all of its bytes', async () => {
    const chunks = [bytes.subarray(0, 10_000), bytes.subarray(10_000, 20_000)];
    const out: Buffer[] = [];
    const verifier = Readable.from(chunks, { objectMode: false }).pipe(new DigestVerifier(digestOf(Buffer.from('other')), 20_000, 'blob x'));
    await assert.rejects(async () => {
      for await (const chunk of verifier) out.push(chunk as Buffer);
    }, /does not match/);
    assert.equal(Buffer.concat(out).length, 0);
  });
});
