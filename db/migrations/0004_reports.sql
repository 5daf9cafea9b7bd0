-- 0004_reports: the scheduled audit reports written so far (PROTOCOL.md §5).
--
-- History, not chain state: a disconnect leaves these rows alone and the
-- state digest does not cover them. A report's period is the heights
-- from_height to to_height (the tip it read); the next report's period
-- starts above the last ok report's to_height.
CREATE TABLE reports (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    time        INTEGER NOT NULL, -- when it was made, Unix milliseconds
    from_height INTEGER NOT NULL CHECK (from_height >= 1),
    to_height   INTEGER NOT NULL CHECK (to_height >= 0),
    from_time   INTEGER,          -- the previous ok report's time; NULL for the first
    to_time     INTEGER NOT NULL, -- Unix milliseconds
    json_path   TEXT    NOT NULL, -- '' when no file was kept (an interrupted or failed report)
    html_path   TEXT    NOT NULL,
    summary     TEXT    NOT NULL CHECK (json_valid(summary)),
    status      TEXT    NOT NULL CHECK (status IN ('ok', 'interrupted', 'failed')),
    error       TEXT    NOT NULL DEFAULT '' -- why, when not ok
) STRICT;

CREATE INDEX reports_status_time ON reports (status, time);
