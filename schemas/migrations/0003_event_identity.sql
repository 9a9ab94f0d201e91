-- One event id per fact (issue 14): each invoice counts its committed status transitions, and
-- invoice.status_changed takes its id from (invoice id, transition number), not from the message
-- that caused the transition. Advanced exactly once per committed transition, in the transaction
-- that commits it, so a rolled-back attempt leaves it as it was.
-- Invoices stored before this migration start at 0: their earlier events had message-derived ids,
-- which can never equal the new ones (different derivation), so no fact is renamed or reused.
ALTER TABLE invoices ADD COLUMN status_seq bigint NOT NULL DEFAULT 0 CHECK (status_seq >= 0);
