// Minimal-diff serialisation of an edited yaml Document.
//
// `String(doc)` re-renders the whole file: folded scalars are re-wrapped, quoting and flow
// spacing normalised. That would turn every designer edit into a noisy diff. Instead we keep
// the original text and replace only the regions whose nodes changed, taking the new text of
// those regions from a full render of the edited document (re-indented to fit). The result is
// checked by parsing it back; when anything is off we fall back to the full render.
import { isAlias, isMap, isScalar, isSeq, parseDocument, type Document, type Node, type Pair } from "yaml";

export const RENDER_OPTIONS = {
  lineWidth: 0,
  minContentWidth: 0,
  flowCollectionPadding: false,
} as const;

type Range = [number, number, number];

function rangeOf(node: unknown): Range | null {
  if (node && typeof node === "object" && "range" in node) {
    const r = (node as { range?: Range | null }).range;
    if (r && r.length === 3) return r;
  }
  return null;
}

interface Props {
  anchor?: string;
  tag?: string;
  comment?: string | null;
  commentBefore?: string | null;
  spaceBefore?: boolean;
}

function sameProps(a: Props, b: Props): boolean {
  return (
    (a.anchor ?? "") === (b.anchor ?? "") &&
    (a.tag ?? "") === (b.tag ?? "") &&
    (a.comment ?? "") === (b.comment ?? "") &&
    (a.commentBefore ?? "") === (b.commentBefore ?? "") &&
    !!a.spaceBefore === !!b.spaceBefore
  );
}

/** Structural equality of two yaml nodes, including style and comments (not positions). */
export function sameNode(a: unknown, b: unknown): boolean {
  if (a === b) return true;
  if (a == null || b == null) return a == null && b == null;
  if (isScalar(a) && isScalar(b)) {
    return (
      sameProps(a, b) &&
      (a.type ?? "") === (b.type ?? "") &&
      (a.value === b.value || (Number.isNaN(a.value) && Number.isNaN(b.value)))
    );
  }
  if (isAlias(a) && isAlias(b)) return a.source === b.source && sameProps(a, b);
  if (isMap(a) && isMap(b)) {
    if (!!a.flow !== !!b.flow || !sameProps(a, b) || a.items.length !== b.items.length) return false;
    return a.items.every((p, i) => {
      const q = b.items[i];
      return q !== undefined && sameNode(p.key, q.key) && sameNode(p.value, q.value);
    });
  }
  if (isSeq(a) && isSeq(b)) {
    if (!!a.flow !== !!b.flow || !sameProps(a, b) || a.items.length !== b.items.length) return false;
    return a.items.every((x, i) => sameNode(x, b.items[i]));
  }
  return false;
}

function column(src: string, offset: number): number {
  return offset - (src.lastIndexOf("\n", offset - 1) + 1);
}

/** Shift every line after the first (and the first too when it starts a line) by `delta`. */
function reindent(text: string, delta: number, firstToo = false): string {
  if (delta === 0) return text;
  const lines = text.split("\n");
  return lines
    .map((line, i) => {
      if (i === 0 && !firstToo) return line;
      if (line.trim() === "") return line;
      if (delta > 0) return " ".repeat(delta) + line;
      const strip = Math.min(-delta, line.length - line.trimStart().length);
      return line.slice(strip);
    })
    .join("\n");
}

/** A gap that started a line, moved to the first slot (which starts mid-line). */
function gapToFirst(gap: string): string {
  const lines = gap.split("\n");
  while (lines.length > 1 && (lines[0] ?? "").trim() === "") lines.shift();
  lines[0] = (lines[0] ?? "").trimStart();
  return lines.join("\n");
}

/** The first slot's gap (mid-line) moved to a later slot (which starts a line). */
function gapFromFirst(gap: string, col: number): string {
  return " ".repeat(col) + gap;
}

function isBlockCollection(n: unknown): boolean {
  return (isMap(n) || isSeq(n)) && !n.flow;
}

class Patcher {
  constructor(
    readonly S: string,
    readonly R: string,
  ) {}

  /** Text replacing `o`'s region [start, end) of S, where `n` is the edited node and `r` its render. */
  node(o: Node, n: Node, r: Node): string {
    const or = rangeOf(o)!;
    if (sameNode(o, n)) return this.S.slice(or[0], or[2]);
    if (isMap(o) && isMap(n) && isMap(r) && !o.flow && !n.flow && !r.flow && sameProps(o, n)) {
      return this.map(o.items, n.items, r.items, or, rangeOf(r)!);
    }
    if (isSeq(o) && isSeq(n) && isSeq(r) && !o.flow && !n.flow && !r.flow && sameProps(o, n)) {
      return this.seq(o.items as Node[], n.items as Node[], r.items as Node[], or, rangeOf(r)!);
    }
    return this.rendered(r, column(this.S, or[0]));
  }

  rendered(r: Node, col: number): string {
    const rr = rangeOf(r)!;
    return reindent(this.R.slice(rr[0], rr[2]), col - column(this.R, rr[0]));
  }

  private pairEnd(p: Pair): number {
    const v = rangeOf(p.value);
    return v ? v[2] : rangeOf(p.key)![2];
  }

  private map(o: Pair[], n: Pair[], r: Pair[], or: Range, rr: Range): string {
    const S = this.S;
    const R = this.R;
    const col = column(S, or[0]);
    const rcol = column(R, rr[0]);
    const keyOf = (p: Pair) => (isScalar(p.key) ? String(p.key.value) : null);
    const used = new Set<number>();
    let out = "";
    n.forEach((np, j) => {
      const rp = r[j]!;
      const k = keyOf(np);
      const i = k === null ? -1 : o.findIndex((op, idx) => !used.has(idx) && keyOf(op) === k);
      if (i < 0) {
        // A new pair: gap and text from the render.
        const rStart = rangeOf(rp.key)!;
        const gapStart = j === 0 ? rr[0] : this.pairEnd(r[j - 1]!);
        let gap = R.slice(gapStart, rStart[0]);
        if (j === 0) gap = reindent(gap, col - rcol);
        else gap = reindent(gap, col - rcol, true);
        out += gap + reindent(R.slice(rStart[0], this.pairEnd(rp)), col - rcol);
        return;
      }
      used.add(i);
      const op = o[i]!;
      const oStart = rangeOf(op.key)!;
      let gap = S.slice(i === 0 ? or[0] : this.pairEnd(o[i - 1]!), oStart[0]);
      if (j === 0 && i !== 0) gap = gapToFirst(gap);
      else if (j !== 0 && i === 0) gap = gapFromFirst(gap, col);
      out += gap + this.pair(op, np, rp, col, rcol);
    });
    return out;
  }

  private pair(op: Pair, np: Pair, rp: Pair, col: number, rcol: number): string {
    const S = this.S;
    const oStart = rangeOf(op.key)![0];
    if (sameNode(op.key, np.key) && sameNode(op.value, np.value)) return S.slice(oStart, this.pairEnd(op));
    const ov = op.value as Node | null;
    const nv = np.value as Node | null;
    const rv = rp.value as Node | null;
    const compatible =
      ov != null &&
      nv != null &&
      rv != null &&
      rangeOf(ov) !== null &&
      sameNode(op.key, np.key) &&
      isBlockCollection(ov) === isBlockCollection(nv) &&
      (ov as Props).anchor === (nv as Props).anchor &&
      (ov as Props).tag === (nv as Props).tag;
    if (compatible) {
      const vr = rangeOf(ov)!;
      return S.slice(oStart, vr[0]) + this.node(ov, nv, rv);
    }
    const rStart = rangeOf(rp.key)![0];
    return reindent(this.R.slice(rStart, this.pairEnd(rp)), col - rcol);
  }

  private seq(o: Node[], n: Node[], r: Node[], or: Range, rr: Range): string {
    const S = this.S;
    const R = this.R;
    const col = column(S, or[0]);
    const rcol = column(R, rr[0]);
    const idOf = (x: Node): string | null => {
      if (!isMap(x)) return null;
      const v = x.get("id", true);
      return isScalar(v) ? String(v.value) : null;
    };
    const used = new Set<number>();
    const match = (nx: Node, j: number): number => {
      if (o.length === n.length) return j;
      const id = idOf(nx);
      if (id !== null) return o.findIndex((ox, i) => !used.has(i) && idOf(ox) === id);
      return o.findIndex((ox, i) => !used.has(i) && sameNode(ox, nx));
    };
    let out = "";
    n.forEach((nx, j) => {
      const rx = r[j]!;
      const i = match(nx, j);
      if (i < 0 || rangeOf(o[i]) === null) {
        const rStart = rangeOf(rx)![0];
        const gapStart = j === 0 ? rr[0] : rangeOf(r[j - 1])![2];
        let gap = R.slice(gapStart, rStart);
        if (j === 0) gap = reindent(gap, col - rcol);
        else gap = reindent(gap, col - rcol, true);
        out += gap + this.rendered(rx, column(S, or[0]) + (column(R, rStart) - rcol));
        return;
      }
      used.add(i);
      const ox = o[i]!;
      const oStart = rangeOf(ox)![0];
      let gap = S.slice(i === 0 ? or[0] : rangeOf(o[i - 1])![2], oStart);
      if (j === 0 && i !== 0) gap = gapToFirst(gap);
      else if (j !== 0 && i === 0) gap = gapFromFirst(gap, col);
      const compatible = isBlockCollection(ox) === isBlockCollection(nx) && (ox as Props).anchor === (nx as Props).anchor;
      out += gap + (compatible ? this.node(ox, nx, rx) : this.rendered(rx, column(S, oStart)));
    });
    return out;
  }
}

function sameJs(a: unknown, b: unknown): boolean {
  return JSON.stringify(a) === JSON.stringify(b);
}

/**
 * The text of `edited` (a modified clone of `original`, which was parsed from `source`),
 * changing as little of `source` as possible.
 */
export function patchSource(source: string, original: Document, edited: Document): string {
  return patchSourceWithDoc(source, original, edited).text;
}

/** `patchSource`, also returning the parse of the text (callers need it; parsing is the cost). */
export function patchSourceWithDoc(source: string, original: Document, edited: Document): { text: string; doc: Document.Parsed | null } {
  const o = original.contents as Node | null;
  const n = edited.contents as Node | null;
  if (o && n && rangeOf(o) !== null && sameNode(o, n) && (original.commentBefore ?? "") === (edited.commentBefore ?? "")) {
    return { text: source, doc: null };
  }
  const rendered = edited.toString(RENDER_OPTIONS);
  const rdoc = parseDocument(rendered);
  const r = rdoc.contents as Node | null;
  if (!o || !n || rangeOf(o) === null || !r || rdoc.errors.length > 0) return { text: rendered, doc: rdoc };
  let text: string;
  try {
    const or = rangeOf(o)!;
    const body = new Patcher(source, rendered).node(o, n, r);
    text = source.slice(0, or[0]) + body + source.slice(or[2]);
  } catch {
    return { text: rendered, doc: rdoc };
  }
  // Guard: the patched text must mean exactly what the edited document means.
  const check = parseDocument(text);
  if (check.errors.length > 0 || !sameJs(check.toJS(), edited.toJS())) return { text: rendered, doc: rdoc };
  return { text, doc: check };
}
