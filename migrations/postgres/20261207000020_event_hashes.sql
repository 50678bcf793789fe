-- Tamper evidence (sp-eventstore's chain.rs): each event's link, SHA-256 of
-- the link before it in its stream and of its content's canonical JSON. The
-- content hash is computed by the writer, since SQL cannot rebuild the
-- canonical JSON; the link is computed here, in the append statement, from
-- the stream's last link. Events written before this migration get theirs
-- from the platform once, right after it (NULL until then); after that, an
-- event without a link is one that lost it, and verification says so.
ALTER TABLE events ADD COLUMN hash BYTEA;

-- The links of a batch of one stream after `previous`. A NULL previous (a
-- stream not chained yet) gives NULL links, for the backfill to complete.
CREATE FUNCTION event_hash_chain(previous BYTEA, contents BYTEA[]) RETURNS BYTEA[]
LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE AS $$
DECLARE
    links BYTEA[] := '{}';
    link BYTEA := previous;
    content BYTEA;
BEGIN
    FOREACH content IN ARRAY contents LOOP
        link := sha256(link || content);
        links := links || link;
    END LOOP;
    RETURN links;
END
$$;

-- A row once the platform has linked the events written before chains.
CREATE TABLE event_chains (
    linked_at TIMESTAMPTZ NOT NULL
);
