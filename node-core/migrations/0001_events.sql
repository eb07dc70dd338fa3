-- Everything a device keeps. The whole file is encrypted by SQLCipher.
CREATE TABLE meta (
    key TEXT PRIMARY KEY NOT NULL,
    value BLOB NOT NULL
) STRICT;

CREATE TABLE logs (
    id BLOB PRIMARY KEY NOT NULL,
    kind INTEGER NOT NULL
) STRICT;

-- Accepted (status 0) and soft-failed (status 1) events. `header` and
-- `signature` are kept exactly as signed; `body` is NULL once deleted.
CREATE TABLE events (
    id BLOB PRIMARY KEY NOT NULL,
    log BLOB NOT NULL REFERENCES logs(id),
    depth INTEGER NOT NULL,
    author BLOB NOT NULL,
    seq INTEGER NOT NULL,
    effective_time INTEGER NOT NULL,
    first_seen INTEGER NOT NULL,
    status INTEGER NOT NULL,
    header BLOB NOT NULL,
    signature BLOB NOT NULL,
    body BLOB
) STRICT;
CREATE INDEX events_by_log ON events(log, depth, id);

-- Verified events waiting for their parents.
CREATE TABLE pending (
    id BLOB PRIMARY KEY NOT NULL,
    log BLOB NOT NULL,
    event BLOB NOT NULL,
    first_seen INTEGER NOT NULL
) STRICT;
