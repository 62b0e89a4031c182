-- Accounts. Email uniqueness is case-insensitive through the unique index on lower(email).
CREATE TABLE IF NOT EXISTS users (
    id              serial PRIMARY KEY,
    sid             varchar(15)  NOT NULL UNIQUE,
    username        varchar(50)  NOT NULL UNIQUE,
    email           varchar(255) NOT NULL,
    password_hash   text         NOT NULL,
    role            varchar(16)  NOT NULL DEFAULT 'customer' CHECK (role IN ('customer', 'admin')),
    is_active       boolean      NOT NULL DEFAULT true,
    token_version   integer      NOT NULL DEFAULT 1,
    created_at      timestamptz  NOT NULL DEFAULT now(),
    updated_at      timestamptz  NOT NULL DEFAULT now()
);
CREATE UNIQUE INDEX IF NOT EXISTS users_email_lower_key ON users (lower(email));

-- Login throttling lives in the database so every db_service replica sees the same counters.
CREATE TABLE IF NOT EXISTS login_attempts (
    username_key    varchar(50)  PRIMARY KEY,
    attempts        integer      NOT NULL DEFAULT 0,
    window_start    timestamptz  NOT NULL DEFAULT now()
);
