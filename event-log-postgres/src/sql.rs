//! The SQL a store runs, written once at open for its schema: the append statements
//! (see [`crate::append`] for what they promise) and the reads (see [`crate::read`]).

use crate::codec::{COLUMNS, O_COLUMNS};
use crate::schema::Tables;

/// The statements of a store.
#[derive(Debug)]
pub(crate) struct Sql {
    /// Appends.
    pub append: AppendSql,
    /// Reads and meta values.
    pub read: ReadSql,
}

impl Sql {
    /// The statements on the tables `t`, appends notifying `channel` if `notify`.
    pub(crate) fn new(t: &Tables, channel: &str, notify: bool) -> Self {
        Sql {
            append: AppendSql::new(t, channel, notify),
            read: ReadSql::new(t),
        }
    }
}

/// The statements of [`crate::append`].
#[derive(Debug)]
pub(crate) struct AppendSql {
    /// The batch `$1`–`$10` behind the position fence, skipping stored ids, with its
    /// notifications; one row per author with new ops.
    pub(crate) insert: String,
    /// `insert`, writing only if the op `$11` is stored; returns whether it was.
    pub(crate) guarded: String,
    /// What the conflict rule needs after a unique violation: the stored ops among
    /// the ids `$1` and the primary ops at the `(author, seq)` keys `$2`/`$3`.
    pub(crate) check: String,
    /// The batch with no checks, fence or notification (a benchmark baseline).
    pub(crate) raw: String,
}

const BATCH: &str = "SELECT * FROM unnest($1::bytea[], $2::bytea[], $3::bigint[], \
     $4::boolean[], $5::text[], $6::bytea[], $7::bytea[], $8::bigint[], $9::bytea[], \
     $10::bytea[]) WITH ORDINALITY \
     AS b(id, author, seq, evidence, payload, payload_raw, bytes, lamport, story, key, ord)";

impl AppendSql {
    /// The statements on the tables `t`, notifying `channel` if `notify`.
    pub(crate) fn new(t: &Tables, channel: &str, notify: bool) -> Self {
        // The batch's rows, in batch order; `filter` joins and restricts them.
        let rows = |filter: &str| {
            format!(
                "INSERT INTO {ops} ({COLUMNS})
                 SELECT {COLUMNS}
                 FROM ({BATCH}) AS b, fence{filter} ORDER BY ord",
                ops = t.ops
            )
        };
        let insert_rows = rows("");
        let fence = format!(
            "fence AS (SELECT pg_advisory_xact_lock_shared({}) AS held)",
            t.fence_key
        );
        // One notification per author with new ops, naming the highest new seq: small
        // (about 100 bytes, far below the 8000-byte limit) and never the op itself.
        let notify_expr = if notify {
            format!(
                "pg_notify('{channel}',
                     json_build_object('author', encode(author, 'hex'), 'seq', max(seq))::text)"
            )
        } else {
            "NULL".to_owned()
        };
        let insert = format!(
            "WITH {fence}, ins AS ({insert_rows} ON CONFLICT (id) DO NOTHING RETURNING author, seq)
             SELECT count(*)::bigint, {notify_expr}::text FROM ins GROUP BY author"
        );
        // The guard and the insert share the statement's snapshot: the rows are
        // written if and only if the predecessor was stored when it started.
        let guarded = format!(
            "WITH {fence}, pred AS (SELECT $11::bytea IS NULL
                 OR EXISTS (SELECT 1 FROM {ops} WHERE id = $11::bytea) AS found),
             ins AS ({rows} ON CONFLICT (id) DO NOTHING RETURNING author, seq),
             notified AS (SELECT {notify_expr} FROM ins GROUP BY author)
             SELECT pred.found, (SELECT count(*) FROM notified)::bigint FROM pred",
            ops = t.ops,
            rows = rows(", pred WHERE pred.found"),
        );
        let check = format!(
            "SELECT id, author, seq, evidence FROM {ops} WHERE id = ANY($1::bytea[])
             UNION
             SELECT o.id, o.author, o.seq, o.evidence
             FROM {ops} o JOIN unnest($2::bytea[], $3::bigint[]) AS k(author, seq)
               ON o.author = k.author AND o.seq = k.seq
             WHERE NOT o.evidence",
            ops = t.ops
        );
        AppendSql {
            insert,
            guarded,
            check,
            raw: format!(
                "INSERT INTO {ops} ({COLUMNS})
                 SELECT {COLUMNS}
                 FROM ({BATCH}) AS b ORDER BY ord",
                ops = t.ops
            ),
        }
    }
}

/// The statements of [`crate::read`].
#[derive(Debug)]
pub(crate) struct ReadSql {
    /// A page by position after `$1`, at most `$2` rows.
    pub(crate) load: String,
    /// A page by `(author, seq, id)` above the version vector `$1`/`$2`, at most
    /// `$3` rows but never splitting an `(author, seq)`.
    pub(crate) since: String,
    /// Each author's highest seq.
    pub(crate) heads: String,
    /// The op with id `$1`.
    pub(crate) get: String,
    /// How many ops are stored.
    pub(crate) count: String,
    /// The meta value at key `$1`.
    pub(crate) meta_get: String,
    /// Sets the meta value at key `$1` to `$2`.
    pub(crate) meta_put: String,
    /// Waits for every append in flight and holds new ones back until the
    /// transaction ends (see [`crate::append`]).
    pub(crate) fence: String,
    /// The `(author, seq, id)` of every evidence op.
    pub(crate) evidence: String,
    /// The ops of author `$1` with seq above `$2`, by `(seq, id)`: the first `$3`,
    /// and the rest of the last one's seq (never splitting a seq).
    pub(crate) author_ops: String,
    /// The ops after `($1, $2)` in `(lamport, id)` order, at most `$3`.
    pub(crate) timeline: String,
    /// The ops of story `$1` after `($2, $3)` in `(lamport, id)` order, at most `$4`.
    pub(crate) story_ops: String,
    /// The ops of author `$1` with idempotency key `$2`, by `(seq, id)`, at most `$3`.
    pub(crate) keyed: String,
}

impl ReadSql {
    /// The statements on the tables `t`.
    pub(crate) fn new(t: &Tables) -> Self {
        let ops = &t.ops;
        let authors = format!(
            "WITH RECURSIVE authors(author) AS (
                 (SELECT author FROM {ops} ORDER BY author LIMIT 1)
                 UNION ALL
                 SELECT (SELECT o.author FROM {ops} o WHERE o.author > a.author
                         ORDER BY o.author LIMIT 1)
                 FROM authors a WHERE a.author IS NOT NULL
             )"
        );
        // $1/$2: the version vector as arrays; $3: the limit. `page` is the first
        // `limit` ops in (author, seq, id) order; the second branch completes the
        // (author, seq) group of the page's last op, so a group is never split.
        let since = format!(
            "{authors},
             vv(author, seq) AS (SELECT * FROM unnest($1::bytea[], $2::bigint[])),
             page AS (
                 SELECT r.* FROM authors a
                 LEFT JOIN vv ON vv.author = a.author
                 CROSS JOIN LATERAL (
                     SELECT {COLUMNS} FROM {ops} o
                     WHERE o.author = a.author AND o.seq > coalesce(vv.seq, 0)
                     ORDER BY o.seq, o.id LIMIT $3
                 ) r
                 WHERE a.author IS NOT NULL
                 ORDER BY r.author, r.seq, r.id LIMIT $3
             ),
             last AS (
                 SELECT author, seq, id FROM page ORDER BY author DESC, seq DESC, id DESC LIMIT 1
             )
             SELECT * FROM (
                 SELECT {COLUMNS} FROM page
                 UNION ALL
                 SELECT {O_COLUMNS}
                 FROM {ops} o JOIN last
                   ON o.author = last.author AND o.seq = last.seq AND o.id > last.id
             ) s
             ORDER BY author, seq, id"
        );
        // Each indexed read is one index range in index order (the ORDER BY is the
        // index's), so the LIMIT stops the scan after k rows: O(k + log n). Story and
        // key are matched by equality only (bytea: bytes, no collation).
        let author_ops = format!(
            "WITH page AS (
                 SELECT {COLUMNS} FROM {ops}
                 WHERE author = $1 AND seq > $2
                 ORDER BY seq, id LIMIT $3
             ),
             last AS (SELECT seq, id FROM page ORDER BY seq DESC, id DESC LIMIT 1)
             SELECT * FROM (
                 SELECT {COLUMNS} FROM page
                 UNION ALL
                 SELECT {O_COLUMNS}
                 FROM {ops} o JOIN last
                   ON o.author = $1 AND o.seq = last.seq AND o.id > last.id
             ) s
             ORDER BY seq, id"
        );
        ReadSql {
            author_ops,
            timeline: format!(
                "SELECT {COLUMNS} FROM {ops} WHERE (lamport, id) > ($1, $2) \
                 ORDER BY lamport, id LIMIT $3"
            ),
            story_ops: format!(
                "SELECT {COLUMNS} FROM {ops} WHERE story = $1 AND (lamport, id) > ($2, $3) \
                 ORDER BY lamport, id LIMIT $4"
            ),
            keyed: format!(
                "SELECT {COLUMNS} FROM {ops} WHERE author = $1 AND key = $2 \
                 ORDER BY seq, id LIMIT $3"
            ),
            load: format!(
                "SELECT position, {COLUMNS} FROM {ops} WHERE position > $1 \
                 ORDER BY position LIMIT $2"
            ),
            since,
            heads: format!(
                "{authors}
                 SELECT a.author, (SELECT max(o.seq) FROM {ops} o WHERE o.author = a.author)
                 FROM authors a WHERE a.author IS NOT NULL"
            ),
            get: format!("SELECT {COLUMNS} FROM {ops} WHERE id = $1"),
            count: format!("SELECT count(*) FROM {ops}"),
            meta_get: format!("SELECT value FROM {} WHERE key = $1", t.meta),
            fence: format!("SELECT pg_advisory_xact_lock({})", t.fence_key),
            evidence: format!(
                "SELECT author, seq, id FROM {ops} WHERE evidence ORDER BY author, seq, id"
            ),
            meta_put: format!(
                "INSERT INTO {} (key, value) VALUES ($1, $2)
                 ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value",
                t.meta
            ),
        }
    }
}
