-- Tamper evidence (sp-eventstore's chain.rs): each event's link, SHA-256 of
-- the link before it in its stream and of its content's canonical JSON,
-- computed by the writer under the write lock. Events written before this
-- migration get theirs from the platform right after it (NULL until then).
ALTER TABLE events ADD COLUMN hash BLOB;
