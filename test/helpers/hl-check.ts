import { expect } from 'vitest';

/**
 * An 856's HL hierarchy checked from the segments alone (not from the builder): HL01 counts 1, 2, …;
 * HL02 names an earlier HL; each HL's level is the one after its parent's in `levels`, the first
 * level has no parent; HL04 is 1 exactly when the HL has children; CTT01 is the number of HLs.
 * Returns each HL as `level:id<parent` with the segments that follow it up to the next HL.
 */
export function checkHierarchy(
  set: string[][],
  levels: readonly string[],
): { hl: string; level: string; segments: string[][] }[] {
  const hls = set.flatMap((s, i) => (s[0] === 'HL' ? [{ s, i }] : []));
  const levelOf = new Map<string, string>();
  const children = new Map<string, number>();
  const out: { hl: string; level: string; segments: string[][] }[] = [];
  hls.forEach(({ s, i }, k) => {
    const [, id, parent, level] = s;
    expect(id, `HL ${k + 1} id`).toBe(String(k + 1));
    if (parent === '') expect(level, `HL ${id} without a parent`).toBe(levels[0]);
    else {
      expect(levelOf.has(parent!), `HL ${id}'s parent ${parent} comes before it`).toBe(true);
      expect(levels.indexOf(level!), `HL ${id} (${level}) under ${levelOf.get(parent!)}`).toBe(
        levels.indexOf(levelOf.get(parent!)!) + 1,
      );
      children.set(parent!, (children.get(parent!) ?? 0) + 1);
    }
    levelOf.set(id!, level!);
    const end = hls[k + 1]?.i ?? set.findIndex((x) => x[0] === 'CTT' || x[0] === 'SE');
    out.push({ hl: `${level}:${id}<${parent}`, level: level!, segments: set.slice(i + 1, end) });
  });
  for (const { s } of hls) {
    expect(s[4], `HL ${s[1]} child flag`).toBe(children.has(s[1]!) ? '1' : '0');
  }
  // Every leaf is an item: no branch stops short of the last level.
  for (const { s } of hls) if (!children.has(s[1]!)) expect(s[3]).toBe(levels.at(-1));
  const ctt = set.find((x) => x[0] === 'CTT');
  expect(ctt?.[1], 'CTT01').toBe(String(hls.length));
  return out;
}

/** GS1 mod-10: weights 3, 1, 3, … from the rightmost digit of the body; the digit that makes 10. */
export function gs1CheckDigit(body: string): number {
  let sum = 0;
  for (let i = 0; i < body.length; i++) {
    const digit = Number(body[body.length - 1 - i]);
    sum += digit * (i % 2 === 0 ? 3 : 1);
  }
  return (10 - (sum % 10)) % 10;
}
