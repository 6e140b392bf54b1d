//! `clerk-sync-worker migrate` against the real PostgreSQL and RabbitMQ.

use crate::support::{TestDatabase, TestTopology};
use diesel::sql_types::{BigInt, Text};
use diesel_async::RunQueryDsl;
use std::collections::BTreeSet;
use std::process::{Command, Output};

fn migrate(database: &TestDatabase, broker: &TestTopology, extra: &[(&str, &str)]) -> Output {
    let mut command = crate::support::worker_command(database, broker);
    command.arg("migrate");
    for (name, value) in extra {
        command.env(name, value);
    }
    command.output().unwrap()
}

/// Fails the test with `migrate`'s stderr unless it exited 0.
fn assert_succeeded(output: &Output) {
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
}

#[derive(diesel::QueryableByName)]
struct Count {
    #[diesel(sql_type = BigInt)]
    n: i64,
}

async fn count(database: &TestDatabase, sql: &str) -> i64 {
    let mut connection = database.connect().await;
    diesel::sql_query(sql)
        .get_result::<Count>(&mut connection)
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"))
        .n
}

#[tokio::test]
async fn migrate_creates_the_database_tables_and_topology_and_is_idempotent() {
    let database = TestDatabase::named_only();
    let broker = TestTopology::new(3);
    for _ in 0..2 {
        let output = migrate(&database, &broker, &[]);
        assert_succeeded(&output);
    }
    let tables = count(
        &database,
        "SELECT count(*) AS n FROM information_schema.tables WHERE (table_schema = 'public' AND table_name IN ('Student', 'Instructor', 'Course', 'Enrollment')) OR (table_schema = 'clerk_sync' AND table_name IN ('events', 'users'))",
    )
    .await;
    assert_eq!(tables, 6);
    assert!(
        broker.queues_exist().await,
        "shard and dead-letter queues exist after migrate"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_migrations_at_once_all_succeed() {
    let database = TestDatabase::named_only();
    let broker = TestTopology::new(3);
    let outputs = std::thread::scope(|scope| {
        let runs: Vec<_> = (0..3)
            .map(|_| scope.spawn(|| migrate(&database, &broker, &[])))
            .collect();
        runs.into_iter().map(|run| run.join()).collect::<Vec<_>>()
    });
    for output in outputs {
        let output = output.unwrap_or_else(|_| panic!("migrate thread panicked"));
        assert_succeeded(&output);
    }
    assert_eq!(
        count(
            &database,
            "SELECT count(*) AS n FROM __diesel_schema_migrations"
        )
        .await,
        diesel::migration::MigrationSource::<diesel::pg::Pg>::migrations(
            &clerk_sync_store::repository::database::MIGRATIONS
        )
        .map_or(0, |all| all.len() as i64),
        "each migration ran once"
    );
}

/// Tables `prisma migrate` created before clerk-sync ran (email required),
/// for an app whose schema also gives Course and Enrollment timestamps.
const PRISMA_ORIGIN_SQL: &str = r#"
CREATE TABLE "Student" ("id" TEXT NOT NULL, "clerkId" TEXT NOT NULL, "email" TEXT NOT NULL, "firstName" TEXT NOT NULL, "lastName" TEXT NOT NULL, "imageUrl" TEXT, "createdAt" TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP, "updatedAt" TIMESTAMP(3) NOT NULL, CONSTRAINT "Student_pkey" PRIMARY KEY ("id"));
CREATE TABLE "Instructor" ("id" TEXT NOT NULL, "clerkId" TEXT NOT NULL, "email" TEXT NOT NULL, "firstName" TEXT NOT NULL, "lastName" TEXT NOT NULL, "imageUrl" TEXT, "bio" TEXT NOT NULL DEFAULT '', "createdAt" TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP, "updatedAt" TIMESTAMP(3) NOT NULL, CONSTRAINT "Instructor_pkey" PRIMARY KEY ("id"));
CREATE TABLE "Course" ("id" TEXT NOT NULL, "title" TEXT NOT NULL, "description" TEXT, "instructorId" TEXT NOT NULL, "createdAt" TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP, "updatedAt" TIMESTAMP(3) NOT NULL, CONSTRAINT "Course_pkey" PRIMARY KEY ("id"));
CREATE TABLE "Enrollment" ("id" TEXT NOT NULL, "studentId" TEXT NOT NULL, "courseId" TEXT NOT NULL, "createdAt" TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP, CONSTRAINT "Enrollment_pkey" PRIMARY KEY ("id"));
CREATE UNIQUE INDEX "Student_clerkId_key" ON "Student"("clerkId");
CREATE UNIQUE INDEX "Student_email_key" ON "Student"("email");
CREATE UNIQUE INDEX "Instructor_clerkId_key" ON "Instructor"("clerkId");
CREATE UNIQUE INDEX "Instructor_email_key" ON "Instructor"("email");
CREATE UNIQUE INDEX "Enrollment_studentId_courseId_key" ON "Enrollment"("studentId", "courseId");
ALTER TABLE "Course" ADD CONSTRAINT "Course_instructorId_fkey" FOREIGN KEY ("instructorId") REFERENCES "Instructor"("id") ON DELETE RESTRICT ON UPDATE CASCADE;
ALTER TABLE "Enrollment" ADD CONSTRAINT "Enrollment_studentId_fkey" FOREIGN KEY ("studentId") REFERENCES "Student"("id") ON DELETE RESTRICT ON UPDATE CASCADE;
ALTER TABLE "Enrollment" ADD CONSTRAINT "Enrollment_courseId_fkey" FOREIGN KEY ("courseId") REFERENCES "Course"("id") ON DELETE RESTRICT ON UPDATE CASCADE;
INSERT INTO "Student" ("id", "clerkId", "email", "firstName", "lastName", "updatedAt") VALUES ('prisma-cuid-1', 'user_existing', 'old@example.com', 'Old', 'Row', now());
"#;

#[tokio::test]
async fn a_database_prisma_already_built_is_adopted() {
    let database = TestDatabase::created().await;
    {
        let mut connection = database.connect().await;
        for statement in PRISMA_ORIGIN_SQL
            .split(";\n")
            .filter(|s| !s.trim().is_empty())
        {
            diesel::sql_query(statement)
                .execute(&mut connection)
                .await
                .unwrap_or_else(|e| panic!("{statement}: {e}"));
        }
    }
    let broker = TestTopology::new(3);
    let output = migrate(&database, &broker, &[]);
    assert_succeeded(&output);

    #[derive(diesel::QueryableByName)]
    struct Row {
        #[diesel(sql_type = Text)]
        id: String,
    }
    let mut connection = database.connect().await;
    let rows: Vec<Row> =
        diesel::sql_query(r#"SELECT "id" FROM "Student" WHERE "clerkId" = 'user_existing'"#)
            .load(&mut connection)
            .await
            .unwrap();
    assert_eq!(
        rows.iter().map(|r| r.id.as_str()).collect::<Vec<_>>(),
        ["prisma-cuid-1"],
        "existing rows keep their ids"
    );
    let nullable = count(
        &database,
        "SELECT count(*) AS n FROM information_schema.columns WHERE table_name IN ('Student', 'Instructor') AND column_name = 'email' AND is_nullable = 'YES'",
    )
    .await;
    assert_eq!(nullable, 2, "email becomes nullable");
    let own = count(
        &database,
        "SELECT count(*) AS n FROM information_schema.columns WHERE table_name IN ('Course', 'Enrollment') AND column_name IN ('createdAt', 'updatedAt')",
    )
    .await;
    assert_eq!(own, 3, "the app's own columns are left alone");
}

#[test]
fn an_unreachable_service_or_a_bad_setting_is_one_line() {
    let database = TestDatabase::named_only();
    let broker = TestTopology::new(3);
    let output = migrate(
        &database,
        &broker,
        &[("DATABASE_URL", "postgres://postgres@127.0.0.1:1/x")],
    );
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.trim().starts_with("clerk-sync-worker: PostgreSQL at postgres://postgres@127.0.0.1:1/postgres is unreachable"), "{stderr}");

    let output = migrate(
        &database,
        &broker,
        &[("AMQP_URL", "amqp://guest:guest@127.0.0.1:1/%2f")],
    );
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.lines().last().unwrap_or_default().starts_with(
            "clerk-sync-worker: RabbitMQ at amqp://guest:***@127.0.0.1:1/%2f is unreachable"
        ),
        "{stderr}"
    );

    let output = migrate(
        &database,
        &broker,
        &[("CLERK_SYNC__AMQP__PREFIX", "bad prefix")],
    );
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.starts_with("clerk-sync-worker: setting amqp.prefix"),
        "{stderr}"
    );
}

/// `store/src/schema.rs` (what `diesel print-schema` printed) and a
/// database migrated now agree both ways: every declared table and column
/// exists and Diesel can select them, and every table and column of the
/// database is declared, with the same nullability.
#[tokio::test]
async fn the_diesel_schema_matches_the_migrated_database() {
    use clerk_sync_store::schema::clerk_sync::{events, shard_heads, users, workers};
    use clerk_sync_store::schema::{Course, Enrollment, Instructor, Student};
    use diesel::QueryDsl;
    use diesel::dsl::{exists, select};
    let database = TestDatabase::named_only();
    let broker = TestTopology::new(3);
    let output = migrate(&database, &broker, &[]);
    assert_succeeded(&output);
    let mut connection = database.connect().await;
    // SELECT EXISTS (SELECT <every declared column> FROM <table>): false on
    // an empty table, an error if a table or column is not as declared.
    macro_rules! check {
        ($table:ident) => {
            let found = select(exists($table::table.select($table::all_columns)))
                .get_result::<bool>(&mut connection)
                .await;
            assert_eq!(
                found.ok(),
                Some(false),
                "{}: every declared column exists",
                stringify!($table)
            );
        };
    }
    check!(Student);
    check!(Instructor);
    check!(Course);
    check!(Enrollment);
    check!(events);
    check!(users);
    check!(workers);
    check!(shard_heads);

    // The other way: the database's columns, as `table.column nullable`.
    #[derive(diesel::QueryableByName)]
    struct Column {
        #[diesel(sql_type = Text)]
        name: String,
    }
    let in_database: BTreeSet<String> = diesel::sql_query(
        "SELECT CASE table_schema WHEN 'public' THEN '' ELSE table_schema || '.' END \
                || table_name || '.' || column_name || ' ' \
                || CASE is_nullable WHEN 'YES' THEN 'nullable' ELSE 'required' END AS name \
         FROM information_schema.columns \
         WHERE table_schema IN ('public', 'clerk_sync') AND table_name <> '__diesel_schema_migrations'",
    )
    .load::<Column>(&mut connection)
    .await
    .unwrap()
    .into_iter()
    .map(|c| c.name)
    .collect();
    let declared = declared_columns(include_str!("../../../store/src/schema.rs"));
    assert_eq!(declared, in_database);
}

/// The columns `schema.rs` declares, as `table.column nullable|required`
/// (`schema.table.column ...` outside `public`).
fn declared_columns(schema: &str) -> BTreeSet<String> {
    let mut columns = BTreeSet::new();
    let mut table = None;
    for line in schema.lines().map(str::trim) {
        if let Some(name) = line.strip_suffix('{').and_then(|l| l.split_once(" (")) {
            table = Some(name.0.trim().to_owned());
        } else if line == "}" {
            table = None;
        } else if let (Some(table), Some((column, kind))) = (&table, line.split_once(" -> ")) {
            let null = if kind.starts_with("Nullable<") {
                "nullable"
            } else {
                "required"
            };
            columns.insert(format!("{table}.{column} {null}"));
        }
    }
    columns
}

/// `run` handles SIGTERM from its first moment: stopped while its start-up
/// migration waits for a broker that does not answer, it exits 0 (before,
/// the signal killed it, and as a container's PID 1 it was ignored).
#[test]
fn run_stops_on_sigterm_while_it_is_still_migrating() {
    // A broker address that accepts connections and never answers.
    let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = silent.local_addr().unwrap().port();
    let database = TestDatabase::named_only();
    let broker = TestTopology::new(3);
    let mut worker = Command::new(env!("CARGO_BIN_EXE_clerk-sync-worker"))
        .arg("run")
        .env_clear()
        .current_dir(std::env::temp_dir())
        .env("DATABASE_URL", database.url.expose())
        .env(
            "AMQP_URL",
            format!("amqp://guest:guest@127.0.0.1:{port}/%2f"),
        )
        .env("CLERK_SYNC__AMQP__PREFIX", &broker.prefix)
        .env("CLERK_SYNC__WORKER__LISTEN", "127.0.0.1:0")
        .env("CLERK_WEBHOOK_SECRET", clerk_sync_testkit::webhook::SECRET)
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    std::thread::sleep(std::time::Duration::from_millis(1500));
    let sent = Command::new("kill")
        .args(["-TERM", &worker.id().to_string()])
        .status()
        .unwrap();
    assert!(sent.success());
    let status = worker.wait().unwrap();
    assert_eq!(status.code(), Some(0), "{status:?}");
    drop(silent);
}

#[derive(diesel::QueryableByName)]
struct Method {
    #[diesel(sql_type = diesel::sql_types::Nullable<Text>)]
    method: Option<String>,
}

/// The log's payloads are compressed with lz4 where the server has it
/// (this machine's PostgreSQL does; the migration leaves pglz elsewhere).
#[tokio::test]
async fn the_logs_payloads_are_compressed_with_lz4() {
    let database = TestDatabase::named_only();
    let broker = TestTopology::new(1);
    let output = migrate(&database, &broker, &[]);
    assert_succeeded(&output);
    let has_lz4 = count(
        &database,
        "SELECT count(*) AS n FROM pg_settings WHERE name = 'default_toast_compression' AND 'lz4' = ANY (enumvals)",
    )
    .await;
    assert_eq!(has_lz4, 1, "this machine's PostgreSQL is built with lz4");
    let mut connection = database.connect().await;
    // A body of about 3 KB, as a user with a few linked accounts has.
    let insert = "INSERT INTO clerk_sync.events (svix_id, received_at, payload, outcome, recorded_at) \
        VALUES ('msg_lz4', now(), jsonb_build_object('body', repeat('{\"id\":\"idn_0123\"}', 180)), 'applied', now())";
    diesel::sql_query(insert)
        .execute(&mut connection)
        .await
        .unwrap();
    let stored = diesel::sql_query(
        "SELECT pg_column_compression(payload) AS method FROM clerk_sync.events WHERE svix_id = 'msg_lz4'",
    )
    .get_result::<Method>(&mut connection)
    .await
    .unwrap();
    assert_eq!(stored.method.as_deref(), Some("lz4"));
}
