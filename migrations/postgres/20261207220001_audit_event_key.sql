-- Each event the audit writer may spool carries a key drawn when it was first seen:
-- replaying the spool after the database returns skips events already written
-- (a crash between the insert and the spool's truncation), so each lands once.
-- Events written before this migration, and by writers without a spool, have none.
ALTER TABLE audit_events ADD COLUMN event_key TEXT;
CREATE UNIQUE INDEX audit_events_event_key ON audit_events (event_key);
