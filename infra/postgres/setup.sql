-- Postbox database setup: roles, schemas and bus grants. Idempotent; apply as the database owner:
--   psql "$ADMIN_DATABASE_URL" -v ON_ERROR_STOP=1 -f infra/postgres/setup.sql
-- Generated from Sources/PostboxService/SchemaSetup.swift; a test keeps the two equal.

DO $$
BEGIN
    IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'postbox_bus') THEN
        CREATE ROLE postbox_bus NOLOGIN;
    END IF;
    IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'orders') THEN CREATE ROLE orders LOGIN; END IF;
    IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'inventory') THEN CREATE ROLE inventory LOGIN; END IF;
    IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'payments') THEN CREATE ROLE payments LOGIN; END IF;
    IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'payment_gateway') THEN
        CREATE ROLE payment_gateway LOGIN;
    END IF;
END
$$;

GRANT postbox_bus TO orders, inventory, payments;

REVOKE ALL ON SCHEMA public FROM PUBLIC;

CREATE SCHEMA IF NOT EXISTS orders AUTHORIZATION orders;

CREATE SCHEMA IF NOT EXISTS inventory AUTHORIZATION inventory;

CREATE SCHEMA IF NOT EXISTS payments AUTHORIZATION payments;

CREATE SCHEMA IF NOT EXISTS payment_gateway AUTHORIZATION payment_gateway;

CREATE SCHEMA IF NOT EXISTS bus;

GRANT USAGE ON SCHEMA bus TO postbox_bus;

GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA bus TO postbox_bus;

GRANT USAGE, SELECT, UPDATE ON ALL SEQUENCES IN SCHEMA bus TO postbox_bus;

ALTER DEFAULT PRIVILEGES IN SCHEMA bus GRANT SELECT, INSERT, UPDATE, DELETE ON TABLES TO postbox_bus;

ALTER DEFAULT PRIVILEGES IN SCHEMA bus GRANT USAGE, SELECT, UPDATE ON SEQUENCES TO postbox_bus;
