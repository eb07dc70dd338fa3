-- Contact requests from accounts that added this one but are not its
-- contacts: one per account (the newest), the request's bytes as they
-- came (checked before they were kept), bounded in total by the caller.
CREATE TABLE contact_requests (
    account BLOB PRIMARY KEY NOT NULL,
    request BLOB NOT NULL,
    received INTEGER NOT NULL          -- ms since the epoch, this device's clock
) STRICT;
CREATE INDEX contact_requests_by_age ON contact_requests(received);
