//! Least-privilege PostgreSQL roles (deploy/postgres/roles.sql): a
//! migration role that `migrate` runs as, and a runtime role without DDL
//! rights that `run` (with `worker.migrate_on_start = false`) runs as.
//! Roles are the server's, not a database's: they get unique names and a
//! guard drops them, and the test's database, even when the test fails.

use crate::support::system::{System, deleted_event, user_event};
use clerk_sync_runtime::secret_url::SecretUrl;
use clerk_sync_store::repository::database;
use clerk_sync_testkit::cleanup::{blocking, unique};
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

const SERVER: &str = "postgres://postgres@127.0.0.1:5432/postgres";
const WAIT: Duration = Duration::from_secs(30);
const T0: i64 = 1_700_000_200_000;

/// Two roles of the test's own; dropped, after the database that holds
/// their tables and grants, when the test ends.
struct Roles {
    migrator: String,
    runtime: String,
    database: String,
}

impl Drop for Roles {
    fn drop(&mut self) {
        let statements = [
            format!("DROP DATABASE IF EXISTS \"{}\" WITH (FORCE)", self.database),
            format!("DROP ROLE IF EXISTS \"{}\"", self.migrator),
            format!("DROP ROLE IF EXISTS \"{}\"", self.runtime),
        ];
        blocking(async move {
            let Ok(mut server) = AsyncPgConnection::establish(SERVER).await else {
                return;
            };
            for statement in statements {
                let _ = diesel::sql_query(statement).execute(&mut server).await;
            }
        });
    }
}

fn url(role: &str, database: &str) -> String {
    format!("postgres://{role}@127.0.0.1:5432/{database}")
}

/// deploy/postgres/roles.sql, run by psql as `postgres` in `database`.
fn apply_roles_sql(roles: &Roles) {
    let file = Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy/postgres/roles.sql");
    let output = Command::new("psql")
        .args(["-X", "-q", "-v", "ON_ERROR_STOP=1"])
        .arg("-v")
        .arg(format!("migrator={}", roles.migrator))
        .arg("-v")
        .arg(format!("runtime={}", roles.runtime))
        .arg("-d")
        .arg(url("postgres", &roles.database))
        .arg("-f")
        .arg(file)
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "roles.sql: {}",
        String::from_utf8_lossy(&output.stderr)
    );
}

/// What PostgreSQL answers `sql` run as the runtime role: Ok, or its error.
async fn as_runtime(roles: &Roles, sql: &str) -> Result<(), String> {
    let mut connection = database::connect(&SecretUrl::new(url(&roles.runtime, &roles.database)))
        .await
        .unwrap();
    diesel::sql_query(sql)
        .execute(&mut connection)
        .await
        .map(|_| ())
        .map_err(|e| e.to_string())
}

#[tokio::test]
async fn the_runtime_role_applies_events_without_ddl_rights_after_the_migration_role_migrated() {
    let mut system = System::without_worker(&[], &[]).await;
    let roles = Roles {
        migrator: unique("migrator"),
        runtime: unique("runtime"),
        database: system.database.name.clone(),
    };
    let mut server = AsyncPgConnection::establish(SERVER).await.unwrap();
    diesel::sql_query(format!("CREATE DATABASE \"{}\"", roles.database))
        .execute(&mut server)
        .await
        .unwrap();
    apply_roles_sql(&roles);

    // The worker starts first, as in Kubernetes, where the migration Job
    // runs beside it: it waits, saying why, instead of migrating.
    system.set_worker_env("DATABASE_URL", &url(&roles.runtime, &roles.database));
    system.set_worker_env("CLERK_SYNC__WORKER__MIGRATE_ON_START", "false");
    system.start_worker();
    let started = Instant::now();
    loop {
        let (status, body) = system.worker_readiness().await;
        let why = body["starting"].as_str().unwrap_or_default().to_owned();
        if status == 503 && why.contains("the database is not migrated yet") {
            assert!(why.contains("migrations pending"), "{body}");
            break;
        }
        assert!(
            started.elapsed() < WAIT,
            "{status} {body}\n{}",
            system.worker_logs()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    // The runtime role cannot migrate: one line, exit 1, nothing created.
    let refused = system
        .cli(
            &["migrate"],
            &[("DATABASE_URL", &url(&roles.runtime, &roles.database))],
        )
        .await;
    assert_eq!(refused.code, Some(1), "{refused:?}");
    let line = refused.stderr.trim();
    assert!(
        line.starts_with("clerk-sync-worker: running migrations failed: ")
            && line.contains("permission denied for schema public")
            && !line.contains('\n'),
        "{refused:?}"
    );
    assert_eq!(
        system
            .scalar("SELECT count(*) AS n FROM pg_tables WHERE schemaname = 'public'")
            .await,
        Some(0)
    );

    let migrated = system
        .cli(
            &["migrate"],
            &[("DATABASE_URL", &url(&roles.migrator, &roles.database))],
        )
        .await;
    assert_eq!(migrated.code, Some(0), "{migrated:?}");
    apply_roles_sql(&roles);
    system.wait_until_ready().await;

    let teacher = user_event(
        "user.created",
        "user_role_teacher",
        T0,
        Some("grace@example.com"),
        Some("Grace"),
        Some("instructor"),
    );
    let learner = user_event(
        "user.created",
        "user_role_learner",
        T0,
        None,
        Some("Ada"),
        None,
    );
    assert_eq!(system.send("msg_roles_1", &teacher).await, 202);
    assert_eq!(system.send("msg_roles_2", &learner).await, 202);
    // Applied before the deletion is sent: two batches in flight may take
    // a user's lock in either order, and a creation applied after its
    // user's deletion is (rightly) stale.
    system.wait_for_log(2, WAIT).await;
    assert_eq!(
        system
            .send("msg_roles_3", &deleted_event("user_role_teacher", T0 + 1))
            .await,
        202
    );
    system.wait_for_log(3, WAIT).await;
    let outcomes: Vec<String> = system.outcomes().await.into_iter().map(|o| o.1).collect();
    assert_eq!(
        outcomes,
        ["applied", "applied", "applied"],
        "{}",
        system.worker_logs()
    );
    assert_eq!(
        system
            .scalar(r#"SELECT count(*) AS n FROM "Student""#)
            .await,
        Some(1)
    );
    assert_eq!(
        system
            .scalar(r#"SELECT count(*) AS n FROM "Instructor""#)
            .await,
        Some(0)
    );

    // The tables belong to the migration role; the runtime role may not
    // change the schema, nor the migrations' bookkeeping.
    let owners = system
        .texts("SELECT DISTINCT tableowner::text AS v FROM pg_tables WHERE schemaname IN ('public', 'clerk_sync')")
        .await;
    assert_eq!(owners, std::slice::from_ref(&roles.migrator));
    for (sql, refusal) in [
        (
            "CREATE TABLE public.intruder (id int)",
            "permission denied for schema public",
        ),
        (
            "CREATE TABLE clerk_sync.intruder (id int)",
            "permission denied for schema clerk_sync",
        ),
        ("CREATE SCHEMA intruder", "permission denied for database"),
        (
            "DROP TABLE clerk_sync.events",
            "must be owner of table events",
        ),
        (
            r#"ALTER TABLE "Student" ADD COLUMN intruder int"#,
            "must be owner of table Student",
        ),
        (
            r#"TRUNCATE "Student""#,
            "permission denied for table Student",
        ),
        (
            "DELETE FROM __diesel_schema_migrations",
            "permission denied for table __diesel_schema_migrations",
        ),
    ] {
        let refused = as_runtime(&roles, sql).await.unwrap_err();
        assert!(refused.contains(refusal), "{sql}: {refused}");
    }
    assert_eq!(system.stop_workers(), [Some(0)]);

    // Without the right to read the bookkeeping, run cannot tell whether
    // the database is migrated: it stops, saying so, rather than guess.
    let revoke = format!(
        "REVOKE SELECT ON __diesel_schema_migrations FROM \"{}\"",
        roles.runtime
    );
    // (System's own execute: diesel's RunQueryDsl, in scope, has one too.)
    System::execute(&system, &revoke).await;
    let refused = system
        .cli(&["run"], &[("CLERK_SYNC__WORKER__LISTEN", "127.0.0.1:0")])
        .await;
    assert_eq!(refused.code, Some(1), "{refused:?}");
    assert_eq!(
        refused.stderr.lines().last(),
        Some(
            "clerk-sync-worker: cannot read which migrations were applied: permission denied for table __diesel_schema_migrations"
        ),
        "{refused:?}"
    );
}
