/**
 * The 850 purchase order, 004010 and 005010 (one structure: where the releases differ, the wider
 * length of the two is allowed). Segments a sender may put here that are not declared are reported
 * as "not in the defined transaction set" (AK304 6); add them here, with their elements, to read them.
 */
import { elements, loop, notes, segment, structure, type SetStructure } from '../structure.js';

// Data element 235, product/service id qualifier: the codes partners use on PO1 lines.
const PRODUCT_ID_QUALIFIERS =
  'A1|A2|A3|A4|AB|B8|BL|BO|BP|CB|CG|CH|CR|DR|EA|EC|EN|EO|FS|FT|GS|HD|IB|IN|IS|IT|LT|MF|MG|MN|N1|N2|N3|N4|N5|N6|ND|NH|ON|PD|PI|PL|PN|PO|RC|SH|SK|SN|ST|SV|SW|UA|UD|UI|UK|UN|UP|UX|VA|VC|VN|VP|VS|ZZ';

// Element 349, item description type.
const PID01 = 'F|S|X';

// Element 248 allowance/charge indicator.
const SAC01 = 'A|C|N';

const PO1_PAIRS: string[] = [];
for (let i = 6; i <= 25; i += 2) PO1_PAIRS.push(`X ID 2 2 ${PRODUCT_ID_QUALIFIERS}`, 'X AN 1 48');
const PO1_NOTES = ['C0302', 'C0504'];
for (let i = 6; i <= 24; i += 2)
  PO1_NOTES.push(`P${String(i).padStart(2, '0')}${String(i + 1).padStart(2, '0')}`);

const SDQ_PAIRS: string[] = [];
const SDQ_NOTES: string[] = [];
for (let i = 5; i <= 21; i += 2) {
  SDQ_PAIRS.push('X AN 2 80', 'X R 1 15');
  SDQ_NOTES.push(`P${String(i).padStart(2, '0')}${String(i + 1).padStart(2, '0')}`);
}

const N1 = segment(
  'N1',
  'Name',
  elements('M ID 2 3', 'X AN 1 60', 'X ID 1 2', 'X AN 2 80', 'O ID 2 2', 'O ID 2 3'),
  notes('R0203', 'P0304'),
);

const N9 = segment(
  'N9',
  'Reference Identification',
  elements('M ID 2 3', 'X AN 1 50', 'X AN 1 45', 'O DT 8 8', 'X TM 4 8', 'O ID 2 2', 'O C 1 200'),
  notes('R0203', 'C0605'),
);

const nameLoop = (): ReturnType<typeof loop> => loop('N1', 'N1', 'N2*', 'N3*', 'N4*', 'REF*', 'PER*');
const noteLoop = (): ReturnType<typeof loop> => loop('N9', 'N9', 'DTM*', 'MSG*');

const pidLoop = loop('PID', 'PID', 'MEA*');

// 004010/005010 order inside a line: … SAC, ITD, SDQ, DTM, TD1, TD5, MSG, N9 loop, N1 loop, AMT loop.
const lineLoop = loop(
  'PO1',
  'PO1',
  'CUR?',
  'CTP*',
  'MEA*',
  { loop: pidLoop },
  'PO4*',
  'REF*',
  'PER*',
  'SAC*',
  'ITD*',
  'SDQ*',
  'DTM*',
  'TD1*',
  'TD5*',
  'MSG*',
  { loop: noteLoop() },
  { loop: nameLoop() },
  'AMT*',
);

const summaryLoop = loop('CTT', 'CTT', 'AMT*');

/** The 850's structure. */
export const PURCHASE_ORDER_850: SetStructure = structure(
  '850',
  'Purchase Order',
  loop(
    '850',
    'ST',
    'BEG',
    'CUR?',
    'REF*',
    'PER*',
    'FOB*',
    'SAC*',
    'ITD*',
    'DTM*',
    'TD1*',
    'TD5*',
    'AMT*',
    { loop: noteLoop() },
    { loop: nameLoop() },
    { loop: lineLoop, min: 1 },
    { loop: summaryLoop, max: 1 },
    'SE',
  ),
  [
    segment('ST', 'Transaction Set Header', elements('M ID 3 3', 'M AN 4 9', 'O AN 1 35')),
    segment(
      'BEG',
      'Beginning Segment for Purchase Order',
      elements(
        'M ID 2 2',
        'M ID 2 2',
        'M AN 1 22',
        'O AN 1 30',
        'M DT 8 8',
        'O AN 1 30',
        'O ID 2 2',
        'O ID 1 2',
        'O ID 2 2',
        'O ID 1 2',
        'O ID 2 2',
        'O AN 1 30',
      ),
    ),
    segment(
      'CUR',
      'Currency',
      elements(
        'M ID 2 3',
        'M ID 3 3',
        'O R 4 10',
        'O ID 2 3',
        'O ID 3 3',
        'O ID 3 3',
        ...Array.from({ length: 5 }, () => ['X ID 3 3', 'X DT 8 8', 'X TM 4 8']).flat(),
      ),
      notes('C0807', 'C0907', 'L101112', 'C1110', 'C1210', 'L131415', 'C1413', 'C1513'),
    ),
    segment(
      'REF',
      'Reference Identification',
      elements('M ID 2 3', 'X AN 1 50', 'X AN 1 80', 'O C 1 200'),
      notes('R0203'),
    ),
    segment(
      'PER',
      'Administrative Communications Contact',
      elements(
        'M ID 2 2',
        'O AN 1 60',
        'X ID 2 2',
        'X AN 1 256',
        'X ID 2 2',
        'X AN 1 256',
        'X ID 2 2',
        'X AN 1 256',
        'O AN 1 20',
      ),
      notes('P0304', 'P0506', 'P0708'),
    ),
    segment(
      'FOB',
      'F.O.B. Related Instructions',
      elements(
        'M ID 2 2',
        'X ID 2 2',
        'X AN 1 80',
        'O ID 2 2',
        'X ID 3 3',
        'X ID 2 2',
        'X AN 1 80',
        'O ID 2 2',
        'X ID 1 30',
      ),
      notes('C0302', 'C0405', 'C0706', 'C0809'),
    ),
    segment(
      'SAC',
      'Service, Promotion, Allowance, or Charge Information',
      elements(
        `M ID 1 1 ${SAC01}`,
        'X ID 4 4',
        'X ID 2 2',
        'X AN 1 10',
        'O N2 1 15',
        'X ID 1 1',
        'X R 1 6',
        'O R 1 9',
        'X ID 2 2',
        'X R 1 15',
        'O R 1 15',
        'O ID 2 2',
        'X AN 1 30',
        'O AN 1 20',
        'X AN 1 80',
        'X ID 2 3',
      ),
      notes('R0203', 'P0304', 'P0607', 'P0910', 'C1110', 'C1413', 'C1613'),
    ),
    segment(
      'ITD',
      'Terms of Sale/Deferred Terms of Sale',
      elements(
        'O ID 2 2',
        'O ID 1 2',
        'O R 1 6',
        'X DT 8 8',
        'O N0 1 3',
        'O DT 8 8',
        'O N0 1 3',
        'O N2 1 10',
        'O DT 8 8',
        'O N2 1 10',
        'O R 1 10',
        'O AN 1 80',
        'O N0 1 2',
        'O ID 1 2',
        'O R 1 10',
      ),
    ),
    segment(
      'DTM',
      'Date/Time Reference',
      elements('M ID 3 3', 'X DT 8 8', 'X TM 4 8', 'O ID 2 2', 'X ID 2 3', 'X AN 1 35'),
      notes('R020305', 'C0403', 'P0506'),
    ),
    segment(
      'TD1',
      'Carrier Details (Quantity and Weight)',
      elements(
        'O AN 3 5',
        'X N0 1 7',
        'O ID 1 1',
        'X ID 3 3',
        'O AN 1 50',
        'O ID 1 2',
        'X R 1 10',
        'X ID 2 2',
        'X R 1 8',
        'X ID 2 2',
      ),
      notes('C0102', 'C0203', 'C0304', 'C0607', 'P0708', 'P0910'),
    ),
    segment(
      'TD5',
      'Carrier Details (Routing Sequence/Transit Time)',
      elements(
        'O ID 1 2',
        'X ID 1 2',
        'X AN 2 80',
        'X ID 1 2',
        'X AN 1 35',
        'X ID 2 2',
        'O ID 1 2',
        'X AN 2 30',
        'O ID 2 2',
        'X ID 2 2',
        'O ID 1 3',
        'O ID 2 2',
        'O ID 2 3',
        'O ID 2 3',
        'O ID 2 2',
      ),
      notes('R0204050612', 'C0203', 'C0708', 'C1002', 'C1113', 'C1413', 'C1512'),
    ),
    segment('AMT', 'Monetary Amount', elements('M ID 1 3', 'M R 1 18', 'O ID 1 1')),
    N9,
    segment('MSG', 'Message Text', elements('M AN 1 264', 'O ID 2 2', 'O N0 1 9'), notes('C0302')),
    N1,
    segment('N2', 'Additional Name Information', elements('M AN 1 60', 'O AN 1 60')),
    segment('N3', 'Address Information', elements('M AN 1 55', 'O AN 1 55')),
    segment(
      'N4',
      'Geographic Location',
      elements('O AN 2 30', 'O ID 2 2', 'O ID 3 15', 'O ID 2 3', 'X ID 1 2', 'X AN 1 30', 'O ID 1 3'),
      notes('C0605', 'C0704'),
    ),
    segment(
      'PO1',
      'Baseline Item Data',
      elements('O AN 1 20', 'X R 1 15', 'O ID 2 2', 'X R 1 17', 'O ID 2 2', ...PO1_PAIRS),
      notes(...PO1_NOTES),
      6,
    ),
    segment(
      'CTP',
      'Pricing Information',
      elements(
        'O ID 2 2',
        'X ID 3 3',
        'X R 1 17',
        'X R 1 15',
        'X C 1 200',
        'O ID 3 3',
        'X R 1 10',
        'O R 1 10',
        'O ID 2 2',
        'O R 1 10',
        'O R 1 10',
      ),
      notes('P0405', 'C0607', 'C0902', 'C1002', 'C1103'),
    ),
    segment(
      'MEA',
      'Measurements',
      elements(
        'O ID 2 2',
        'O ID 1 3',
        'X R 1 20',
        'X C 1 200',
        'X R 1 20',
        'X R 1 20',
        'O ID 2 2',
        'X ID 2 2',
        'O ID 1 2',
        'O ID 1 2',
      ),
      notes('R03050608', 'C0504', 'C0604', 'L07030506', 'E0803'),
    ),
    segment(
      'PID',
      'Product/Item Description',
      elements(
        `M ID 1 1 ${PID01}`,
        'O ID 2 3',
        'X ID 2 3',
        'X AN 1 12',
        'X AN 1 80',
        'O ID 2 3',
        'O AN 1 15',
        'O ID 1 1',
        'O ID 2 3',
      ),
      notes('C0403', 'R0405', 'C0703', 'C0804', 'C0905'),
    ),
    segment(
      'PO4',
      'Item Physical Details',
      elements(
        'O N0 1 6',
        'X R 1 8',
        'X ID 2 2',
        'O ID 3 5',
        'X ID 1 1',
        'X R 1 9',
        'X ID 2 2',
        'X R 1 9',
        'X ID 2 2',
        'X R 1 8',
        'X R 1 8',
        'X R 1 8',
        'X ID 2 2',
        'O N0 1 6',
        'O AN 1 15',
        'X AN 1 15',
        'X AN 1 15',
        'O ID 1 2',
      ),
      notes(
        'C0203',
        'C0506',
        'C0607',
        'P0607',
        'C0805',
        'P0809',
        'C1013',
        'C1113',
        'C1213',
        'L13101112',
        'C1716',
      ),
    ),
    segment(
      'SDQ',
      'Destination Quantity',
      elements('M ID 2 2', 'O ID 1 2', 'M AN 2 80', 'M R 1 15', ...SDQ_PAIRS),
      notes(...SDQ_NOTES),
    ),
    segment(
      'CTT',
      'Transaction Totals',
      elements('M N0 1 6', 'O R 1 10', 'X R 1 10', 'X ID 2 2', 'X R 1 8', 'X ID 2 2', 'O AN 1 80'),
      notes('P0304', 'P0506'),
    ),
    segment('SE', 'Transaction Set Trailer', elements('M N0 1 10', 'M AN 4 9')),
  ],
  [{ segment: 'CTT', countElement: 1, loop: 'PO1', hash: { element: 2, of: { tag: 'PO1', element: 2 } } }],
);
