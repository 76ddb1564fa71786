/**
 * The objects of a render, composed one document at a time. yaml's `parseAllDocuments` keeps every
 * document's syntax tree until the last is read: an 8 MiB render of Deployments cost +404 MiB that
 * way, and +196 MiB composed one by one keeping only plain values (measured, Node 24). A document
 * that does not parse, or is not a mapping, is not an object and is skipped. yaml's warnings (a
 * template's `{{ … }}` read as a mapping key) are never printed: the render is input, not ours.
 */
import { Composer, Parser } from 'yaml';
import { MAX_PARSED_NODES, yamlNodes } from '../edit/yaml-scalars.ts';
import { RenderProofError } from './tools.ts';

export type RenderedObject = Record<string, unknown>;

export function* renderedObjects(text: string, version: '1.1' | '1.2' = '1.2'): Generator<RenderedObject> {
  // What a parse holds grows with the nodes, not the bytes: 8 MiB of one flow sequence would cost 4 GiB.
  const nodes = yamlNodes(text);
  if (nodes > MAX_PARSED_NODES)
    throw new RenderProofError(`the render holds ${nodes} YAML lines and flow items, more than the ${MAX_PARSED_NODES} the rewriter parses; not compared`);
  for (const doc of new Composer({ version, logLevel: 'error' }).compose(new Parser().parse(text))) {
    if (doc.errors.length > 0) continue;
    const value = doc.toJS() as unknown;
    if (value && typeof value === 'object' && !Array.isArray(value)) yield value as RenderedObject;
  }
}
