-- receivablesd foundation: inbox/outbox, customers, invoices, credit notes, credit lots,
-- applications, journal, held messages, dead letters.
-- All money is bigint minor units with its currency beside it (SPEC section 2).

-- Inbound de-duplication key (SPEC section 2): one row per (source, id) ever accepted.
CREATE TABLE inbox (
    source       text        NOT NULL,
    event_id     text        NOT NULL,
    type         text        NOT NULL,
    outcome      text        NOT NULL CHECK (outcome IN ('applied', 'held', 'rejected', 'noop')),
    received_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (source, event_id)
);

-- Outbound events written in the transaction that caused them and published with confirms.
CREATE TABLE outbox (
    seq             bigserial   PRIMARY KEY,
    event_id        text        NOT NULL UNIQUE,
    exchange        text        NOT NULL,
    routing_key     text        NOT NULL,
    type            text        NOT NULL,
    correlation_id  text,
    headers         jsonb       NOT NULL DEFAULT '{}'::jsonb,
    body            bytea       NOT NULL,
    created_at      timestamptz NOT NULL DEFAULT now(),
    published_at    timestamptz
);
CREATE INDEX outbox_unpublished ON outbox (seq) WHERE published_at IS NULL;

CREATE TABLE customers (
    customer_id     text        PRIMARY KEY,
    name            text        NOT NULL,
    email           text,
    locale          text,
    time_zone       text,
    dunning_policy  text,
    bank_accounts   jsonb       NOT NULL DEFAULT '[]'::jsonb,
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE invoices (
    invoice_id         text        PRIMARY KEY,
    customer_id        text        NOT NULL REFERENCES customers,
    number             text        NOT NULL,
    currency           char(3)     NOT NULL,
    amount_minor       bigint      NOT NULL CHECK (amount_minor >= 0),
    balance_minor      bigint      NOT NULL CHECK (balance_minor >= 0),
    written_off_minor  bigint      NOT NULL DEFAULT 0 CHECK (written_off_minor >= 0),
    status             text        NOT NULL CHECK (status IN ('open', 'partially_paid', 'paid', 'voided', 'written_off')),
    issue_date         date        NOT NULL,
    due_date           date        NOT NULL,
    payment_reference  text,
    po_number          text,
    document_url       text,
    -- the canonical form of the issuing message, to tell an identical re-send from a conflicting one
    issued_fingerprint text        NOT NULL,
    created_at         timestamptz NOT NULL DEFAULT now(),
    updated_at         timestamptz NOT NULL DEFAULT now(),
    CHECK (balance_minor <= amount_minor OR status IN ('voided', 'written_off'))
);
CREATE INDEX invoices_open_by_customer ON invoices (customer_id, currency, due_date, issue_date, invoice_id)
    WHERE status IN ('open', 'partially_paid');
CREATE INDEX invoices_number ON invoices (lower(number));
CREATE INDEX invoices_payment_reference ON invoices (payment_reference) WHERE payment_reference IS NOT NULL;

CREATE TABLE credit_notes (
    credit_note_id  text        PRIMARY KEY,
    customer_id     text        NOT NULL REFERENCES customers,
    currency        char(3)     NOT NULL,
    amount_minor    bigint      NOT NULL CHECK (amount_minor > 0),
    invoice_id      text        REFERENCES invoices,
    fingerprint     text        NOT NULL,
    created_at      timestamptz NOT NULL DEFAULT now()
);

-- Money of a payment or credit note not (or no longer) applied to an invoice: the customer's
-- unapplied credit, kept per origin so refunds take back their own payment's credit first and
-- new invoices consume the oldest credit first.
CREATE TABLE credit_lots (
    lot_id           bigserial   PRIMARY KEY,
    customer_id      text        NOT NULL REFERENCES customers,
    currency         char(3)     NOT NULL,
    origin_kind      text        NOT NULL CHECK (origin_kind IN ('payment', 'credit_note', 'bank_credit')),
    origin_id        text        NOT NULL,
    original_minor   bigint      NOT NULL CHECK (original_minor > 0),
    remaining_minor  bigint      NOT NULL CHECK (remaining_minor >= 0 AND remaining_minor <= original_minor),
    -- a held allocation: reserved for an invoice not yet issued (SPEC "Money rules")
    reserved_for_invoice text,
    created_at       timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX credit_lots_available ON credit_lots (customer_id, currency, lot_id) WHERE remaining_minor > 0;
CREATE INDEX credit_lots_origin ON credit_lots (origin_kind, origin_id);

-- Money applied to invoices, in the order it was applied (seq), by origin.
CREATE TABLE applications (
    application_id  bigserial   PRIMARY KEY,
    invoice_id      text        NOT NULL REFERENCES invoices,
    customer_id     text        NOT NULL REFERENCES customers,
    currency        char(3)     NOT NULL,
    origin_kind     text        NOT NULL CHECK (origin_kind IN ('payment', 'credit_note', 'bank_credit')),
    origin_id       text        NOT NULL,
    amount_minor    bigint      NOT NULL CHECK (amount_minor > 0),
    -- money later taken back (refund, reversal, void to credit); never more than amount
    unwound_minor   bigint      NOT NULL DEFAULT 0 CHECK (unwound_minor >= 0 AND unwound_minor <= amount_minor),
    created_at      timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX applications_by_invoice ON applications (invoice_id, application_id);
CREATE INDEX applications_by_origin ON applications (origin_kind, origin_id, application_id);

-- Immutable double-entry journal (SPEC section 5). Each entry is in one currency and balances.
CREATE TABLE journal_entries (
    entry_id     text        PRIMARY KEY,
    kind         text        NOT NULL,
    customer_id  text        NOT NULL,
    currency     char(3)     NOT NULL,
    reference    text        NOT NULL,
    posted_at    timestamptz NOT NULL DEFAULT now()
);
CREATE TABLE journal_lines (
    entry_id      text    NOT NULL REFERENCES journal_entries,
    line_no       int     NOT NULL,
    account       text    NOT NULL,
    customer_id   text    NOT NULL,
    invoice_id    text,
    debit_minor   bigint  NOT NULL CHECK (debit_minor >= 0),
    credit_minor  bigint  NOT NULL CHECK (credit_minor >= 0),
    PRIMARY KEY (entry_id, line_no),
    CHECK ((debit_minor = 0) <> (credit_minor = 0))
);
CREATE INDEX journal_lines_by_invoice ON journal_lines (invoice_id) WHERE invoice_id IS NOT NULL;
CREATE INDEX journal_lines_by_customer ON journal_lines (customer_id, account);

-- Journal entries are immutable: corrections are new entries.
CREATE FUNCTION journal_is_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'journal is append-only (% on %)', TG_OP, TG_TABLE_NAME;
END $$;
CREATE TRIGGER journal_entries_immutable BEFORE UPDATE OR DELETE ON journal_entries
    FOR EACH ROW EXECUTE FUNCTION journal_is_append_only();
CREATE TRIGGER journal_lines_immutable BEFORE UPDATE OR DELETE ON journal_lines
    FOR EACH ROW EXECUTE FUNCTION journal_is_append_only();

-- Messages waiting for something not yet known (SPEC section 7).
CREATE TABLE held_messages (
    held_id        bigserial   PRIMARY KEY,
    source         text        NOT NULL,
    event_id       text        NOT NULL,
    type           text        NOT NULL,
    waiting_kind   text        NOT NULL CHECK (waiting_kind IN ('customer', 'payment', 'invoice')),
    waiting_id     text        NOT NULL,
    user_id        text,
    body           bytea       NOT NULL,
    held_at        timestamptz NOT NULL DEFAULT now(),
    UNIQUE (source, event_id)
);
CREATE INDEX held_messages_waiting ON held_messages (waiting_kind, waiting_id, held_id);
CREATE INDEX held_messages_age ON held_messages (held_at);

-- Every rejection, for `receivablesd dead-letter list|replay`; the message itself is also
-- published to the dead-letter exchange through the outbox.
CREATE TABLE dead_letters (
    dead_letter_id  bigserial   PRIMARY KEY,
    source          text,
    event_id        text,
    type            text,
    routing_key     text        NOT NULL,
    user_id         text,
    reason          text        NOT NULL,
    detail          text        NOT NULL,
    body            bytea       NOT NULL,
    properties      jsonb       NOT NULL DEFAULT '{}'::jsonb,
    rejected_at     timestamptz NOT NULL DEFAULT now(),
    replayed_at     timestamptz
);
CREATE INDEX dead_letters_reason ON dead_letters (reason, dead_letter_id);
