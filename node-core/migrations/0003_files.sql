-- Files offered in conversations: what the offer says, where the
-- (encrypted) content lives in the profile, and which chunks are here.
CREATE TABLE files (
    id BLOB PRIMARY KEY NOT NULL,   -- the offer event's id
    log BLOB NOT NULL,
    name TEXT NOT NULL,
    size INTEGER NOT NULL,
    chunk_size INTEGER NOT NULL,
    chunks INTEGER NOT NULL,
    local TEXT NOT NULL,            -- file name under files/
    key BLOB NOT NULL,              -- secretstream key of the content
    have BLOB NOT NULL,             -- bitmap of chunks held
    complete INTEGER NOT NULL
) STRICT;
CREATE INDEX files_by_log ON files(log);
