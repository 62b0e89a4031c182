-- Login throttling per (account, client): a stranger who fails an account's password from
-- elsewhere no longer locks its owner out. Rows from before this migration (client_key '')
-- are never matched again; the window sweeper deletes them once expired.
ALTER TABLE login_attempts ADD COLUMN IF NOT EXISTS client_key varchar(64) NOT NULL DEFAULT '';
ALTER TABLE login_attempts DROP CONSTRAINT IF EXISTS login_attempts_pkey;
ALTER TABLE login_attempts ADD PRIMARY KEY (username_key, client_key);

-- Logins and registrations per client address (each costs an Argon2 hash), shared by every
-- db_service replica like the other windows.
CREATE TABLE IF NOT EXISTS client_auth_windows (
    client_key   varchar(64) PRIMARY KEY,
    attempts     integer     NOT NULL DEFAULT 0,
    window_start timestamptz NOT NULL DEFAULT now()
);

-- The sweeper deletes expired windows oldest first, a bounded batch at a time.
CREATE INDEX IF NOT EXISTS login_attempts_window_start ON login_attempts (window_start);
CREATE INDEX IF NOT EXISTS client_auth_windows_window_start ON client_auth_windows (window_start);
CREATE INDEX IF NOT EXISTS order_rate_windows_window_start ON order_rate_windows (window_start);
