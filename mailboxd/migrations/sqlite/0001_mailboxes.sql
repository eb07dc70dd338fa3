-- Mailboxes, delivery tokens (hashes only), prekey bundles, deposits and
-- outstanding challenges. Nothing names an account, a device or a person.
CREATE TABLE mailboxes (
    id BLOB PRIMARY KEY,
    created_ms INTEGER NOT NULL,
    stored_count INTEGER NOT NULL DEFAULT 0,
    stored_bytes INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE tokens (
    mailbox BLOB NOT NULL,
    token_hash BLOB NOT NULL,
    stored_count INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (mailbox, token_hash)
);
CREATE TABLE prekeys (
    mailbox BLOB NOT NULL,
    slot TEXT NOT NULL,
    bundle BLOB NOT NULL,
    updated_ms INTEGER NOT NULL,
    PRIMARY KEY (mailbox, slot)
);
CREATE TABLE deposits (
    id BLOB PRIMARY KEY,
    mailbox BLOB NOT NULL,
    token_hash BLOB NOT NULL,
    body BLOB NOT NULL,
    size INTEGER NOT NULL,
    created_ms INTEGER NOT NULL,
    expires_ms INTEGER NOT NULL
);
CREATE INDEX deposits_by_mailbox ON deposits (mailbox, created_ms, id);
CREATE INDEX deposits_by_expiry ON deposits (expires_ms);
CREATE TABLE challenges (
    nonce BLOB PRIMARY KEY,
    mailbox BLOB NOT NULL,
    expires_ms INTEGER NOT NULL
);
CREATE INDEX challenges_by_expiry ON challenges (expires_ms);
