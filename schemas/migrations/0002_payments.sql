-- Payments, refunds/reversals, pending and failed payments (SPEC section 2).

CREATE TABLE payments (
    payment_id         text        PRIMARY KEY,
    customer_id        text        NOT NULL REFERENCES customers,
    currency           char(3)     NOT NULL,
    amount_minor       bigint      NOT NULL CHECK (amount_minor > 0),
    method             text        NOT NULL,
    received_at        timestamptz NOT NULL,
    gateway_reference  text,
    payout_id          text,
    -- canonical text of the message data, to tell an identical re-send from a conflicting one
    fingerprint        text        NOT NULL,
    created_at         timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX payments_by_customer ON payments (customer_id, received_at);
CREATE INDEX payments_by_payout ON payments (payout_id) WHERE payout_id IS NOT NULL;

-- Money taken back from a payment: refunds (by refund_id) and reversals (chargebacks, returns).
CREATE TABLE payment_takebacks (
    takeback_id   text        PRIMARY KEY,
    payment_id    text        NOT NULL REFERENCES payments,
    kind          text        NOT NULL CHECK (kind IN ('refund', 'reversal')),
    amount_minor  bigint      NOT NULL CHECK (amount_minor > 0),
    reason        text,
    fingerprint   text        NOT NULL,
    created_at    timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX payment_takebacks_by_payment ON payment_takebacks (payment_id);

-- ACH/SEPA debits and transfers on their way: shown on the account, no journal effect
-- until they settle (payment.succeeded) or fail (payment.failed).
CREATE TABLE pending_payments (
    payment_id                text        PRIMARY KEY,
    customer_id               text        NOT NULL REFERENCES customers,
    currency                  char(3)     NOT NULL,
    amount_minor              bigint      NOT NULL CHECK (amount_minor > 0),
    method                    text        NOT NULL,
    invoice_ids               text[]      NOT NULL DEFAULT '{}',
    initiated_at              timestamptz NOT NULL,
    expected_settlement_date  date,
    state                     text        NOT NULL CHECK (state IN ('pending', 'settled', 'failed')),
    updated_at                timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX pending_payments_open ON pending_payments (customer_id) WHERE state = 'pending';

-- Each failed attempt, for the retry schedule and the customer notice.
CREATE TABLE payment_failures (
    payment_id     text        NOT NULL,
    attempt        int         NOT NULL,
    customer_id    text        NOT NULL REFERENCES customers,
    currency       char(3)     NOT NULL,
    amount_minor   bigint      NOT NULL,
    method         text        NOT NULL,
    failure_code   text        NOT NULL,
    retryable      boolean     NOT NULL,
    invoice_ids    text[]      NOT NULL DEFAULT '{}',
    failed_at      timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (payment_id, attempt)
);
