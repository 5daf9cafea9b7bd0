-- 0006_actions: the action kind of a result (PROTOCOL.md §2,
-- [[protocol.action]]): on the verdict of an emitted box, the name of the
-- action whose emitted_template it has; NULL for a result of no action and
-- for boxes of the other classes. Verdicts stored before it have none: they
-- were made before actions existed (and by the readings of PROTOCOL.md
-- before December; see README.md, Upgrades).
ALTER TABLE verdicts ADD COLUMN action TEXT CHECK (action IS NULL OR (class = 'emitted' AND action <> ''));
