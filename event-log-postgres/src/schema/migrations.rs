//! The migrations: what each one does, and its statements, written against the
//! table names.

use super::tables::Tables;

/// The schema version this build writes and understands.
pub const SCHEMA_VERSION: i32 = 4;

/// What each migration does: `STEPS[n - 1]` describes migration `n`.
pub(super) const STEPS: [&str; SCHEMA_VERSION as usize] = [
    "create the schema, the ops table and its indexes",
    "create the meta table (the log's replay checkpoints)",
    "index the equivocation evidence ops (ops_evidence)",
    "add the lamport, story and idempotency-key columns, filled in from each row's \
     signed bytes, and index them (ops_lamport_id, ops_story_lamport_id, \
     ops_author_key_seq_id)",
];

/// One migration: SQL, or (version 4) SQL around a backfill computed in Rust.
pub(super) enum Step {
    /// Statements run as one batch.
    Sql(String),
    /// Adds the index columns (`add`), fills them in for the rows stored before
    /// they existed ([`backfill`](super::backfill::backfill)), then indexes them (`finish`).
    IndexColumns {
        /// Adds the columns.
        add: String,
        /// Drops the backfill's default and creates the indexes.
        finish: String,
    },
}

/// Migration `n` (1-based) is `migrations(t)[n - 1]`, written against the table
/// names. Each can be run again over its own result (a version row deleted by
/// hand): `IF NOT EXISTS` where it matters.
pub(super) fn migrations(t: &Tables) -> Vec<Step> {
    vec![
        Step::Sql(format!(
            "CREATE TABLE {ops} (
             position    bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
             id          bytea   NOT NULL UNIQUE CHECK (length(id) = 32),
             author      bytea   NOT NULL CHECK (length(author) = 32),
             seq         bigint  NOT NULL CHECK (seq >= 0),
             evidence    boolean NOT NULL,
             payload     text,
             payload_raw bytea,
             bytes       bytea   NOT NULL,
             CHECK ((payload IS NULL) <> (payload_raw IS NULL))
         );
         CREATE UNIQUE INDEX ops_primary_author_seq ON {ops} (author, seq) WHERE NOT evidence;
         CREATE INDEX ops_author_seq_id ON {ops} (author, seq, id);
         COMMENT ON TABLE {ops} IS 'event-log ops: one signed op per row; see event-log-postgres';",
            ops = t.ops
        )),
        // Version 2: small values kept beside the ops (the log's replay checkpoints).
        Step::Sql(format!(
            "CREATE TABLE {meta} (
                 key   text  PRIMARY KEY,
                 value bytea NOT NULL
             );",
            meta = t.meta
        )),
        // Version 3: evidence ops found without a scan.
        Step::Sql(format!(
            "CREATE INDEX IF NOT EXISTS ops_evidence ON {ops} (author, seq, id) WHERE evidence;",
            ops = t.ops
        )),
        // Version 4: the index columns and their indexes (built after the backfill:
        // once, rather than maintained through it).
        Step::IndexColumns {
            add: format!(
                "ALTER TABLE {ops}
                     ADD COLUMN IF NOT EXISTS lamport bigint NOT NULL DEFAULT 0
                         CONSTRAINT ops_lamport_check CHECK (lamport >= 0),
                     ADD COLUMN IF NOT EXISTS story bytea,
                     ADD COLUMN IF NOT EXISTS key bytea;",
                ops = t.ops
            ),
            finish: format!(
                "ALTER TABLE {ops} ALTER COLUMN lamport DROP DEFAULT;
                 CREATE INDEX IF NOT EXISTS ops_lamport_id ON {ops} (lamport, id);
                 CREATE INDEX IF NOT EXISTS ops_story_lamport_id ON {ops} (story, lamport, id)
                     WHERE story IS NOT NULL;
                 CREATE INDEX IF NOT EXISTS ops_author_key_seq_id ON {ops} (author, key, seq, id)
                     WHERE key IS NOT NULL;",
                ops = t.ops
            ),
        },
    ]
}

/// The statements that create the schema and its version table, as `migrate` runs
/// them first.
pub(super) fn preamble(t: &Tables) -> String {
    format!(
        "CREATE SCHEMA IF NOT EXISTS {s};
         CREATE TABLE IF NOT EXISTS {v} (
             version    integer PRIMARY KEY,
             applied_at timestamptz NOT NULL DEFAULT now()
         );",
        s = t.schema,
        v = t.version
    )
}
