//! Asterisk CDR parsing (cdr_csv, cdr_custom, vendor exports). Being written.
