-- Schema version 1 of a dp-local state kept in PostgreSQL: the same tables as the SQLite file's version 1.
-- Every table holds rows of one kind, keyed by (scope, id): scope is the pipeline id for rows that belong to a
-- pipeline and '' for global rows; body is the row's JSON (see dp-local's engine/records.rs). Rows are never
-- deleted; seq keeps the order in which rows were first written (an update keeps it).
CREATE TABLE meta (seq bigint GENERATED ALWAYS AS IDENTITY, scope text NOT NULL, id text NOT NULL, body text NOT NULL, PRIMARY KEY (scope, id));
CREATE TABLE pipelines (seq bigint GENERATED ALWAYS AS IDENTITY, scope text NOT NULL, id text NOT NULL, body text NOT NULL, PRIMARY KEY (scope, id));
CREATE TABLE definitions (seq bigint GENERATED ALWAYS AS IDENTITY, scope text NOT NULL, id text NOT NULL, body text NOT NULL, PRIMARY KEY (scope, id));
CREATE TABLE instances (seq bigint GENERATED ALWAYS AS IDENTITY, scope text NOT NULL, id text NOT NULL, body text NOT NULL, PRIMARY KEY (scope, id));
CREATE TABLE attempts (seq bigint GENERATED ALWAYS AS IDENTITY, scope text NOT NULL, id text NOT NULL, body text NOT NULL, PRIMARY KEY (scope, id));
CREATE TABLE tasks (seq bigint GENERATED ALWAYS AS IDENTITY, scope text NOT NULL, id text NOT NULL, body text NOT NULL, PRIMARY KEY (scope, id));
CREATE TABLE runners (seq bigint GENERATED ALWAYS AS IDENTITY, scope text NOT NULL, id text NOT NULL, body text NOT NULL, PRIMARY KEY (scope, id));
