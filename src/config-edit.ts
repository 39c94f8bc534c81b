// config.yaml edited where a value stands: each value replaced in place, a missing key added as one line,
// every other byte (the operator's comments, order, quoting) kept. yaml's stringify would respell the rest
// (`[a]` as `[ a ]`), so the Document API only finds where things are. enable-https and attach-disk use it.

import { isMap, isNode, isScalar, parseDocument, type Pair, type Scalar, type YAMLMap } from 'yaml';

/** `text` with the scalar at `keys` (one or two levels, block mappings) set to `value`, a plain scalar. */
export function setKey(text: string, keys: [string] | [string, string], value: string): string {
  const doc = parseDocument(text);
  const top = doc.contents;
  if (top !== null && !isMap(top)) return text; // parseConfig refuses it with its line
  const pairOf = (map: YAMLMap | null, key: string): Pair | undefined =>
    map?.items.find((p) => isScalar(p.key) && p.key.value === key);
  const lineAfter = (offset: number): number => {
    const end = text.indexOf('\n', offset);
    return end < 0 ? text.length : end + 1;
  };
  const append = (lines: string): string => `${text}${text === '' || text.endsWith('\n') ? '' : '\n'}${lines}`;
  const parent = keys.length === 1 ? top : undefined;
  if (keys.length === 1) {
    const pair = pairOf(parent ?? null, keys[0]);
    if (!pair) return append(`${keys[0]}: ${value}\n`);
    return replaceValue(text, pair, value, lineAfter);
  }
  const outer = pairOf(top, keys[0]);
  if (!outer) return append(`${keys[0]}:\n  ${keys[1]}: ${value}\n`);
  const inner = isMap(outer.value) ? outer.value : null;
  const pair = pairOf(inner, keys[1]);
  if (pair) return replaceValue(text, pair, value, lineAfter);
  const keyStart = (outer.key as Scalar).range![0];
  if (inner && inner.flow !== true && inner.items.length > 0) {
    const first = (inner.items[0].key as Scalar).range![0];
    const indent = first - (text.lastIndexOf('\n', first - 1) + 1);
    const at = lineAfter(keyStart);
    return `${text.slice(0, at)}${' '.repeat(indent)}${keys[1]}: ${value}\n${text.slice(at)}`;
  }
  // `letsencrypt:` with no value (or a flow mapping): the whole value becomes a block of one key.
  const valueEnd = outer.value && isNode(outer.value) ? outer.value.range![1] : lineAfter(keyStart) - 1;
  const colon = text.indexOf(':', keyStart) + 1;
  const keyIndent = keyStart - (text.lastIndexOf('\n', keyStart - 1) + 1);
  return `${text.slice(0, colon)}\n${' '.repeat(keyIndent + 2)}${keys[1]}: ${value}${text.slice(Math.max(colon, valueEnd))}`;
}

function replaceValue(text: string, pair: Pair, value: string, lineAfter: (offset: number) => number): string {
  if (isNode(pair.value) && isScalar(pair.value)) {
    const [start, end] = pair.value.range!;
    return `${text.slice(0, start)}${value}${text.slice(end)}`;
  }
  // `key:` with nothing after it.
  const keyStart = (pair.key as Scalar).range![0];
  const colon = text.indexOf(':', keyStart) + 1;
  const eol = lineAfter(keyStart) - 1;
  return `${text.slice(0, colon)} ${value}${text.slice(Math.min(eol, text.length))}`;
}
