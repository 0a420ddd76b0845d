-- Schema version 2: revisions, so that several dp-local nodes can serve one database. Every commit raises the
-- one revision in dp_local_revision and stamps the rows it writes with it; a node that knows the state up to
-- revision N reads only the rows with rev > N to catch up. Rows that existed before stay at revision 1.
CREATE TABLE dp_local_revision (only_row boolean PRIMARY KEY DEFAULT true CHECK (only_row), rev bigint NOT NULL);
INSERT INTO dp_local_revision (rev) VALUES (1);
ALTER TABLE meta ADD COLUMN rev bigint NOT NULL DEFAULT 1;
ALTER TABLE pipelines ADD COLUMN rev bigint NOT NULL DEFAULT 1;
ALTER TABLE definitions ADD COLUMN rev bigint NOT NULL DEFAULT 1;
ALTER TABLE instances ADD COLUMN rev bigint NOT NULL DEFAULT 1;
ALTER TABLE attempts ADD COLUMN rev bigint NOT NULL DEFAULT 1;
ALTER TABLE tasks ADD COLUMN rev bigint NOT NULL DEFAULT 1;
ALTER TABLE runners ADD COLUMN rev bigint NOT NULL DEFAULT 1;
CREATE INDEX meta_rev ON meta (rev);
CREATE INDEX pipelines_rev ON pipelines (rev);
CREATE INDEX definitions_rev ON definitions (rev);
CREATE INDEX instances_rev ON instances (rev);
CREATE INDEX attempts_rev ON attempts (rev);
CREATE INDEX tasks_rev ON tasks (rev);
CREATE INDEX runners_rev ON runners (rev);
