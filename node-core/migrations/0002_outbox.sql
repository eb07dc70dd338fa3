-- Own events not yet held by a device of each other member account.
CREATE TABLE outbox (
    event BLOB NOT NULL,
    log BLOB NOT NULL,
    account BLOB NOT NULL,
    PRIMARY KEY (event, account)
) STRICT;
CREATE INDEX outbox_by_log ON outbox(log, account);
