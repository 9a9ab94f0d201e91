-- Partitioned intake (issue 13, docs/partitioning.md): the router numbers each partition's
-- messages, consumers record how far they applied, consumer threads announce themselves so every
-- instance computes the same balanced assignment, and the router remembers which customer an
-- invoice or payment id belongs to (so a message naming only that id follows its customer).

-- The number of customer partitions in force. Changed only by a router after every partition of
-- the old layout is drained (applied_seq = routed_seq everywhere), so no customer is split.
CREATE TABLE partition_layout (
    singleton   boolean     PRIMARY KEY DEFAULT true CHECK (singleton),
    partitions  int         NOT NULL CHECK (partitions BETWEEN 1 AND 1024),
    changed_at  timestamptz NOT NULL DEFAULT now()
);

-- Per partition queue: the last sequence number routed into it (written by the router, committed
-- after the broker confirmed the publishes).
CREATE TABLE partition_routed (
    queue       text        PRIMARY KEY,
    routed_seq  bigint      NOT NULL DEFAULT 0 CHECK (routed_seq >= 0),
    routed_at   timestamptz NOT NULL DEFAULT now()
);

-- Per partition queue: the last sequence number applied (committed with the messages' effects) and
-- how many numbers were given up as dead-lettered by the broker. A separate table from
-- partition_routed so the router and the consumers never wait for each other's row locks.
CREATE TABLE partition_applied (
    queue        text        PRIMARY KEY,
    applied_seq  bigint      NOT NULL DEFAULT 0 CHECK (applied_seq >= 0),
    skipped      bigint      NOT NULL DEFAULT 0 CHECK (skipped >= 0),
    applied_at   timestamptz NOT NULL DEFAULT now()
);

-- The customer of every invoice and payment id the router has routed (first one wins).
CREATE TABLE partition_keys (
    kind         text NOT NULL CHECK (kind IN ('invoice', 'payment')),
    id           text NOT NULL,
    customer_id  text NOT NULL,
    PRIMARY KEY (kind, id)
);

-- Consumer threads of all instances; a member whose heartbeat is older than the lease is gone.
-- `holds` lists the partition queues it consumes now (for operators: `check-config`, metrics).
CREATE TABLE partition_members (
    member_id     text        PRIMARY KEY,
    host          text        NOT NULL,
    pid           int         NOT NULL,
    started_at    timestamptz NOT NULL DEFAULT now(),
    heartbeat_at  timestamptz NOT NULL DEFAULT now(),
    holds         text[]      NOT NULL DEFAULT '{}'
);
