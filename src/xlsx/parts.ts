/**
 * The workbook's metadata parts, found the way OPC says: `_rels/.rels` names the workbook part
 * (whatever its name), the workbook's relationships name its sheets, styles and shared strings
 * (targets relative to the workbook's folder, or absolute from the package root). Element and
 * attribute names are matched by local name, so any namespace prefix (`<x:workbook>`) is accepted.
 *
 *   _rels/.rels ──► workbook part ──► its .rels ──► sheets (name → part, kind), styles, sharedStrings
 *                       └──► workbookPr date1904 (an xsd:boolean: 1/true/0/false)
 */
import path from 'node:path/posix';
import { UserError } from '../errors.js';
import { localName, readPart } from './lib.js';
import type { WorkbookZip } from './zip.js';

/** One sheet of the workbook, in tab order. */
export interface SheetEntry {
  name: string;
  /** Part name in the zip, or null when the relationship is missing. */
  part: string | null;
  /** `worksheet`, `chartsheet`, `dialogsheet`… from the relationship type. */
  kind: string;
}

/** What the reader needs to know about a workbook before reading a sheet. */
export interface WorkbookInfo {
  sheets: SheetEntry[];
  date1904: boolean;
  stylesPart: string | null;
  sharedStringsPart: string | null;
}

interface Relationship {
  id: string;
  type: string;
  target: string;
}

/** Resolves a relationship target against the folder of the part that holds the relationship. */
function resolveTarget(from: string, target: string): string {
  const clean = decodeURIComponent(target.split('#')[0]!);
  const joined = clean.startsWith('/') ? clean : path.join(path.dirname(from), clean);
  return path.normalize(joined).replace(/^\/+/, '');
}

/** The `.rels` part of `part`: `xl/workbook.xml` → `xl/_rels/workbook.xml.rels`. */
function relsOf(part: string): string {
  return path.join(path.dirname(part), '_rels', `${path.basename(part)}.rels`);
}

async function readRels(zip: WorkbookZip, relsPart: string, fileName: string): Promise<Relationship[]> {
  const rels: Relationship[] = [];
  await readPart(zip, relsPart, fileName, (parser) => {
    parser.on('opentag', (tag) => {
      if (localName(tag.name) !== 'Relationship') return;
      const a = tag.attributes;
      if (a.TargetMode === 'External' || a.Id === undefined || a.Target === undefined) return;
      rels.push({ id: a.Id, type: a.Type ?? '', target: a.Target });
    });
  });
  return rels;
}

/** An xsd:boolean attribute. */
function xsdBoolean(v: string | undefined): boolean {
  const t = v?.trim();
  return t === '1' || t === 'true';
}

/** Reads the package relationships, workbook.xml and its relationships. */
export async function readWorkbookInfo(zip: WorkbookZip, fileName: string): Promise<WorkbookInfo> {
  let workbookPart = 'xl/workbook.xml';
  if (zip.has('_rels/.rels')) {
    const main = (await readRels(zip, '_rels/.rels', fileName)).find((r) => /\/officeDocument$/.test(r.type));
    if (main) workbookPart = resolveTarget('/', main.target);
  }
  if (!zip.has(workbookPart)) {
    throw new UserError(
      `${fileName}: not an xlsx workbook (no workbook part: ${workbookPart} is missing); expected an Excel 2007+ .xlsx file`,
    );
  }
  const declared: Array<{ name: string; rid: string | undefined }> = [];
  let date1904 = false;
  await readPart(zip, workbookPart, fileName, (parser) => {
    parser.on('opentag', (tag) => {
      const name = localName(tag.name);
      if (name === 'workbookPr') date1904 = xsdBoolean(tag.attributes.date1904);
      else if (name === 'sheet') {
        // r:id under whatever prefix binds the relationships namespace.
        const rid = Object.entries(tag.attributes).find(([k]) => k.endsWith(':id'))?.[1];
        declared.push({ name: tag.attributes.name ?? '', rid });
      }
    });
  });
  const relsPart = relsOf(workbookPart);
  const rels = zip.has(relsPart) ? await readRels(zip, relsPart, fileName) : [];
  const byType = (suffix: string): string | null => {
    const r = rels.find((x) => x.type.endsWith(`/${suffix}`));
    return r ? resolveTarget(workbookPart, r.target) : null;
  };
  const sheets = declared.map(({ name, rid }) => {
    const rel = rels.find((r) => r.id === rid);
    return {
      name,
      part: rel ? resolveTarget(workbookPart, rel.target) : null,
      kind: rel ? (rel.type.split('/').pop() ?? '') : '',
    };
  });
  const stylesPart = byType('styles');
  const sharedStringsPart = byType('sharedStrings');
  return {
    sheets,
    date1904,
    stylesPart: stylesPart && zip.has(stylesPart) ? stylesPart : null,
    sharedStringsPart: sharedStringsPart && zip.has(sharedStringsPart) ? sharedStringsPart : null,
  };
}

/** Finds the configured sheet (name, or 1-based position in tab order) and checks it is a worksheet. */
export function findSheet(
  info: WorkbookInfo,
  sheet: string | number,
  fileName: string,
): SheetEntry & { part: string } {
  const names = info.sheets.map((s) => `'${s.name}'`).join(', ') || '(none)';
  const entry =
    typeof sheet === 'number' ? info.sheets[sheet - 1] : info.sheets.find((s) => s.name === sheet);
  if (!entry) {
    if (typeof sheet === 'number') {
      throw new UserError(
        `${fileName}: the workbook has ${info.sheets.length} sheet${info.sheets.length === 1 ? '' : 's'}, so sheet ${sheet} does not exist; its sheets are: ${names}`,
      );
    }
    throw new UserError(`${fileName}: the workbook has no sheet '${sheet}'; its sheets are: ${names}`);
  }
  if (entry.part === null) {
    throw new UserError(
      `${fileName}: sheet '${entry.name}' has no relationship in the workbook's .rels part`,
    );
  }
  if (entry.kind !== 'worksheet') {
    throw new UserError(
      `${fileName}: sheet '${entry.name}' is a ${entry.kind || 'sheet of unknown kind'} (${entry.part}), not a worksheet with cells; its sheets are: ${names}`,
    );
  }
  return entry as SheetEntry & { part: string };
}
