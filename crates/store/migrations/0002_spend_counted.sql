-- ferrolite's store, version 2: request ids whose cost was added to the
-- key/user/team counters without a spend-log row (disable_spend_logs), so a
-- replayed batch is not counted twice. Rows older than the dedupe window are
-- pruned by the writes themselves.
CREATE TABLE ferrolite_spend_counted (
    request_id TEXT PRIMARY KEY,
    counted_at BIGINT NOT NULL
);
CREATE INDEX ferrolite_spend_counted_at ON ferrolite_spend_counted (counted_at);
