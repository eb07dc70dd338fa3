-- Each handle's latest record (a binding, or a release that keeps the handle's
-- history so an older record cannot be replayed).
CREATE TABLE names (
    handle TEXT PRIMARY KEY,
    skeleton TEXT NOT NULL,
    account BLOB NOT NULL,
    record BLOB NOT NULL,
    issued BIGINT NOT NULL,
    released BIGINT NOT NULL,
    updated_ms BIGINT NOT NULL
);
-- Two handles that look alike are never held at once.
CREATE UNIQUE INDEX names_skeleton ON names (skeleton) WHERE released = 0;
CREATE INDEX names_account ON names (account);

-- Account-log events seen in records, so a later record with an older log
-- cannot hide a revocation.
CREATE TABLE account_events (
    account BLOB NOT NULL,
    id BLOB NOT NULL,
    event BLOB NOT NULL,
    PRIMARY KEY (account, id)
);
