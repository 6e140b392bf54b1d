//! What the `replay` tests share.

pub(super) use crate::support::system::{System, deleted_event, user_event};
pub(super) use std::time::Duration;

pub(super) const T0: i64 = 1_700_000_000_000;
pub(super) const WAIT: Duration = Duration::from_secs(30);

/// Every row of the projection and business tables, as text, in order.
pub(super) async fn snapshot(system: &System) -> Vec<String> {
    system
        .texts(
            r#"SELECT 'S ' || t::text AS v FROM "Student" t UNION ALL
           SELECT 'I ' || t::text FROM "Instructor" t UNION ALL
           SELECT 'C ' || t::text FROM "Course" t UNION ALL
           SELECT 'E ' || t::text FROM "Enrollment" t ORDER BY 1"#,
        )
        .await
}

/// Run each `;`-separated statement of `script`.
pub(super) async fn script(system: &System, script: &str) {
    for statement in script.split(';').map(str::trim).filter(|s| !s.is_empty()) {
        system.execute(statement).await;
    }
}

/// Four users: ada (student, enrolled), grace (instructor with a course),
/// alan (student, no enrollments), edsger (deleted).
pub(super) async fn populated() -> System {
    let system = System::start(&[]).await;
    let events = [
        (
            "m1",
            user_event(
                "user.created",
                "user_ada",
                T0,
                Some("ada@example.com"),
                Some("Ada"),
                None,
            ),
        ),
        (
            "m2",
            user_event(
                "user.updated",
                "user_ada",
                T0 + 10,
                Some("ada@example.com"),
                Some("Augusta"),
                None,
            ),
        ),
        (
            "m3",
            user_event(
                "user.created",
                "user_grace",
                T0,
                Some("grace@example.com"),
                Some("Grace"),
                Some("instructor"),
            ),
        ),
        (
            "m4",
            user_event(
                "user.created",
                "user_alan",
                T0,
                Some("alan@example.com"),
                Some("Alan"),
                Some("student"),
            ),
        ),
        (
            "m5",
            user_event(
                "user.created",
                "user_edsger",
                T0,
                Some("ed@example.com"),
                Some("Edsger"),
                None,
            ),
        ),
        ("m6", deleted_event("user_edsger", T0 + 20)),
    ];
    for (id, body) in &events {
        assert_eq!(system.send(id, body).await, 202);
    }
    system.wait_for_log(events.len() as i64, WAIT).await;
    script(&system, r#"INSERT INTO "Course" ("id", "title", "description", "instructorId")
               SELECT 'course_1', 'Compilers', '', "id" FROM "Instructor" WHERE "clerkId" = 'user_grace';
               INSERT INTO "Enrollment" ("id", "studentId", "courseId")
               SELECT 'enrollment_1', "id", 'course_1' FROM "Student" WHERE "clerkId" = 'user_ada'"#,
        )
        .await;
    system
}
