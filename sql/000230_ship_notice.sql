-- What a retailer's 856 ship notice needs from a shipment: the bill of lading (REF*BM), packaging and
-- weight (TD1), the carrier's tracking number (REF*CN, next to the SCAC of 000002), and the cartons
-- with their SSCC-18 (the pack level, MAN*GM).
--
-- An SSCC-18 is the extension digit, our GS1 company prefix (7–10 digits, sales.settings), a serial
-- reference filling 16 digits, and the GS1 mod-10 check digit. sales.next_sscc() hands them out from
-- a sequence, so one is never given twice.
-- Append-only: never edit this file once landed; add a new numbered migration instead.

ALTER TABLE sales.settings
  ADD COLUMN gs1_company_prefix text CHECK (gs1_company_prefix ~ '^[0-9]{7,10}$'),
  ADD COLUMN sscc_extension int NOT NULL DEFAULT 0 CHECK (sscc_extension BETWEEN 0 AND 9);
-- The demo company's prefix is GS1's own example prefix; set yours.
UPDATE sales.settings SET gs1_company_prefix = '0614141';

-- packaging_code: TD101 (e.g. CTN25, corrugated carton); package_count: TD102 for a shipment whose
-- cartons are not recorded one by one (when they are, they are counted); gross_weight: TD107 (when
-- empty, the cartons' weights are added).
ALTER TABLE sales.shipments
  ADD COLUMN bill_of_lading text CHECK (bill_of_lading ~ '^[!-~]([ -~]{0,29})$'),
  ADD COLUMN packaging_code text NOT NULL DEFAULT 'CTN25' CHECK (packaging_code ~ '^[A-Z]{3}[0-9A-Z]{2}$'),
  ADD COLUMN package_count int CHECK (package_count > 0),
  ADD COLUMN gross_weight numeric(12,3) CHECK (gross_weight > 0),
  ADD COLUMN weight_uom text NOT NULL DEFAULT 'LB' CHECK (weight_uom IN ('LB', 'KG'));

-- The GS1 mod-10 check digit of a string of digits (weights 3, 1, 3, … from the right).
CREATE FUNCTION sales.gs1_check_digit(p_digits text) RETURNS int
LANGUAGE sql IMMUTABLE STRICT AS $$
  SELECT (10 - sum(substr(reverse(p_digits), i, 1)::int * CASE WHEN i % 2 = 1 THEN 3 ELSE 1 END) % 10) % 10
    FROM generate_series(1, length(p_digits)) AS i
$$;

CREATE SEQUENCE sales.sscc_serial_seq;

-- The next SSCC-18 of our company prefix.
CREATE FUNCTION sales.next_sscc() RETURNS text
LANGUAGE plpgsql AS $$
DECLARE
  v_settings sales.settings%ROWTYPE;
  v_width    int;
  v_serial   bigint;
  v_body     text;
BEGIN
  SELECT * INTO v_settings FROM sales.settings;
  IF v_settings.gs1_company_prefix IS NULL THEN
    RAISE EXCEPTION 'no GS1 company prefix: set sales.settings.gs1_company_prefix (7–10 digits) to number cartons with SSCC-18s'
      USING ERRCODE = 'ERP01';
  END IF;
  v_width := 16 - length(v_settings.gs1_company_prefix);
  v_serial := nextval('sales.sscc_serial_seq');
  IF v_serial >= 10 ^ v_width THEN
    RAISE EXCEPTION 'SSCC serial references of prefix % are used up (% digits); take a new company prefix or extension digit',
      v_settings.gs1_company_prefix, v_width
      USING ERRCODE = 'ERP01';
  END IF;
  v_body := v_settings.sscc_extension::text || v_settings.gs1_company_prefix || lpad(v_serial::text, v_width, '0');
  RETURN v_body || sales.gs1_check_digit(v_body)::text;
END
$$;

-- One carton (or pallet) of a shipment, labelled with its SSCC-18.
CREATE TABLE sales.shipment_packages (
  shipment_id bigint NOT NULL REFERENCES sales.shipments (id) ON DELETE CASCADE,
  package_no  int NOT NULL CHECK (package_no > 0),
  sscc        text NOT NULL UNIQUE DEFAULT sales.next_sscc()
              CHECK (sscc ~ '^[0-9]{18}$' AND right(sscc, 1)::int = sales.gs1_check_digit(left(sscc, 17))),
  weight      numeric(12,3) CHECK (weight > 0),
  PRIMARY KEY (shipment_id, package_no)
);

-- The carton a shipment line is packed in (a line split over cartons is two shipment lines).
ALTER TABLE sales.shipment_lines
  ADD COLUMN package_no int,
  ADD CONSTRAINT shipment_lines_package FOREIGN KEY (shipment_id, package_no)
    REFERENCES sales.shipment_packages (shipment_id, package_no);
