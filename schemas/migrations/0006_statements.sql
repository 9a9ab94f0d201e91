-- Statements, payment history and reports (issue 11): when each posting became known, in
-- commit order, and the indexes the portal's replies are read from (docs/portal.md).

-- `posted_at DEFAULT now()` is the transaction START time, and a transaction is visible only at
-- COMMIT: a posting can carry a posted_at long before anyone could see it. Every transaction that
-- posts journal entries therefore takes, at COMMIT (a deferred trigger, the last thing it does),
-- the one row of journal_clock FOR UPDATE, bumps its sequence and stamps itself with
-- greatest(clock_timestamp(), last stamp + 1 µs). The row lock is held until the commit is
-- visible, so stamps are strictly increasing in commit order, and a reader that takes the same
-- row FOR SHARE (waiting out any commit in progress) and reads the clock gets an instant H such
-- that exactly the transactions stamped <= H are visible and every later one is stamped > H.
CREATE TABLE journal_clock (
    only_row  boolean     PRIMARY KEY DEFAULT true CHECK (only_row),
    last_seq  bigint      NOT NULL,
    last_at   timestamptz NOT NULL
);
INSERT INTO journal_clock (last_seq, last_at) VALUES (0, clock_timestamp());

-- One row per committed transaction that posted journal entries.
CREATE TABLE journal_commits (
    xact_id   xid8        PRIMARY KEY,
    seq       bigint      NOT NULL UNIQUE,
    known_at  timestamptz NOT NULL UNIQUE
);

-- The transaction that posted an entry (NULL for entries posted before this migration: they are
-- known from their posted_at, long since committed). Added without a default first, so the
-- append-only table is not rewritten, then defaulted for every new entry.
ALTER TABLE journal_entries ADD COLUMN xact_id xid8;
ALTER TABLE journal_entries ALTER COLUMN xact_id SET DEFAULT pg_current_xact_id();
-- When and in which order an entry was written. Every change to a customer's books holds that
-- customer's lock until commit, so for one customer entry_seq (and booked_at, the clock at the
-- insert) follow the commit order: a customer's entries up to any booked_at are a real state of
-- its books. Statements date movements by booked_at and order them by entry_seq; the commit
-- stamp decides only what was known when.
CREATE SEQUENCE journal_entry_seq;
ALTER TABLE journal_entries ADD COLUMN entry_seq bigint;
ALTER TABLE journal_entries ALTER COLUMN entry_seq SET DEFAULT nextval('journal_entry_seq');
ALTER TABLE journal_entries ADD COLUMN booked_at timestamptz;
ALTER TABLE journal_entries ALTER COLUMN booked_at SET DEFAULT clock_timestamp();

CREATE FUNCTION journal_stamp_commit() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    stamped_seq bigint;
    stamped_at  timestamptz;
BEGIN
    IF NEW.xact_id IS NULL OR NEW.xact_id <> pg_current_xact_id()
       OR EXISTS (SELECT 1 FROM journal_commits WHERE xact_id = NEW.xact_id) THEN
        RETURN NULL;
    END IF;
    UPDATE journal_clock SET last_seq = last_seq + 1,
                             last_at = greatest(clock_timestamp(), last_at + interval '1 microsecond')
        RETURNING last_seq, last_at INTO stamped_seq, stamped_at;
    INSERT INTO journal_commits (xact_id, seq, known_at) VALUES (NEW.xact_id, stamped_seq, stamped_at);
    RETURN NULL;
END $$;
CREATE CONSTRAINT TRIGGER journal_entries_stamp_commit AFTER INSERT ON journal_entries
    DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION journal_stamp_commit();

-- Payments and take-backs name the transaction that booked them (the same stamp as their
-- journal entries), and payments get an insertion number for a stable keyset order.
ALTER TABLE payments ADD COLUMN xact_id xid8;
ALTER TABLE payments ALTER COLUMN xact_id SET DEFAULT pg_current_xact_id();
ALTER TABLE payments ADD COLUMN history_seq bigserial;
ALTER TABLE payment_takebacks ADD COLUMN xact_id xid8;
ALTER TABLE payment_takebacks ALTER COLUMN xact_id SET DEFAULT pg_current_xact_id();

-- Replies come from indexes: a customer's entries and lines (statements), its invoices (numbers,
-- due dates), its payments newest first (history pages), a payment's applications (allocations).
CREATE INDEX journal_entries_by_customer ON journal_entries (customer_id, entry_seq)
    INCLUDE (entry_id, currency, kind, reference, xact_id, posted_at, booked_at);
CREATE INDEX journal_lines_for_statements ON journal_lines (customer_id, entry_id) INCLUDE (account, invoice_id, debit_minor, credit_minor)
    WHERE account IN ('receivable', 'unapplied_credit');
CREATE INDEX invoices_by_customer ON invoices (customer_id) INCLUDE (invoice_id, number, issue_date, due_date);
CREATE INDEX payments_history ON payments (customer_id, received_at DESC, history_seq DESC) INCLUDE (payment_id, xact_id);
CREATE INDEX applications_by_payment ON applications (origin_id, invoice_id) WHERE origin_kind = 'payment';

-- The secret that signs payment-history cursors when the configuration gives none
-- (`cursor_secret`, credential file `cursor-secret`): shared by every instance through the
-- database. 244 random bits from two version-4 UUIDs.
CREATE TABLE cursor_secret (
    only_row  boolean PRIMARY KEY DEFAULT true CHECK (only_row),
    secret    text    NOT NULL
);
INSERT INTO cursor_secret (secret) VALUES (replace(gen_random_uuid()::text || gen_random_uuid()::text, '-', ''));
