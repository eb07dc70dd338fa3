-- Contact requests from accounts that added this one but are not its
-- contacts: one per account (the newest), the request's bytes as they
-- came (checked before they were kept), bounded in total by the caller.
-- `seq` is the order they came in on this device (a clock set back
-- cannot make a new one look oldest); eviction reads it alone.
CREATE TABLE contact_requests (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    account BLOB NOT NULL UNIQUE,
    device BLOB NOT NULL,              -- the device that sent it (its link proved it)
    request BLOB NOT NULL,
    received INTEGER NOT NULL          -- ms since the epoch, this device's clock
) STRICT;
