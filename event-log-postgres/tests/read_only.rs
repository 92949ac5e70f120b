//! Read-only opens (`?mode=ro`): no DDL, no migration, no write; a role with only
//! SELECT can read; a missing schema is NotFound; an old schema asks for a migration.

mod common;

use bft_json_crdt::VersionVector;
use common::*;
use event_log_conformance::read::ReadAll;
use event_log_core::{EventLog, EventLogConfig, OpRecord, OpStore, Position, StoreErrorKind};
use event_log_postgres::PostgresStore;

/// A login role that may only read `schema`; dropped with the guard.
struct RoleGuard {
    role: String,
}

impl RoleGuard {
    async fn reader_of(schema: &str) -> RoleGuard {
        let role = format!("{schema}_reader");
        admin()
            .await
            .batch_execute(&format!(
                "CREATE ROLE \"{role}\" LOGIN;
                 GRANT USAGE ON SCHEMA \"{schema}\" TO \"{role}\";
                 GRANT SELECT ON ALL TABLES IN SCHEMA \"{schema}\" TO \"{role}\";"
            ))
            .await
            .unwrap();
        RoleGuard { role }
    }

    /// The test server's URL, logging in as this role.
    fn url(&self, params: &str) -> String {
        let pg: tokio_postgres::Config = pg_url().parse().unwrap();
        let addr = common::proxy::server_addr(&pg_url());
        let db = pg.get_dbname().unwrap_or("postgres");
        format!("postgres://{}@{addr}/{db}{params}", self.role)
    }
}

impl Drop for RoleGuard {
    fn drop(&mut self) {
        let role = self.role.clone();
        let url = pg_url();
        let _ = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async {
                let (client, conn) = tokio_postgres::connect(&url, tokio_postgres::NoTls)
                    .await
                    .unwrap();
                tokio::spawn(conn);
                let _ = client
                    .batch_execute(&format!(
                        "DROP OWNED BY \"{role}\"; DROP ROLE IF EXISTS \"{role}\""
                    ))
                    .await;
            })
        })
        .join();
    }
}

/// A role with USAGE and SELECT only reads everything; writes are refused before
/// reaching the server.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_read_only_role_reads_without_write_privileges() {
    let (_guard, writer) = fresh_store("roread").await;
    let schema = writer.schema().to_owned();
    let log_store = PostgresStore::open(&pg_url(), config(&schema))
        .await
        .unwrap();
    let log = EventLog::open(log_store, key(1)).await.unwrap();
    for i in 0..3 {
        log.append_transition(event_log_core::Transition::now(
            format!("s-{i}"),
            "a",
            "b",
            "E",
        ))
        .await
        .unwrap();
    }
    log.close().await.unwrap();
    let fork = OpRecord::new(&signed(9, 1, vec![], r#"{"f":1}"#), true);
    writer.append(std::slice::from_ref(&fork)).await.unwrap();
    let role = RoleGuard::reader_of(&schema).await;

    let reader = PostgresStore::open(&role.url("?mode=ro"), config(&schema))
        .await
        .expect("a read-only role opens read-only");
    assert_eq!(reader.count().await.unwrap(), 4);
    assert_eq!(reader.load(Position::START, 100).await.unwrap().len(), 4);
    assert_eq!(
        reader
            .since(&VersionVector::new(), 100)
            .await
            .unwrap()
            .len(),
        4
    );
    assert_eq!(reader.heads().await.unwrap(), writer.heads().await.unwrap());
    assert_eq!(reader.get(&fork.id).await.unwrap(), Some(fork.clone()));
    assert_eq!(reader.evidence().await.unwrap().len(), 1);
    let ro = EventLogConfig::default().with_read_only(true);
    let view = EventLog::open_with(reader.clone(), key(1), ro)
        .await
        .expect("a read-only log opens");
    assert_eq!(view.all_events().await.unwrap().len(), 3);

    reader
        .acquire_sled(&view.sled_id())
        .await
        .expect("no lock taken");
    for err in [
        reader.append(&chain(2, 1, 1, "w")).await.unwrap_err(),
        reader
            .append_after(None, &chain(2, 1, 1, "w"))
            .await
            .unwrap_err(),
        reader.put_meta("k", b"v").await.unwrap_err(),
    ] {
        assert_eq!(err.kind(), StoreErrorKind::Invalid, "{err}");
        assert!(err.to_string().contains("read-only"), "{err}");
    }
    assert_eq!(writer.count().await.unwrap(), 4, "nothing was written");
}

/// A schema that does not exist is NotFound, naming it, and is not created.
#[tokio::test]
async fn a_missing_schema_is_not_found_and_not_created() {
    let schema = unique_schema("romissing");
    let _guard = SchemaGuard::new(&pg_url(), &schema);
    let url = format!("{}?mode=ro", pg_url());
    let err = PostgresStore::open(&url, config(&schema))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), StoreErrorKind::NotFound, "{err}");
    assert!(err.to_string().contains(&schema), "names the schema: {err}");
    let exists: i64 = admin()
        .await
        .query_one(
            "SELECT count(*) FROM pg_namespace WHERE nspname = $1",
            &[&schema],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(exists, 0, "a read-only open created the schema");
}

/// A schema one migration behind this build is refused read-only, saying to migrate
/// with a writable open, which then works.
#[tokio::test]
async fn an_old_schema_asks_for_a_migration() {
    let (_guard, writer) = fresh_store("roold").await;
    let schema = writer.schema().to_owned();
    writer.append(&chain(1, 1, 2, "o")).await.unwrap();
    let latest = event_log_postgres::SCHEMA_VERSION;
    admin()
        .await
        .execute(
            &format!("DELETE FROM \"{schema}\".schema_version WHERE version = $1"),
            &[&latest],
        )
        .await
        .unwrap();
    let url = format!("{}?mode=ro", pg_url());
    let err = PostgresStore::open(&url, config(&schema))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), StoreErrorKind::Invalid, "{err}");
    let text = err.to_string();
    assert!(
        text.contains(&format!("version {}", latest - 1)) && text.contains("migrat"),
        "says to migrate: {text}"
    );
    let migrated = PostgresStore::open(&pg_url(), config(&schema))
        .await
        .expect("a writable open migrates it");
    assert_eq!(migrated.count().await.unwrap(), 2);
    PostgresStore::open(&url, config(&schema))
        .await
        .expect("then it opens read-only");
}
