import { problem, type X12Problem } from './errors.js';
import type { LoopDef, SetStructure } from './structure.js';
import type { Segment, TransactionSet } from './types.js';

/**
 * Reads a transaction set into its loops, following the set's declared structure:
 *
 *   segments ──► for each: look forward in the innermost open loop, then in each enclosing one
 *                ├─ a segment entry        → placed in that loop occurrence
 *                ├─ a nested loop's start  → a new occurrence of the nested loop
 *                └─ nowhere                → AK304 7 (out of sequence) or 6 (not in the set)
 *              at each loop's end: mandatory entries never seen → AK304 3
 *
 * This is how X12 itself delimits loops: a PO1 loop ends at the next PO1 or at the first segment
 * that cannot belong to it — never at a stop-list, so an AMT or N1 inside a line stays in the line.
 */

/** A segment with its position in the set (ST = 1). */
export interface PlacedSegment {
  seg: Segment;
  position: number;
}

/** One occurrence of a loop. */
export interface LoopNode {
  id: string;
  /** Segments directly in this occurrence, in order (the loop's first segment first). */
  segments: PlacedSegment[];
  /** Nested loop occurrences, in order. */
  loops: LoopNode[];
}

/** What {@link readLoops} found. */
export interface LoopTree {
  root: LoopNode;
  /** Structural problems: unexpected, out-of-sequence, missing mandatory or too frequent segments. */
  problems: X12Problem[];
}

interface Frame {
  def: LoopDef;
  node: LoopNode;
  pos: number;
  counts: number[];
}

/** Every segment of a loop occurrence and its nested loops, in set order. */
export function flatten(node: LoopNode, out: PlacedSegment[] = []): PlacedSegment[] {
  // Segments and nested loops interleave by position: merge them.
  let i = 0;
  for (const child of node.loops) {
    const first = child.segments[0]!.position;
    while (i < node.segments.length && node.segments[i]!.position < first) out.push(node.segments[i++]!);
    flatten(child, out);
  }
  while (i < node.segments.length) out.push(node.segments[i++]!);
  return out;
}

/** Reads `set` against `structure`; see the module comment. */
export function readLoops(structure: SetStructure, set: TransactionSet): LoopTree {
  const file = set.group.interchange.file;
  const problems: X12Problem[] = [];
  const root: LoopNode = { id: structure.root.id, segments: [], loops: [] };
  const stack: Frame[] = [
    {
      def: structure.root,
      node: root,
      pos: 0,
      counts: new Array<number>(structure.root.entries.length).fill(0),
    },
  ];
  const segs = set.segments;
  let position = 0;

  /** Reports the mandatory entries of `frame` in [from, to) that were never seen, at `next`. */
  const skip = (frame: Frame, from: number, to: number, next: PlacedSegment | null): void => {
    for (let i = from; i < to; i++) {
      const e = frame.def.entries[i]!;
      if (frame.counts[i]! >= e.min) continue;
      const tag = e.kind === 'segment' ? e.tag : (e.loop.entries[0] as { tag: string }).tag;
      const what = e.kind === 'segment' ? `segment ${tag}` : `loop ${e.loop.id} (starting with ${tag})`;
      const inLoop = frame.def === structure.root ? '' : ` in loop ${frame.def.id}`;
      problems.push(
        problem({
          code: 'SEGMENT_MISSING',
          level: 'segment',
          file,
          segment: next?.seg.ordinal ?? segs[segs.length - 1]!.ordinal,
          segmentId: tag,
          positionInSet: next?.position ?? position,
          text: `transaction set ${set.id} ${set.controlNumber}: mandatory ${what} is missing${inLoop}${next ? ` before ${next.seg.tag}` : ''}`,
          ack: { ak3: '3' },
        }),
      );
    }
  };
  const close = (frame: Frame, next: PlacedSegment | null): void =>
    skip(frame, frame.pos, frame.def.entries.length, next);

  for (let si = 0; si < segs.length; si++) {
    const seg = segs[si]!;
    position++;
    const placed = { seg, position };
    // The innermost open loop where the segment can stand, and its entry there.
    let depth = stack.length - 1;
    let idx = -1;
    for (; depth >= 0; depth--) {
      const frame = stack[depth]!;
      const candidates = frame.def.starts.get(seg.tag);
      if (candidates === undefined) continue;
      // In a nested loop the first entry starts a new occurrence: that belongs to the enclosing loop.
      const minIndex = depth === 0 || frame.pos > 1 ? frame.pos : 1;
      for (let k = 0; k < candidates.length; k++) {
        if (candidates[k]! >= minIndex) {
          idx = candidates[k]!;
          break;
        }
      }
      if (idx >= 0) break;
    }
    const done = idx >= 0;
    if (done) {
      const frame = stack[depth]!;
      for (let d = stack.length - 1; d > depth; d--) close(stack[d]!, placed);
      stack.length = depth + 1;
      const entry = frame.def.entries[idx]!;
      if (idx > frame.pos) skip(frame, frame.pos, idx, placed);
      frame.pos = idx;
      frame.counts[idx]!++;
      if (frame.counts[idx]! > entry.max) {
        problems.push(
          problem({
            code: entry.kind === 'segment' ? 'SEGMENT_REPEATED' : 'LOOP_REPEATED',
            level: 'segment',
            file,
            segment: seg.ordinal,
            segmentId: seg.tag,
            positionInSet: position,
            text:
              entry.kind === 'segment'
                ? `${seg.tag} occurs more than ${entry.max} time${entry.max === 1 ? '' : 's'} here in transaction set ${set.id}`
                : `loop ${entry.loop.id} occurs more than ${entry.max} time${entry.max === 1 ? '' : 's'} in transaction set ${set.id}`,
            ack: { ak3: entry.kind === 'segment' ? '5' : '4' },
          }),
        );
      }
      if (entry.kind === 'segment') {
        frame.node.segments.push(placed);
      } else {
        const node: LoopNode = { id: entry.loop.id, segments: [placed], loops: [] };
        frame.node.loops.push(node);
        const counts = new Array<number>(entry.loop.entries.length).fill(0);
        counts[0] = 1;
        stack.push({ def: entry.loop, node, pos: 0, counts });
      }
    }
    if (done) continue;
    // Not placeable: kept in the innermost loop so nothing is lost.
    stack[stack.length - 1]!.node.segments.push(placed);
    // A segment of the standard erp does not check is read as unused wherever it stands.
    if (structure.standardOnly.has(seg.tag)) continue;
    const known = structure.segments.has(seg.tag);
    problems.push(
      problem({
        code: known ? 'SEGMENT_OUT_OF_SEQUENCE' : 'SEGMENT_NOT_IN_SET',
        level: 'segment',
        file,
        segment: seg.ordinal,
        segmentId: seg.tag,
        positionInSet: position,
        text: known
          ? `${seg.tag} is not in its place in transaction set ${set.id} (inside loop ${stack[stack.length - 1]!.def.id})`
          : `${seg.tag} is not a segment of transaction set ${set.id} (src/x12/sets/${structure.id}.ts lists the segments of the standard)`,
        ack: { ak3: known ? '7' : '6' },
      }),
    );
  }
  for (let d = stack.length - 1; d >= 0; d--) close(stack[d]!, null);
  return { root, problems };
}
