-- Per-user order rate-limit windows, in the database so every db_service replica counts alike.
CREATE TABLE IF NOT EXISTS order_rate_windows (
    user_id      integer     PRIMARY KEY REFERENCES users (id) ON DELETE CASCADE,
    attempts     integer     NOT NULL DEFAULT 0,
    window_start timestamptz NOT NULL DEFAULT now()
);
