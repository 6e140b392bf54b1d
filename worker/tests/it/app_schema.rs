//! The app's tables are the app's: a database clerk-sync migrates has
//! exactly the tables of the app's schema (with `email` optional), an older
//! clerk-sync database is brought in line without losing a row, an adopted
//! database keeps its own columns, and the app's own Prisma 7 client works
//! on a database clerk-sync migrated and filled.

use crate::support::system::{System, deleted_event, user_event};
use crate::support::{TestDatabase, TestTopology};
use diesel::sql_types::Text;
use diesel_async::{AsyncMigrationHarness, AsyncPgConnection, RunQueryDsl, SimpleAsyncConnection};
use diesel_migrations::MigrationHarness;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

const T0: i64 = 1_700_000_000_000;
const WAIT: Duration = Duration::from_secs(30);

fn prisma_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/prisma")
}

fn repository() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn migrate(database: &TestDatabase) {
    let broker = TestTopology::new(1);
    let output = crate::support::worker_command(database, &broker)
        .arg("migrate")
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
}

/// The app's tables as PostgreSQL describes them: every column (type,
/// nullability, default, in order), index and constraint, one line each.
async fn catalog(connection: &mut AsyncPgConnection) -> Vec<String> {
    #[derive(diesel::QueryableByName)]
    struct Line {
        #[diesel(sql_type = Text)]
        line: String,
    }
    let tables = "('Student', 'Instructor', 'Course', 'Enrollment')";
    let sql = format!(
        r#"SELECT line FROM (
             SELECT 1 AS kind, c.relname AS t, a.attnum::text AS k,
                    format('column %s.%s %s%s%s', c.relname, a.attname, format_type(a.atttypid, a.atttypmod),
                           CASE WHEN a.attnotnull THEN ' NOT NULL' ELSE '' END,
                           coalesce(' DEFAULT ' || pg_get_expr(d.adbin, d.adrelid), '')) AS line
             FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid
             LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
             WHERE c.relnamespace = 'public'::regnamespace AND c.relname IN {tables}
               AND a.attnum > 0 AND NOT a.attisdropped
             UNION ALL
             SELECT 2, tablename, indexname, 'index ' || indexdef FROM pg_indexes
             WHERE schemaname = 'public' AND tablename IN {tables}
             UNION ALL
             SELECT 3, conrelid::regclass::text, conname, format('constraint %s %s', conname, pg_get_constraintdef(oid))
             FROM pg_constraint WHERE connamespace = 'public'::regnamespace
               AND conrelid IN (SELECT oid FROM pg_class WHERE relname IN {tables})
             UNION ALL
             SELECT 4, relname, relname, 'table ' || relname FROM pg_class
             WHERE relnamespace = 'public'::regnamespace AND relkind = 'r' AND relname <> '__diesel_schema_migrations'
           ) AS described ORDER BY kind, t, k"#
    );
    diesel::sql_query(sql)
        .load::<Line>(connection)
        .await
        .unwrap()
        .into_iter()
        .map(|l| l.line)
        .collect()
}

/// A database with the tables `prisma migrate` makes from the shipped schema.
async fn prisma_built() -> TestDatabase {
    let database = TestDatabase::created().await;
    let mut connection = database.connect().await;
    connection
        .batch_execute(&read(&prisma_dir().join("origin.sql")))
        .await
        .unwrap_or_else(|e| panic!("origin.sql: {e}"));
    database
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_migrated_database_has_exactly_the_apps_tables() {
    let expected = catalog(&mut prisma_built().await.connect().await).await;
    assert!(expected.len() > 30, "{expected:#?}");
    let database = TestDatabase::named_only();
    migrate(&database);
    assert_eq!(catalog(&mut database.connect().await).await, expected);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_database_of_the_first_migrations_is_brought_in_line_keeping_its_rows() {
    let expected = catalog(&mut prisma_built().await.connect().await).await;
    let database = TestDatabase::created().await;
    // The three migrations of the previous release.
    let mut harness = AsyncMigrationHarness::new(database.connect().await);
    for _ in 0..3 {
        harness
            .run_next_migration(clerk_sync_store::repository::database::MIGRATIONS)
            .unwrap();
    }
    let mut connection = harness.into_inner();
    connection
        .batch_execute(
            r#"INSERT INTO "Instructor" ("id", "clerkId", "firstName", "lastName", "updatedAt") VALUES ('i1', 'user_i', 'I', '', now());
               INSERT INTO "Student" ("id", "clerkId", "firstName", "lastName", "updatedAt") VALUES ('s1', 'user_s', 'S', '', now());
               INSERT INTO "Course" ("id", "title", "description", "instructorId", "updatedAt") VALUES ('c1', 'Rust', 'Ownership', 'i1', now());
               INSERT INTO "Course" ("id", "title", "instructorId", "updatedAt") VALUES ('c2', 'SQL', 'i1', now());
               INSERT INTO "Enrollment" ("id", "studentId", "courseId") VALUES ('e1', 's1', 'c1');"#,
        )
        .await
        .unwrap();
    drop(connection);
    migrate(&database);
    let mut connection = database.connect().await;
    assert_eq!(catalog(&mut connection).await, expected);
    #[derive(diesel::QueryableByName)]
    struct Row {
        #[diesel(sql_type = Text)]
        row: String,
    }
    let rows: Vec<String> = diesel::sql_query(
        r#"SELECT 'C ' || c."id" || ' ' || c."title" || ' [' || c."description" || '] ' || c."instructorId" AS row FROM "Course" c
           UNION ALL SELECT 'E ' || e."id" || ' ' || e."studentId" || ' ' || e."courseId" FROM "Enrollment" e ORDER BY 1"#,
    )
    .load::<Row>(&mut connection)
    .await
    .unwrap()
    .into_iter()
    .map(|r| r.row)
    .collect();
    assert_eq!(
        rows,
        ["C c1 Rust [Ownership] i1", "C c2 SQL [] i1", "E e1 s1 c1"],
        "no row is lost; a missing description becomes empty"
    );
}

#[test]
fn the_shipped_schema_is_the_apps_with_email_optional() {
    // The models, without comments and blank lines.
    let models = |text: &str| -> Vec<String> {
        text.lines()
            .map(|line| {
                line.split("//")
                    .next()
                    .unwrap_or_default()
                    .trim()
                    .to_owned()
            })
            .filter(|line| !line.is_empty())
            .collect()
    };
    let shipped = models(&read(&repository().join("deploy/prisma/schema.prisma")));
    let origin = models(&read(&prisma_dir().join("origin.schema.prisma")));
    assert_eq!(shipped.len(), origin.len());
    let differences: Vec<(&String, &String)> = origin
        .iter()
        .zip(&shipped)
        .filter(|(origin, shipped)| origin != shipped)
        .collect();
    let email = "email String @unique".to_owned();
    let optional = "email String? @unique".to_owned();
    let squeeze = |line: &String| line.split_whitespace().collect::<Vec<_>>().join(" ");
    assert_eq!(differences.len(), 2, "{differences:?}");
    for (origin, shipped) in differences {
        assert_eq!(
            (squeeze(origin), squeeze(shipped)),
            (email.clone(), optional.clone())
        );
    }
}

/// Run `program args` in the Prisma folder; its stdout, or a panic with
/// both streams.
fn node(program: &str, args: &[&str], env: &[(&str, &str)]) -> String {
    let output = Command::new(program)
        .args(args)
        .current_dir(prisma_dir())
        .envs(env.iter().copied())
        .output()
        .unwrap_or_else(|e| {
            panic!("{program}: {e} (this test needs Node.js 20.19 or later and npm)")
        });
    let (stdout, stderr) = (
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    );
    assert!(
        output.status.success(),
        "{program} {args:?}: {stdout}\n{stderr}"
    );
    stdout
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_apps_prisma_client_works_on_a_database_clerk_sync_fills() {
    // The app's client, from the schema clerk-sync ships (installed from
    // package-lock.json once; no Prisma engine binary is needed).
    if !prisma_dir()
        .join("node_modules/.package-lock.json")
        .is_file()
    {
        node("npm", &["ci", "--no-audit", "--no-fund"], &[]);
    }
    let schema = repository().join("deploy/prisma/schema.prisma");
    let schema = schema.to_string_lossy();
    node("node", &["generate.mjs", &schema], &[]);

    let system = System::start(&[]).await;
    let instructor = user_event(
        "user.created",
        "user_teacher",
        T0,
        Some("grace@example.com"),
        Some("Grace"),
        Some("instructor"),
    );
    let student = user_event("user.created", "user_learner", T0, None, Some("Ada"), None);
    assert_eq!(system.send("m1", &instructor).await, 202);
    assert_eq!(system.send("m2", &student).await, 202);
    system.wait_for_log(2, WAIT).await;

    let url = system.database.url.expose().to_owned();
    let printed = node(
        "node",
        &["app.mjs", "user_teacher", "user_learner"],
        &[("DATABASE_URL", &url)],
    );
    let read: serde_json::Value =
        serde_json::from_str(printed.trim()).unwrap_or_else(|e| panic!("{e}: {printed}"));
    assert_eq!(read["enrollmentCount"], 1, "{read}");
    assert_eq!(
        read["enrolledCourseTitles"][0], "Origin app course",
        "{read}"
    );
    assert_eq!(read["studentEmail"], serde_json::Value::Null, "{read}");
    assert!(
        read["bio"]
            .as_str()
            .is_some_and(|b| b.starts_with("Bio written by the origin app")),
        "{read}"
    );

    // clerk-sync goes on beside the app: a profile change keeps the app's
    // bio and enrollment; deleting the instructor takes the course and its
    // enrollment with it.
    let renamed = user_event(
        "user.updated",
        "user_teacher",
        T0 + 10,
        Some("grace@example.com"),
        Some("Grace H."),
        Some("instructor"),
    );
    assert_eq!(system.send("m3", &renamed).await, 202);
    system.wait_for_log(3, WAIT).await;
    let kept = system
        .texts(r#"SELECT "bio" || ' / ' || "firstName" AS v FROM "Instructor""#)
        .await;
    assert_eq!(
        kept,
        [format!(
            "{} / Grace H.",
            read["bio"].as_str().unwrap_or_default()
        )]
    );
    assert_eq!(
        system
            .send("m4", &deleted_event("user_teacher", T0 + 20))
            .await,
        202
    );
    system.wait_for_log(4, WAIT).await;
    let left = system
        .scalar(
            r#"SELECT (SELECT count(*) FROM "Course") + (SELECT count(*) FROM "Enrollment") AS n"#,
        )
        .await;
    assert_eq!(left, Some(0));
    let outcomes: Vec<String> = system.outcomes().await.into_iter().map(|o| o.1).collect();
    assert_eq!(outcomes, ["applied"; 4]);
}
