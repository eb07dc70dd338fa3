-- One registration per device: its platform token and the handle contacts use.
CREATE TABLE registrations (
    device BLOB PRIMARY KEY,
    handle BLOB NOT NULL UNIQUE,
    platform TEXT NOT NULL,
    token TEXT NOT NULL,
    p256dh TEXT NOT NULL,
    auth TEXT NOT NULL,
    senders BLOB NOT NULL,
    issued BIGINT NOT NULL,
    updated_ms BIGINT NOT NULL
);
