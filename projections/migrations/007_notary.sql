-- The notary (consumers/notary/service.py): one RFC 9162 Merkle tree per partition of credit.events.
-- Written only by the notary, each batch in one transaction with its position (trees).
create schema if not exists notary;

-- Per partition: the Kafka position (next offset to read), the number of leaves and the frontier
-- (roots of the complete subtrees making up the tree, largest first, 32 bytes each).
create table if not exists notary.trees (
    partition   int primary key,
    next_offset bigint not null,
    tree_size   bigint not null,
    frontier    bytea  not null,
    updated_at  timestamptz not null default now()
);

-- Every leaf: SHA-256(0x00 || the LedgerEntry record bytes as stored in Kafka).
create table if not exists notary.leaves (
    partition    int    not null,
    leaf_index   bigint not null,
    kafka_offset bigint not null,
    leaf_hash    bytea  not null,
    primary key (partition, leaf_index)
);
create unique index if not exists leaves_offset on notary.leaves (partition, kafka_offset);

-- Roots of the complete aligned subtrees at levels 4, 8, 12 ... (2^level leaves each).
create table if not exists notary.nodes (
    partition  int      not null,
    level      smallint not null,
    node_index bigint   not null,
    hash       bytea    not null,
    primary key (partition, level, node_index)
);

-- Every signed tree head; published = it was acknowledged on credit.checkpoints.
create table if not exists notary.heads (
    partition    int    not null,
    tree_size    bigint not null,
    root         bytea  not null,
    timestamp_ms bigint not null,
    last_offset  bigint not null,
    key_id       text   not null,
    signature    bytea  not null,
    published    boolean not null default false,
    primary key (partition, tree_size)
);
