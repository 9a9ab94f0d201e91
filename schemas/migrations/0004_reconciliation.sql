-- Reconciliation (SPEC section 3): bank entries, each decision with its explanation, the
-- candidates of every decision (dunning holds a customer's reminders while a credit in
-- `exception` names it), gateway payouts, and the keys that keep every look-up on an index.

-- Match keys of invoices, exactly as ARDomain.MatchKey computes them (ASCII only, so no locale
-- can make the two disagree): strict = letters and digits upper-cased; loose = strict with the
-- leading zeros of every run of digits removed; reference = strict of the payment reference.
ALTER TABLE invoices
    ADD COLUMN number_key text GENERATED ALWAYS AS (
        regexp_replace(translate(number, 'abcdefghijklmnopqrstuvwxyz', 'ABCDEFGHIJKLMNOPQRSTUVWXYZ'), '[^A-Z0-9]', '', 'g')
    ) STORED,
    ADD COLUMN number_loose_key text GENERATED ALWAYS AS (
        regexp_replace(
            regexp_replace(translate(number, 'abcdefghijklmnopqrstuvwxyz', 'ABCDEFGHIJKLMNOPQRSTUVWXYZ'), '(^|[^0-9])0+([0-9])', '\1\2', 'g'),
            '[^A-Z0-9]', '', 'g')
    ) STORED,
    ADD COLUMN reference_key text GENERATED ALWAYS AS (
        NULLIF(regexp_replace(translate(payment_reference, 'abcdefghijklmnopqrstuvwxyz', 'ABCDEFGHIJKLMNOPQRSTUVWXYZ'), '[^A-Z0-9]', '', 'g'), '')
    ) STORED;
CREATE INDEX invoices_number_key ON invoices (number_key);
CREATE INDEX invoices_number_loose_key ON invoices (number_loose_key);
CREATE INDEX invoices_reference_key ON invoices (reference_key) WHERE reference_key IS NOT NULL;

-- The debtor accounts customers registered (customers.bank_accounts), one row each, in
-- MatchKey.account form (upper case, no white space), kept in step by a trigger.
CREATE TABLE customer_bank_accounts (
    account_key  text NOT NULL,
    customer_id  text NOT NULL REFERENCES customers,
    PRIMARY KEY (account_key, customer_id)
);
CREATE INDEX customer_bank_accounts_by_customer ON customer_bank_accounts (customer_id);

CREATE FUNCTION normalized_account(account text) RETURNS text LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT translate(regexp_replace(account, '[ \t\r\n]', '', 'g'), 'abcdefghijklmnopqrstuvwxyz', 'ABCDEFGHIJKLMNOPQRSTUVWXYZ')
$$;

CREATE FUNCTION customer_bank_accounts_sync() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    DELETE FROM customer_bank_accounts WHERE customer_id = NEW.customer_id;
    INSERT INTO customer_bank_accounts (account_key, customer_id)
    SELECT DISTINCT normalized_account(value), NEW.customer_id FROM jsonb_array_elements_text(NEW.bank_accounts) AS value
    WHERE normalized_account(value) <> '';
    RETURN NEW;
END $$;
CREATE TRIGGER customers_bank_accounts AFTER INSERT OR UPDATE OF bank_accounts ON customers
    FOR EACH ROW EXECUTE FUNCTION customer_bank_accounts_sync();
INSERT INTO customer_bank_accounts (account_key, customer_id)
SELECT DISTINCT normalized_account(value), customer_id FROM customers, jsonb_array_elements_text(bank_accounts) AS value
WHERE normalized_account(value) <> '';

-- Gateway payouts: the card payments that name one payout_id, held in clearing until one bank
-- credit settles them all (rule 3). Collected by a trigger as payments are booked.
CREATE TABLE payouts (
    payout_id         text        NOT NULL,
    currency          char(3)     NOT NULL,
    gross_minor       bigint      NOT NULL CHECK (gross_minor > 0),
    payment_count     int         NOT NULL CHECK (payment_count > 0),
    settled_by_entry  text,
    settled_at        timestamptz,
    PRIMARY KEY (payout_id, currency)
);
-- Payout ids are compared case-insensitively (ASCII), as words of the remittance text.
CREATE INDEX payouts_by_id ON payouts (translate(payout_id, 'ABCDEFGHIJKLMNOPQRSTUVWXYZ', 'abcdefghijklmnopqrstuvwxyz'));
CREATE INDEX payouts_pending_by_amount ON payouts (currency, gross_minor) WHERE settled_by_entry IS NULL;

CREATE FUNCTION payouts_collect() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO payouts (payout_id, currency, gross_minor, payment_count) VALUES (NEW.payout_id, NEW.currency, NEW.amount_minor, 1)
    ON CONFLICT (payout_id, currency) DO UPDATE
        SET gross_minor = payouts.gross_minor + EXCLUDED.gross_minor, payment_count = payouts.payment_count + 1;
    RETURN NEW;
END $$;
CREATE TRIGGER payments_payout AFTER INSERT ON payments
    FOR EACH ROW WHEN (NEW.payout_id IS NOT NULL) EXECUTE FUNCTION payouts_collect();
INSERT INTO payouts (payout_id, currency, gross_minor, payment_count)
SELECT payout_id, currency, sum(amount_minor), count(*) FROM payments WHERE payout_id IS NOT NULL GROUP BY payout_id, currency;

-- Every booking seen on our accounts, once: identity = (account, bank reference), where a
-- booking without a bank reference gets a digest that leaves the file format out (see
-- ARDomain.BankEntryIdentity), so a camt.054, the camt.053 repeating it and a re-sent file are
-- the same row. Credits end in exactly one state; debits are recorded.
CREATE TABLE bank_entries (
    entry_id              text        PRIMARY KEY,
    account_key           text        NOT NULL,
    bank_reference        text        NOT NULL,
    direction             text        NOT NULL CHECK (direction IN ('credit', 'debit')),
    currency              char(3)     NOT NULL,
    amount_minor          bigint      NOT NULL CHECK (amount_minor > 0),
    booking_date          date,
    value_date            date,
    debtor_name           text,
    debtor_account        text,
    end_to_end_id         text,
    remittance_info       text,
    structured_reference  text,
    bank_transaction_code text,
    reversal              boolean     NOT NULL DEFAULT false,
    -- camt.053 | camt.054 | bai2 | mt940 | connector (bank.credit.received)
    origin_format         text        NOT NULL,
    statement_id          text,
    -- the message that first brought it
    source                text        NOT NULL,
    event_id              text        NOT NULL,
    -- direction, currency and amount: what must agree when the same identity comes again
    fingerprint           text        NOT NULL,
    state                 text        NOT NULL CHECK (state IN ('recorded', 'matched', 'partially_matched', 'exception', 'ignored')),
    reason                text        CHECK (reason IN ('no_match', 'ambiguous', 'currency_mismatch', 'unknown_reference', 'duplicate')),
    rule                  text,
    confidence            int         CHECK (confidence BETWEEN 0 AND 100),
    customer_id           text,
    payout_id             text,
    applied_minor         bigint      NOT NULL DEFAULT 0 CHECK (applied_minor >= 0),
    credit_minor          bigint      NOT NULL DEFAULT 0 CHECK (credit_minor >= 0),
    fees_minor            bigint      NOT NULL DEFAULT 0 CHECK (fees_minor >= 0),
    received_at           timestamptz NOT NULL DEFAULT now(),
    decided_at            timestamptz,
    UNIQUE (account_key, bank_reference),
    CHECK ((direction = 'debit') = (state = 'recorded')),
    CHECK ((state = 'exception') = (reason IS NOT NULL))
);
CREATE INDEX bank_entries_open_exceptions ON bank_entries (received_at, entry_id) WHERE state = 'exception';

-- Each decision about a credit (automatic, then any manual resolution), with everything
-- `receivablesd reconcile explain` prints: evidence, candidates with scores, why each lost.
CREATE TABLE reconciliation_decisions (
    decision_id   bigserial   PRIMARY KEY,
    entry_id      text        NOT NULL REFERENCES bank_entries,
    kind          text        NOT NULL CHECK (kind IN ('automatic', 'manual')),
    state         text        NOT NULL,
    reason        text,
    rule          text,
    confidence    int,
    explanation   jsonb       NOT NULL,
    source        text        NOT NULL,
    event_id      text        NOT NULL,
    decided_at    timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX reconciliation_decisions_by_entry ON reconciliation_decisions (entry_id, decision_id);

-- The customers among a credit's candidates, with the credit's state kept in step: dunning
-- holds a customer's reminders while a row of it is in `exception`; reports list open ones.
CREATE TABLE reconciliation_candidates (
    entry_id     text    NOT NULL REFERENCES bank_entries,
    customer_id  text    NOT NULL,
    state        text    NOT NULL,
    reason       text,
    rank         int     NOT NULL,
    score        int     NOT NULL,
    rule         text    NOT NULL,
    invoice_ids  text[]  NOT NULL DEFAULT '{}',
    PRIMARY KEY (entry_id, customer_id)
);
CREATE INDEX reconciliation_candidates_open_by_customer ON reconciliation_candidates (customer_id, entry_id) WHERE state = 'exception';

-- The journal entries of one business document (a payment's clearing account for a payout;
-- a bank entry's postings for verify).
CREATE INDEX journal_entries_by_reference ON journal_entries (reference, kind);
