/**
 * Byte-minimal insertions into YAML: a new entry at the end of a mapping, a new item at the end of
 * a sequence, written in the file's own style. Block collections get lines at the column of their
 * siblings (a list under a key indented as the file indents its lists, CRLF where the file uses it);
 * flow collections get `, item`. Nothing already in the file moves. Pure: text in, an edit out, or
 * the reason the insertion cannot be made safely.
 */
import { isMap, isScalar, isSeq, type Node, type YAMLMap, type YAMLSeq } from 'yaml';
import { columnOf, formatScalar, get, scalarSite, type TextEdit } from './yaml-scalars.ts';

/** What is inserted: a scalar (a string stays a string; a boolean is written plain), a list or a mapping of them (written in block or flow style). */
export type Block = string | boolean | readonly Block[] | { readonly [key: string]: Block };

/** `key: value` after the last entry of `map`. */
export function addToMap(text: string, map: YAMLMap, key: string, value: Block): TextEdit | string {
  if (map.flow) {
    const last = map.items.at(-1);
    const end = (last?.value as Node | undefined)?.range?.[1] ?? (last?.key as Node | undefined)?.range?.[1];
    if (end === undefined) return 'it is an empty flow mapping';
    return { start: end, end, text: `, ${formatScalar(key)}: ${flow(value)}` };
  }
  const firstKey = map.items[0]?.key as Node | undefined;
  if (!firstKey?.range) return 'it is an empty mapping';
  const style = styleOf(text, map);
  const at = lineEndAfter(text, lastContentEnd(map));
  const lines = entryLines(key, value, columnOf(text, firstKey.range[0]), style);
  return { start: at, end: at, text: lines.map((line) => `${style.eol}${line}`).join('') };
}

/** `key: value` in `map`: its scalar replaced in its own quoting if the key is there, else added after the last entry. */
export function setInMap(text: string, map: YAMLMap, key: string, value: string): TextEdit[] {
  const existing = scalarSite(text, get(map, key));
  if (existing) return existing.value === value ? [] : [{ start: existing.start, end: existing.end, text: formatScalar(value, existing) }];
  const edit = addToMap(text, map, key, value);
  if (typeof edit === 'string') throw new Error(`cannot add ${key} to the mapping: ${edit}`);
  return [edit];
}

/** `value` as the last item of `seq`. */
export function addToSeq(text: string, seq: YAMLSeq, value: Block, container: Node): TextEdit | string {
  if (seq.flow) {
    const last = seq.items.at(-1) as Node | undefined;
    if (last?.range) return { start: last.range[1], end: last.range[1], text: `, ${flow(value)}` };
    const open = text.indexOf('[', seq.range![0]);
    return { start: open + 1, end: open + 1, text: flow(value) };
  }
  const first = seq.items[0] as Node | undefined;
  if (!first?.range) return 'it is an empty list';
  const style = styleOf(text, container);
  const at = lineEndAfter(text, lastContentEnd(seq));
  const lines = itemLines(value, columnOf(text, text.lastIndexOf('-', first.range[0])), style);
  return { start: at, end: at, text: lines.map((line) => `${style.eol}${line}`).join('') };
}

interface Style {
  readonly eol: string;
  /** How far a list is indented under its key (0 for `key:\n- item`). */
  readonly listIndent: number;
  /** How far a mapping is indented under its key. */
  readonly mapIndent: number;
}

/** The file's habits, read from the collection being extended and what it holds. */
function styleOf(text: string, node: Node): Style {
  let listIndent: number | undefined;
  let mapIndent: number | undefined;
  const walk = (current: unknown) => {
    if (!isMap(current)) {
      if (isSeq(current)) for (const item of current.items) walk(item);
      return;
    }
    for (const pair of current.items) {
      const key = pair.key as Node | undefined;
      const value = pair.value as Node | undefined;
      if (!key?.range || !value?.range) continue;
      const keyColumn = columnOf(text, key.range[0]);
      if (listIndent === undefined && isSeq(value) && !value.flow && value.items[0])
        listIndent = columnOf(text, text.lastIndexOf('-', (value.items[0] as Node).range![0])) - keyColumn;
      if (mapIndent === undefined && isMap(value) && !value.flow && (value.items[0]?.key as Node | undefined)?.range)
        mapIndent = columnOf(text, (value.items[0]!.key as Node).range![0]) - keyColumn;
      walk(value);
    }
  };
  walk(node);
  return { eol: text.includes('\r\n') ? '\r\n' : '\n', listIndent: listIndent ?? 2, mapIndent: mapIndent && mapIndent > 0 ? mapIndent : 2 };
}

function entryLines(key: string, value: Block, column: number, style: Style): string[] {
  const pad = ' '.repeat(column);
  if (typeof value === 'string' || typeof value === 'boolean') return [`${pad}${formatScalar(key)}: ${formatBlockScalar(value)}`];
  if (Array.isArray(value)) return [`${pad}${formatScalar(key)}:`, ...value.flatMap((item: Block) => itemLines(item, column + style.listIndent, style))];
  return [`${pad}${formatScalar(key)}:`, ...Object.entries(value).flatMap(([k, v]) => entryLines(k, v, column + style.mapIndent, style))];
}

/** `- item` at `column`; a mapping's first entry on the dash's line, the rest under it. */
function itemLines(value: Block, column: number, style: Style): string[] {
  const pad = ' '.repeat(column);
  if (typeof value === 'string' || typeof value === 'boolean') return [`${pad}- ${formatBlockScalar(value)}`];
  if (Array.isArray(value)) return [`${pad}-`, ...value.flatMap((item: Block) => itemLines(item, column + 2, style))];
  const lines = Object.entries(value).flatMap(([k, v]) => entryLines(k, v, column + 2, style));
  return lines.length === 0 ? [`${pad}- {}`] : [`${pad}- ${lines[0]!.slice(column + 2)}`, ...lines.slice(1)];
}

function formatBlockScalar(value: string | boolean): string {
  return typeof value === 'boolean' ? String(value) : formatScalar(value);
}

function flow(value: Block): string {
  if (typeof value === 'string' || typeof value === 'boolean') return formatBlockScalar(value);
  if (Array.isArray(value)) return `[${value.map((item: Block) => flow(item)).join(', ')}]`;
  return `{${Object.entries(value)
    .map(([k, v]) => `${formatScalar(k)}: ${flow(v)}`)
    .join(', ')}}`;
}

/** The end of the last scalar inside `node` (a nested block collection's range runs on past comments and blank lines). */
function lastContentEnd(node: Node): number {
  if (isMap(node) || isSeq(node)) {
    const last = node.items.at(-1) as unknown;
    if (last === undefined) return node.range![1];
    if (isMap(node)) {
      const pair = last as { key: Node; value: Node | null };
      return pair.value && (isMap(pair.value) || isSeq(pair.value) || isScalar(pair.value)) && pair.value.range
        ? lastContentEnd(pair.value)
        : pair.key.range![1];
    }
    return lastContentEnd(last as Node);
  }
  return node.range![1];
}

/** The offset where the line holding `offset` ends (before its line break, CR included). */
function lineEndAfter(text: string, offset: number): number {
  if (offset > 0 && text[offset - 1] === '\n') return text[offset - 2] === '\r' ? offset - 2 : offset - 1;
  const newline = text.indexOf('\n', offset);
  if (newline === -1) return text.length;
  return text[newline - 1] === '\r' ? newline - 1 : newline;
}
