-- Per-account settings. console_destinations: a JSON array of absolute URLs
-- (https://host[:port]/path-prefix) that federation sign-in links of this account's
-- role sessions may continue to, besides Rolegate's own /console.
ALTER TABLE accounts ADD COLUMN console_destinations TEXT NOT NULL DEFAULT '[]';
