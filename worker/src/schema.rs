//! The tables, for Diesel. Written to match
//! `migrations/` exactly; `diesel print-schema` gives the same columns.
//! The projection tables keep Prisma's quoted camelCase names.

diesel::table! {
    #[sql_name = "Student"]
    students (id) {
        id -> Text,
        #[sql_name = "clerkId"]
        clerk_id -> Text,
        email -> Nullable<Text>,
        #[sql_name = "firstName"]
        first_name -> Text,
        #[sql_name = "lastName"]
        last_name -> Text,
        #[sql_name = "imageUrl"]
        image_url -> Nullable<Text>,
        #[sql_name = "createdAt"]
        created_at -> Timestamp,
        #[sql_name = "updatedAt"]
        updated_at -> Timestamp,
    }
}

diesel::table! {
    #[sql_name = "Instructor"]
    instructors (id) {
        id -> Text,
        #[sql_name = "clerkId"]
        clerk_id -> Text,
        email -> Nullable<Text>,
        #[sql_name = "firstName"]
        first_name -> Text,
        #[sql_name = "lastName"]
        last_name -> Text,
        #[sql_name = "imageUrl"]
        image_url -> Nullable<Text>,
        bio -> Text,
        #[sql_name = "createdAt"]
        created_at -> Timestamp,
        #[sql_name = "updatedAt"]
        updated_at -> Timestamp,
    }
}

diesel::table! {
    #[sql_name = "Course"]
    courses (id) {
        id -> Text,
        title -> Text,
        description -> Text,
        #[sql_name = "instructorId"]
        instructor_id -> Text,
    }
}

diesel::table! {
    #[sql_name = "Enrollment"]
    enrollments (id) {
        id -> Text,
        #[sql_name = "studentId"]
        student_id -> Text,
        #[sql_name = "courseId"]
        course_id -> Text,
    }
}

diesel::table! {
    clerk_sync.events (svix_id) {
        svix_id -> Text,
        event_type -> Nullable<Text>,
        clerk_user_id -> Nullable<Text>,
        occurred_at -> Nullable<Timestamptz>,
        received_at -> Timestamptz,
        payload -> Jsonb,
        outcome -> Text,
        error -> Nullable<Text>,
        recorded_at -> Timestamptz,
    }
}

diesel::table! {
    clerk_sync.users (clerk_user_id) {
        clerk_user_id -> Text,
        version_ms -> Nullable<BigInt>,
        version_rank -> Nullable<SmallInt>,
        version_svix_id -> Nullable<Text>,
        deleted -> Bool,
        roles -> Array<Text>,
        profile -> Nullable<Jsonb>,
        updated_at -> Timestamptz,
    }
}

diesel::joinable!(courses -> instructors (instructor_id));
diesel::joinable!(enrollments -> courses (course_id));
diesel::joinable!(enrollments -> students (student_id));
diesel::allow_tables_to_appear_in_same_query!(students, instructors, courses, enrollments);
