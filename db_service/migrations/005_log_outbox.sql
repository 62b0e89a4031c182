-- The log outbox: the record of a change that moves money or identity (an order placed or
-- cancelled, a user registered, deactivated, given a new password or role), written in the
-- same transaction as the change. db_service relays it to logging_service in id order and
-- deletes each row once logging_service acknowledged it (db_service/relay.py).
CREATE TABLE IF NOT EXISTS log_outbox (
    id         bigserial   PRIMARY KEY,
    record     jsonb       NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now()
);
