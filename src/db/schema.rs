//! Diesel table definitions, shared by both backends (the migrations in `migrations/{sqlite,postgres}`
//! create the same columns with each backend's types).

diesel::table! {
    server_keys (kid) {
        kid -> Text,
        secret -> Text,
        created_at -> Timestamp,
    }
}

diesel::table! {
    jurisdictions (code) {
        code -> Text,
        name -> Text,
        parent_code -> Nullable<Text>,
        path -> Text,
        depth -> Integer,
        created_at -> Timestamp,
        updated_at -> Timestamp,
    }
}

diesel::table! {
    departments (id) {
        id -> Text,
        name -> Text,
        jurisdiction_code -> Text,
        active -> Bool,
        created_at -> Timestamp,
        updated_at -> Timestamp,
    }
}

diesel::table! {
    categories (code) {
        code -> Text,
        name -> Text,
        deadline_days -> Integer,
        active -> Bool,
        created_at -> Timestamp,
        updated_at -> Timestamp,
        description -> Nullable<Text>,
        service_group -> Nullable<Text>,
        keywords -> Nullable<Text>,
        attributes -> Nullable<Text>,
    }
}

diesel::table! {
    programmes (id) {
        id -> Text,
        name -> Text,
        year -> Integer,
        jurisdiction_code -> Text,
        description -> Nullable<Text>,
        created_at -> Timestamp,
        updated_at -> Timestamp,
    }
}

diesel::table! {
    users (id) {
        id -> Text,
        username -> Text,
        password_hash -> Text,
        role -> Text,
        jurisdiction_code -> Nullable<Text>,
        department_id -> Nullable<Text>,
        display_name -> Nullable<Text>,
        active -> Bool,
        created_at -> Timestamp,
        updated_at -> Timestamp,
    }
}

diesel::table! {
    ref_counters (prefix) {
        prefix -> Text,
        last -> BigInt,
    }
}

diesel::table! {
    cases (id) {
        id -> Text,
        #[sql_name = "ref"]
        case_ref -> Text,
        kind -> Text,
        title -> Text,
        description -> Text,
        category_code -> Text,
        jurisdiction_code -> Text,
        jurisdiction_path -> Text,
        programme_id -> Nullable<Text>,
        channel -> Text,
        priority -> Text,
        complainant_name -> Nullable<Text>,
        complainant_phone -> Nullable<Text>,
        location_address -> Nullable<Text>,
        location_lat -> Nullable<Double>,
        location_lon -> Nullable<Double>,
        status -> Text,
        outcome -> Nullable<Text>,
        department_id -> Nullable<Text>,
        assignee_id -> Nullable<Text>,
        due_at -> Timestamp,
        acknowledged_at -> Nullable<Timestamp>,
        resolved_at -> Nullable<Timestamp>,
        resolved_by -> Nullable<Text>,
        resolution -> Nullable<Text>,
        verified_at -> Nullable<Timestamp>,
        closed_at -> Nullable<Timestamp>,
        satisfaction -> Nullable<Text>,
        rework_count -> Integer,
        duplicate_of -> Nullable<Text>,
        external_source -> Nullable<Text>,
        external_id -> Nullable<Text>,
        created_by -> Text,
        created_at -> Timestamp,
        updated_at -> Timestamp,
        version -> BigInt,
        first_assigned_at -> Nullable<Timestamp>,
        first_acknowledged_at -> Nullable<Timestamp>,
        responded -> Bool,
        resolved_on_time -> Nullable<Bool>,
        resolution_secs -> Nullable<BigInt>,
        overdue_notified_at -> Nullable<Timestamp>,
        complainant_email -> Nullable<Text>,
        media_url -> Nullable<Text>,
        address_id -> Nullable<Text>,
        attributes -> Nullable<Text>,
    }
}

diesel::table! {
    case_events (case_id, seq) {
        case_id -> Text,
        seq -> BigInt,
        action -> Text,
        from_status -> Nullable<Text>,
        to_status -> Text,
        actor_id -> Text,
        actor_name -> Text,
        at -> Timestamp,
        note -> Nullable<Text>,
        data -> Text,
    }
}

diesel::table! {
    api_clients (id) {
        id -> Text,
        name -> Text,
        jurisdiction_code -> Nullable<Text>,
        scopes -> Text,
        key_prefix -> Text,
        key_hash -> Text,
        previous_key_prefix -> Nullable<Text>,
        previous_key_hash -> Nullable<Text>,
        previous_valid_until -> Nullable<Timestamp>,
        active -> Bool,
        revoked_at -> Nullable<Timestamp>,
        last_used_at -> Nullable<Timestamp>,
        created_by -> Text,
        created_at -> Timestamp,
        updated_at -> Timestamp,
    }
}

diesel::joinable!(departments -> jurisdictions (jurisdiction_code));
diesel::joinable!(programmes -> jurisdictions (jurisdiction_code));
diesel::joinable!(users -> jurisdictions (jurisdiction_code));
diesel::joinable!(api_clients -> jurisdictions (jurisdiction_code));

diesel::allow_tables_to_appear_in_same_query!(
    jurisdictions,
    departments,
    categories,
    programmes,
    users,
    cases,
    case_events,
    api_clients,
);

diesel::table! {
    sessions (id) {
        id -> Text,
        user_id -> Text,
        created_at -> Timestamp,
        expires_at -> Timestamp,
        revoked_at -> Nullable<Timestamp>,
        revoke_reason -> Nullable<Text>,
    }
}

diesel::table! {
    refresh_tokens (token_hash) {
        token_hash -> Text,
        session_id -> Text,
        created_at -> Timestamp,
        used_at -> Nullable<Timestamp>,
    }
}

diesel::table! {
    login_throttle (key) {
        key -> Text,
        failures -> Integer,
        window_start -> Timestamp,
        locked_until -> Nullable<Timestamp>,
    }
}

diesel::table! {
    personal_data_access (id) {
        id -> Text,
        case_id -> Text,
        jurisdiction_path -> Text,
        actor_id -> Text,
        actor_name -> Text,
        at -> Timestamp,
        request_id -> Nullable<Text>,
    }
}

diesel::table! {
    admin_audit (id) {
        id -> Text,
        actor_id -> Text,
        actor_name -> Text,
        action -> Text,
        target_type -> Text,
        target_id -> Text,
        jurisdiction_path -> Nullable<Text>,
        at -> Timestamp,
        details -> Text,
    }
}

diesel::joinable!(sessions -> users (user_id));
diesel::joinable!(refresh_tokens -> sessions (session_id));
diesel::allow_tables_to_appear_in_same_query!(sessions, users, refresh_tokens);

diesel::table! {
    case_stats (node, dim, dim_value, basis, month) {
        node -> Text,
        dim -> Text,
        dim_value -> Text,
        basis -> Text,
        month -> Text,
        total -> BigInt,
        dismissed -> BigInt,
        resolved -> BigInt,
        completed -> BigInt,
        on_time -> BigInt,
        assigned -> BigInt,
        responded -> BigInt,
        rated -> BigInt,
        satisfied -> BigInt,
        resolution_secs -> BigInt,
    }
}

diesel::table! {
    case_stats_histogram (node, dim, dim_value, basis, month) {
        node -> Text,
        dim -> Text,
        dim_value -> Text,
        basis -> Text,
        month -> Text,
        counts -> Text,
        median -> Nullable<Double>,
    }
}

diesel::allow_tables_to_appear_in_same_query!(case_stats, case_stats_histogram, jurisdictions);

diesel::table! {
    idempotency_keys (principal_id, key) {
        principal_id -> Text,
        key -> Text,
        request_hash -> Text,
        claimed_at -> Timestamp,
        status -> Nullable<Integer>,
        response_body -> Nullable<Text>,
        response_headers -> Nullable<Text>,
        created_at -> Timestamp,
        expires_at -> Timestamp,
    }
}

diesel::table! {
    webhooks (id) {
        id -> Text,
        owner_id -> Text,
        owner_kind -> Text,
        owner_role -> Text,
        scope_path -> Nullable<Text>,
        url -> Text,
        events -> Text,
        secret -> Text,
        active -> Bool,
        disabled_reason -> Nullable<Text>,
        failing_since -> Nullable<Timestamp>,
        created_at -> Timestamp,
        updated_at -> Timestamp,
    }
}

diesel::table! {
    webhook_outbox (id) {
        id -> Text,
        webhook_id -> Text,
        case_id -> Text,
        event_type -> Text,
        payload -> Text,
        created_at -> Timestamp,
        state -> Text,
        attempts -> Integer,
        next_attempt_at -> Timestamp,
        locked_until -> Nullable<Timestamp>,
        delivered_at -> Nullable<Timestamp>,
        last_error -> Nullable<Text>,
    }
}

diesel::table! {
    webhook_attempts (id) {
        id -> Text,
        outbox_id -> Text,
        attempted_at -> Timestamp,
        status_code -> Nullable<Integer>,
        error -> Nullable<Text>,
        duration_ms -> BigInt,
    }
}

diesel::table! {
    import_jobs (id) {
        id -> Text,
        principal_id -> Text,
        format -> Text,
        state -> Text,
        total_rows -> BigInt,
        processed -> BigInt,
        created -> BigInt,
        existing -> BigInt,
        rejected -> BigInt,
        results -> Text,
        created_at -> Timestamp,
        updated_at -> Timestamp,
    }
}

diesel::joinable!(webhook_outbox -> webhooks (webhook_id));
diesel::allow_tables_to_appear_in_same_query!(webhooks, webhook_outbox, webhook_attempts);
