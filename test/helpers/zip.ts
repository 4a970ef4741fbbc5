import { createWriteStream } from 'node:fs';
import { once } from 'node:events';
import { crc32, deflateRawSync, constants } from 'node:zlib';

/**
 * A minimal zip writer for tests: real deflated entries in the order given, so a test decides which
 * part comes first, and entries that expand to gigabytes from a few MB (a block compressed once
 * with a full flush and repeated: every copy is a complete, independent run of deflate blocks).
 */
export type ZipEntry =
  | { name: string; data: string | Buffer }
  | {
      name: string;
      head: string;
      repeat: string;
      times: number;
      tail: string;
      /** An uncompressed size to declare instead of the true one (a zip that lies about its sizes). */
      declaredSize?: number;
    };

function deflatedRepeat(e: Extract<ZipEntry, { repeat: string }>): {
  parts: Buffer[];
  size: number;
  crc: number;
} {
  const block = Buffer.from(e.repeat.repeat(Math.max(1, Math.floor((1 << 20) / e.repeat.length))));
  const copies = Math.ceil(e.times / (block.length / e.repeat.length));
  const flush = { finishFlush: constants.Z_FULL_FLUSH, level: 9 };
  const head = deflateRawSync(Buffer.from(e.head), flush);
  const body = deflateRawSync(block, flush);
  const tail = deflateRawSync(Buffer.from(e.tail));
  const parts = [head, ...Array.from({ length: copies }, () => body), tail];
  let crc = crc32(Buffer.from(e.head));
  for (let i = 0; i < copies; i++) crc = crc32(block, crc);
  crc = crc32(Buffer.from(e.tail), crc);
  return { parts, size: e.head.length + copies * block.length + e.tail.length, crc };
}

/** Writes `entries` as a zip file (no zip64: every entry stays under 4 GiB). */
export async function writeZip(file: string, entries: ZipEntry[]): Promise<void> {
  const out = createWriteStream(file);
  const central: Buffer[] = [];
  let offset = 0;
  const write = async (b: Buffer): Promise<void> => {
    offset += b.length;
    if (!out.write(b)) await once(out, 'drain');
  };
  for (const e of entries) {
    let parts: Buffer[];
    let size: number;
    let crc: number;
    if ('data' in e) {
      const raw = Buffer.from(e.data);
      parts = [deflateRawSync(raw)];
      size = raw.length;
      crc = crc32(raw);
    } else {
      ({ parts, size, crc } = deflatedRepeat(e));
      size = e.declaredSize ?? size;
    }
    const compressed = parts.reduce((n, p) => n + p.length, 0);
    const name = Buffer.from(e.name);
    const local = Buffer.alloc(30);
    local.writeUInt32LE(0x04034b50, 0);
    local.writeUInt16LE(20, 4);
    local.writeUInt16LE(0x0800, 6);
    local.writeUInt16LE(8, 8);
    local.writeUInt32LE(crc >>> 0, 14);
    local.writeUInt32LE(compressed, 18);
    local.writeUInt32LE(size, 22);
    local.writeUInt16LE(name.length, 26);
    const cd = Buffer.alloc(46);
    cd.writeUInt32LE(0x02014b50, 0);
    cd.writeUInt16LE(20, 4);
    cd.writeUInt16LE(20, 6);
    cd.writeUInt16LE(0x0800, 8);
    cd.writeUInt16LE(8, 10);
    cd.writeUInt32LE(crc >>> 0, 16);
    cd.writeUInt32LE(compressed, 20);
    cd.writeUInt32LE(size, 24);
    cd.writeUInt16LE(name.length, 28);
    cd.writeUInt32LE(offset, 42);
    central.push(cd, name);
    await write(local);
    await write(name);
    for (const p of parts) await write(p);
  }
  const cdStart = offset;
  const cdBuf = Buffer.concat(central);
  await write(cdBuf);
  const end = Buffer.alloc(22);
  end.writeUInt32LE(0x06054b50, 0);
  end.writeUInt16LE(entries.length, 8);
  end.writeUInt16LE(entries.length, 10);
  end.writeUInt32LE(cdBuf.length, 12);
  end.writeUInt32LE(cdStart, 16);
  await write(end);
  out.end();
  await once(out, 'finish');
}

const NS = 'http://schemas.openxmlformats.org/spreadsheetml/2006/main';
const REL = 'http://schemas.openxmlformats.org/officeDocument/2006/relationships';
const PKG = 'http://schemas.openxmlformats.org/package/2006/relationships';

/** The parts of a one-sheet workbook, with hooks to reshape them the way other producers do. */
export function workbookParts(o: {
  sheetXml: string;
  prefix?: string;
  workbookPart?: string;
  sheetTarget?: string;
  sheetPart?: string;
  workbookPr?: string;
  sharedStrings?: string[] | null;
  styles?: string | null;
  extraSheets?: string;
  extraRels?: string;
}): Record<string, string> {
  const p = o.prefix ? `${o.prefix}:` : '';
  const xmlns = o.prefix ? `xmlns:${o.prefix}="${NS}"` : `xmlns="${NS}"`;
  const wbPart = o.workbookPart ?? 'xl/workbook.xml';
  const wbDir = wbPart.slice(0, wbPart.lastIndexOf('/'));
  const rels: string[] = [
    `<Relationship Id="rIdS" Type="${REL}/worksheet" Target="${o.sheetTarget ?? 'worksheets/sheet1.xml'}"/>`,
  ];
  const parts: Record<string, string> = {
    '[Content_Types].xml': `<?xml version="1.0" encoding="UTF-8"?><Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types"><Default Extension="rels" ContentType="application/vnd.openxmlformats-package.relationships+xml"/><Default Extension="xml" ContentType="application/xml"/></Types>`,
    '_rels/.rels': `<?xml version="1.0" encoding="UTF-8"?><Relationships xmlns="${PKG}"><Relationship Id="rId1" Type="${REL}/officeDocument" Target="${wbPart}"/></Relationships>`,
    [wbPart]: `<?xml version="1.0" encoding="UTF-8"?><${p}workbook ${xmlns} xmlns:r="${REL}">${o.workbookPr ?? ''}<${p}sheets>${o.extraSheets ?? ''}<${p}sheet name="Data" sheetId="1" r:id="rIdS"/></${p}sheets></${p}workbook>`,
  };
  if (o.styles !== null) {
    rels.push(`<Relationship Id="rIdT" Type="${REL}/styles" Target="styles.xml"/>`);
    parts[`${wbDir}/styles.xml`] =
      o.styles ??
      `<?xml version="1.0" encoding="UTF-8"?><${p}styleSheet ${xmlns}><${p}numFmts count="1"><${p}numFmt numFmtId="164" formatCode="yyyy\\-mm\\-dd"/></${p}numFmts><${p}cellXfs count="2"><${p}xf numFmtId="0"/><${p}xf numFmtId="164"/></${p}cellXfs></${p}styleSheet>`;
  }
  if (o.sharedStrings) {
    rels.push(`<Relationship Id="rIdU" Type="${REL}/sharedStrings" Target="sharedStrings.xml"/>`);
    parts[`${wbDir}/sharedStrings.xml`] =
      `<?xml version="1.0" encoding="UTF-8"?><${p}sst ${xmlns}>${o.sharedStrings.map((s) => `<${p}si><${p}t>${s}</${p}t></${p}si>`).join('')}</${p}sst>`;
  }
  parts[`${wbDir}/_rels/${wbPart.slice(wbDir.length + 1)}.rels`] =
    `<?xml version="1.0" encoding="UTF-8"?><Relationships xmlns="${PKG}">${rels.join('')}${o.extraRels ?? ''}</Relationships>`;
  parts[o.sheetPart ?? `${wbDir}/worksheets/sheet1.xml`] =
    `<?xml version="1.0" encoding="UTF-8"?><${p}worksheet ${xmlns}><${p}sheetData>${o.sheetXml.replace(/<(\/?)(row|c|v|is|t)\b/g, `<$1${p}$2`)}</${p}sheetData></${p}worksheet>`;
  return parts;
}
