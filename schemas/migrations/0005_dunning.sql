-- Dunning and failed-payment retries (SPEC section 4; docs/dunning.md): time zones, the claims
-- of reminders and steps sent, why due steps wait, disputes, promises to pay, scheduled retries.

-- IANA time zone names PostgreSQL knows, matched case-insensitively against customers'
-- `time_zone`. pg_timezone_names reads the whole tz directory (50-300 ms a scan), so it is
-- copied here and refreshed by the daemon at start. A name not in this table falls back to
-- UTC (docs/dunning.md), so POSIX strings such as 'UTC+3' (3 hours WEST in PostgreSQL) never
-- reach AT TIME ZONE.
CREATE TABLE time_zone_names (
    lower_name  text PRIMARY KEY,
    name        text NOT NULL
);
INSERT INTO time_zone_names (lower_name, name)
    SELECT DISTINCT ON (lower(name)) lower(name), name FROM pg_timezone_names ORDER BY lower(name), name;

-- One row per reminder or escalation sent: the claim, written in the transaction that writes its
-- outbox row. At most one per customer, step, local date, currency (and part, for groups above
-- the contract's 1000 invoices), across every daemon instance and `dunning tick` run.
CREATE TABLE dunning_reminders (
    reminder_id    text        PRIMARY KEY,          -- the event id (stable for the same reminder)
    customer_id    text        NOT NULL REFERENCES customers,
    step_offset    int         NOT NULL,
    local_date     date        NOT NULL,             -- the customer's date in its time zone
    currency       char(3)     NOT NULL,
    part           int         NOT NULL DEFAULT 0,
    event_type     text        NOT NULL,
    level          int         NOT NULL,
    channel        text        NOT NULL,
    template       text        NOT NULL,
    policy         text        NOT NULL,
    total_minor    bigint      NOT NULL,
    invoice_count  int         NOT NULL,
    pass_at        timestamptz NOT NULL,             -- the pass's instant (simulated with --now)
    created_at     timestamptz NOT NULL DEFAULT now(),
    UNIQUE (customer_id, step_offset, local_date, currency, part)
);
CREATE INDEX dunning_reminders_by_pass ON dunning_reminders (pass_at);

-- Each step at most once per invoice (SPEC section 4).
CREATE TABLE dunning_steps_sent (
    invoice_id     text    NOT NULL REFERENCES invoices,
    step_offset    int     NOT NULL,
    customer_id    text    NOT NULL,
    level          int     NOT NULL,
    reminder_id    text    NOT NULL REFERENCES dunning_reminders,
    balance_minor  bigint  NOT NULL,
    local_date     date    NOT NULL,
    PRIMARY KEY (invoice_id, step_offset)
);
CREATE INDEX dunning_steps_sent_by_customer ON dunning_steps_sent (customer_id);

-- Why a due step is not sent now (every reason, one row each); rewritten by a pass when it
-- changes. `since` is the instant of the pass that first saw it.
CREATE TABLE dunning_waits (
    invoice_id   text        NOT NULL,
    customer_id  text        NOT NULL,
    reason       text        NOT NULL,
    reference    text        NOT NULL,
    step_offset  int         NOT NULL,
    level        int         NOT NULL,
    detail       text        NOT NULL,
    since        timestamptz NOT NULL,
    PRIMARY KEY (invoice_id, reason, reference)
);
CREATE INDEX dunning_waits_by_customer ON dunning_waits (customer_id);

-- dispute.opened / dispute.resolved. A resolution may arrive first: the dispute is then
-- recorded resolved and a late opening changes nothing.
CREATE TABLE disputes (
    dispute_id   text        PRIMARY KEY,
    invoice_id   text        NOT NULL REFERENCES invoices,
    customer_id  text        NOT NULL REFERENCES customers,
    state        text        NOT NULL CHECK (state IN ('open', 'resolved')),
    reason       text,
    outcome      text,                               -- a label, kept as sent
    opened_at    timestamptz,
    resolved_at  timestamptz
);
CREATE INDEX disputes_open_by_customer ON disputes (customer_id) WHERE state = 'open';
CREATE INDEX disputes_by_invoice ON disputes (invoice_id);

-- promise_to_pay.recorded: one row per message (its source and id name it).
CREATE TABLE promises_to_pay (
    promise_id     text        PRIMARY KEY,
    customer_id    text        NOT NULL REFERENCES customers,
    invoice_ids    text[]      NOT NULL,
    promised_date  date        NOT NULL,
    currency       char(3),
    amount_minor   bigint,
    recorded_at    timestamptz NOT NULL,             -- the message's CloudEvents time
    created_at     timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX promises_to_pay_by_customer ON promises_to_pay (customer_id, promised_date);

-- Retries of failed payments: scheduled → requested (payment.retry_requested published by a
-- scheduler pass) → superseded by the next failure, or cancelled (payment.succeeded, or every
-- invoice it was for closed meanwhile).
CREATE TABLE payment_retries (
    payment_id    text        NOT NULL,
    attempt       int         NOT NULL,
    customer_id   text        NOT NULL REFERENCES customers,
    currency      char(3)     NOT NULL,
    amount_minor  bigint      NOT NULL,
    invoice_ids   text[]      NOT NULL DEFAULT '{}',
    not_before    timestamptz NOT NULL,
    state         text        NOT NULL CHECK (state IN ('scheduled', 'requested', 'superseded', 'cancelled')),
    state_reason  text,
    event_id      text,
    requested_at  timestamptz,                       -- the pass's instant
    created_at    timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (payment_id, attempt)
);
CREATE INDEX payment_retries_due ON payment_retries (not_before) WHERE state = 'scheduled';
CREATE INDEX payment_retries_live ON payment_retries (customer_id) WHERE state IN ('scheduled', 'requested');
