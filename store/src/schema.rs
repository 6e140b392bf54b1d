// @generated automatically by Diesel CLI.

pub mod clerk_sync {
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
        clerk_sync.reconcile_checkpoint (only_one) {
            only_one -> Bool,
            started_at -> Timestamptz,
            next_offset -> Int8,
            updated_at -> Timestamptz,
        }
    }

    diesel::table! {
        clerk_sync.reconcile_listed (clerk_user_id) {
            clerk_user_id -> Text,
        }
    }

    diesel::table! {
        clerk_sync.shard_heads (queue, worker) {
            queue -> Text,
            worker -> Text,
            oldest_received_at -> Nullable<Timestamptz>,
            held -> Int4,
            reported_at -> Timestamptz,
        }
    }

    diesel::table! {
        clerk_sync.users (clerk_user_id) {
            clerk_user_id -> Text,
            version_ms -> Nullable<Int8>,
            version_rank -> Nullable<Int2>,
            version_svix_id -> Nullable<Text>,
            deleted -> Bool,
            roles -> Array<Nullable<Text>>,
            profile -> Nullable<Jsonb>,
            updated_at -> Timestamptz,
            email -> Nullable<Text>,
        }
    }

    diesel::table! {
        clerk_sync.workers (worker) {
            worker -> Text,
            metrics_url -> Text,
            started_at -> Timestamptz,
            reported_at -> Timestamptz,
        }
    }

    diesel::allow_tables_to_appear_in_same_query!(
        events,
        reconcile_checkpoint,
        reconcile_listed,
        shard_heads,
        users,
        workers,
    );
}
// @generated automatically by Diesel CLI.

diesel::table! {
    Course (id) {
        id -> Text,
        title -> Text,
        description -> Text,
        instructorId -> Text,
    }
}

diesel::table! {
    Enrollment (id) {
        id -> Text,
        studentId -> Text,
        courseId -> Text,
    }
}

diesel::table! {
    Instructor (id) {
        id -> Text,
        clerkId -> Text,
        email -> Nullable<Text>,
        firstName -> Text,
        lastName -> Text,
        imageUrl -> Nullable<Text>,
        bio -> Text,
        createdAt -> Timestamp,
        updatedAt -> Timestamp,
    }
}

diesel::table! {
    Student (id) {
        id -> Text,
        clerkId -> Text,
        email -> Nullable<Text>,
        firstName -> Text,
        lastName -> Text,
        imageUrl -> Nullable<Text>,
        createdAt -> Timestamp,
        updatedAt -> Timestamp,
    }
}

diesel::joinable!(Course -> Instructor (instructorId));
diesel::joinable!(Enrollment -> Course (courseId));
diesel::joinable!(Enrollment -> Student (studentId));

diesel::allow_tables_to_appear_in_same_query!(Course, Enrollment, Instructor, Student,);
