-- Every invoice.issued releases credit that another customer's payment reserved for the same
-- invoice id (Store.releaseForeignReservations); without an index that UPDATE read every credit
-- lot, a cost growing with the whole book. Reservations are rare: a partial index stays small.
CREATE INDEX credit_lots_reserved_for_invoice ON credit_lots (reserved_for_invoice) WHERE reserved_for_invoice IS NOT NULL;
