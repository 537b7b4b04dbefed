/**
 * Compares two V8 heap snapshots (bench/heap-probe.ts takes them): how many more objects and
 * bytes of each kind the second holds, per connection. Objects are labelled so that the
 * label says whose they are: closures by function name and source position, their contexts
 * by the closure that holds them, plain objects by their property names, backing stores
 * (elements, property arrays) and promises by the object that holds them.
 * Usage: node dist/.bench/bench/heap-diff.js A.heapsnapshot B.heapsnapshot CONNECTIONS [TOP]
 */
import { readFileSync } from 'node:fs';

interface Snapshot {
  snapshot: {
    meta: { node_fields: string[]; node_types: [string[]]; edge_fields: string[]; edge_types: [string[]] };
  };
  nodes: number[];
  edges: number[];
  strings: string[];
  locations: number[];
}

type Tally = Map<string, { count: number; size: number }>;

function tally(file: string): Tally {
  const s = JSON.parse(readFileSync(file, 'utf8')) as Snapshot;
  const { node_fields: nf, node_types: nt, edge_fields: ef, edge_types: et } = s.snapshot.meta;
  const W = nf.length;
  const EW = ef.length;
  const [iType, iName, iSize, iEdges] = ['type', 'name', 'self_size', 'edge_count'].map((f) => nf.indexOf(f));
  const types = nt[0];
  const etypes = et[0];
  const count = s.nodes.length / W;
  const firstEdge = new Uint32Array(count + 1);
  for (let n = 0, e = 0; n < count; n++) {
    firstEdge[n] = e;
    e += s.nodes[n * W + iEdges] * EW;
  }
  firstEdge[count] = s.edges.length;
  const typeOf = (n: number) => types[s.nodes[n * W + iType]];
  const nameOf = (n: number) => s.strings[s.nodes[n * W + iName]];
  const edgeName = (e: number) => {
    const t = etypes[s.edges[e]];
    return t === 'element' || t === 'hidden' ? String(s.edges[e + 1]) : s.strings[s.edges[e + 1]];
  };
  // One strong retainer per node (the first seen), and the edge name it is held by.
  const owner = new Int32Array(count).fill(-1);
  const ownerEdge = new Int32Array(count).fill(-1);
  for (let n = 0; n < count; n++) {
    for (let e = firstEdge[n]; e < firstEdge[n + 1]; e += EW) {
      const t = etypes[s.edges[e]];
      if (t === 'weak' || t === 'shortcut') continue;
      const to = s.edges[e + 2] / W;
      if (owner[to] === -1) {
        owner[to] = n;
        ownerEdge[to] = e;
      }
    }
  }
  const loc = new Map<number, string>();
  for (let i = 0; i < s.locations.length; i += 4) {
    loc.set(s.locations[i] / W, `${s.locations[i + 1]}:${s.locations[i + 2] + 1}:${s.locations[i + 3] + 1}`);
  }
  // Script ids to file names, through closures' shared function infos.
  const scriptName = new Map<string, string>();
  const child = (n: number, name: string): number => {
    for (let e = firstEdge[n]; e < firstEdge[n + 1]; e += EW) if (edgeName(e) === name) return s.edges[e + 2] / W;
    return -1;
  };
  for (const [n, l] of loc) {
    const id = l.split(':')[0];
    if (scriptName.has(id) || typeOf(n) !== 'closure') continue;
    const shared = child(n, 'shared');
    const script = shared >= 0 ? child(shared, 'script_or_debug_info') : -1;
    if (script >= 0) scriptName.set(id, nameOf(script).replace(/^.*\/(node_modules\/|dist\/)/, '$1'));
  }
  const where = (n: number) => {
    const l = loc.get(n);
    if (!l) return '?';
    const [id, line, col] = l.split(':');
    return `${scriptName.get(id) ?? `script ${id}`}:${line}:${col}`;
  };
  const label = (n: number, depth = 0): string => {
    const type = typeOf(n);
    const name = nameOf(n);
    if (type === 'closure') return `closure ${name || '(anon)'} @ ${where(n)}`;
    if (type === 'string' || type === 'concatenated string' || type === 'sliced string' || type === 'code')
      return `${type}${depth < 2 && owner[n] >= 0 ? ` < ${label(owner[n], depth + 1)}` : ''}`;
    if (type === 'object' && name === 'Object') {
      const props: string[] = [];
      for (let e = firstEdge[n]; e < firstEdge[n + 1] && props.length < 6; e += EW) {
        if (etypes[s.edges[e]] === 'property') props.push(edgeName(e));
      }
      return `{${props.join(',')}}`;
    }
    if (name === 'system / Context') {
      // Named by a closure that holds it, or the context that holds it.
      const vars: string[] = [];
      for (let e = firstEdge[n]; e < firstEdge[n + 1] && vars.length < 5; e += EW) {
        if (etypes[s.edges[e]] === 'context') vars.push(edgeName(e));
      }
      return `Context[${vars.join(',')}]`;
    }
    const holder = owner[n];
    if (
      depth < 2 &&
      holder >= 0 &&
      (type === 'array' ||
        type === 'hidden' ||
        type === 'number' ||
        name === 'Promise' ||
        name === 'Array' ||
        name === 'system / PropertyArray')
    ) {
      return `${type} ${name} .${edgeName(ownerEdge[n])} < ${label(holder, depth + 1)}`;
    }
    return `${type} ${name.length > 60 ? name.slice(0, 60) + '…' : name}`;
  };
  const out: Tally = new Map();
  for (let n = 0; n < count; n++) {
    const key = label(n);
    const e = out.get(key) ?? { count: 0, size: 0 };
    e.count++;
    e.size += s.nodes[n * W + iSize];
    out.set(key, e);
  }
  return out;
}

const [a, b, conns, top] = process.argv.slice(2);
const n = Number(conns);
const ta = tally(a);
const tb = tally(b);
const rows: Array<{ key: string; count: number; size: number }> = [];
for (const [key, e] of tb) {
  const o = ta.get(key) ?? { count: 0, size: 0 };
  rows.push({ key, count: (e.count - o.count) / n, size: (e.size - o.size) / n });
}
rows.sort((x, y) => y.size - x.size);
let total = 0;
for (const r of rows) total += r.size;
console.log(`heap growth per connection: ${total.toFixed(0)} bytes`);
for (const r of rows.slice(0, Number(top ?? 40))) {
  console.log(`${r.size.toFixed(1).padStart(8)} B  ${r.count.toFixed(2).padStart(6)} objs  ${r.key}`);
}
