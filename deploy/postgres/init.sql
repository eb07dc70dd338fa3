-- Run once by the postgres image when its data volume is new
-- (/docker-entrypoint-initdb.d). One database per server: each keeps
-- its own schema and migration history. The owner is POSTGRES_USER.
CREATE DATABASE kith_mailboxd;
CREATE DATABASE kith_pushd;
CREATE DATABASE kith_named;
