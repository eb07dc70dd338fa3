-- Mailboxes, delivery tokens (hashes only), prekey bundles, deposits and
-- outstanding challenges. Nothing names an account, a device or a person.
CREATE TABLE mailboxes (
    id BYTEA PRIMARY KEY,
    created_ms BIGINT NOT NULL,
    stored_count BIGINT NOT NULL DEFAULT 0,
    stored_bytes BIGINT NOT NULL DEFAULT 0
);
CREATE TABLE tokens (
    mailbox BYTEA NOT NULL,
    token_hash BYTEA NOT NULL,
    stored_count BIGINT NOT NULL DEFAULT 0,
    PRIMARY KEY (mailbox, token_hash)
);
CREATE TABLE prekeys (
    mailbox BYTEA NOT NULL,
    slot TEXT NOT NULL,
    bundle BYTEA NOT NULL,
    updated_ms BIGINT NOT NULL,
    PRIMARY KEY (mailbox, slot)
);
CREATE TABLE deposits (
    id BYTEA PRIMARY KEY,
    mailbox BYTEA NOT NULL,
    token_hash BYTEA NOT NULL,
    body BYTEA NOT NULL,
    size BIGINT NOT NULL,
    created_ms BIGINT NOT NULL,
    expires_ms BIGINT NOT NULL
);
CREATE INDEX deposits_by_mailbox ON deposits (mailbox, created_ms, id);
CREATE INDEX deposits_by_expiry ON deposits (expires_ms);
CREATE TABLE challenges (
    nonce BYTEA PRIMARY KEY,
    mailbox BYTEA NOT NULL,
    expires_ms BIGINT NOT NULL
);
CREATE INDEX challenges_by_expiry ON challenges (expires_ms);
