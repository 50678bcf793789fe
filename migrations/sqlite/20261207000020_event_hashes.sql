-- Tamper evidence (sp-eventstore's chain.rs): each event's link, SHA-256 of
-- the link before it in its stream and of its content's canonical JSON,
-- computed by the writer under the write lock. Events written before this
-- migration get theirs from the platform once, right after it (NULL until
-- then); after that, an event without a link is one that lost it, and
-- verification says so.
ALTER TABLE events ADD COLUMN hash BLOB;

-- A row once the platform has linked the events written before chains.
CREATE TABLE event_chains (
    linked_at TEXT NOT NULL
);
