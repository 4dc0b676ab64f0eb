-- ferrolite's store, version 1. The same SQL runs on SQLite and PostgreSQL:
-- only portable types (TEXT, BIGINT, DOUBLE PRECISION, BOOLEAN) are used.
-- Times are milliseconds since the Unix epoch (UTC); lists and objects are JSON text.

CREATE TABLE ferrolite_keys (
    token TEXT PRIMARY KEY,
    key_name TEXT NOT NULL,
    key_alias TEXT,
    spend DOUBLE PRECISION NOT NULL DEFAULT 0,
    max_budget DOUBLE PRECISION,
    budget_duration TEXT,
    budget_reset_at BIGINT,
    expires BIGINT,
    models TEXT NOT NULL DEFAULT '[]',
    aliases TEXT NOT NULL DEFAULT '{}',
    user_id TEXT,
    team_id TEXT,
    max_parallel_requests BIGINT,
    tpm_limit BIGINT,
    rpm_limit BIGINT,
    metadata TEXT NOT NULL DEFAULT '{}',
    blocked BOOLEAN NOT NULL DEFAULT FALSE,
    allowed_routes TEXT NOT NULL DEFAULT '[]',
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    created_by TEXT
);
CREATE UNIQUE INDEX ferrolite_keys_alias ON ferrolite_keys (key_alias);
CREATE INDEX ferrolite_keys_user ON ferrolite_keys (user_id);
CREATE INDEX ferrolite_keys_team ON ferrolite_keys (team_id);
CREATE INDEX ferrolite_keys_reset ON ferrolite_keys (budget_reset_at);

CREATE TABLE ferrolite_users (
    user_id TEXT PRIMARY KEY,
    user_email TEXT,
    user_role TEXT,
    max_budget DOUBLE PRECISION,
    spend DOUBLE PRECISION NOT NULL DEFAULT 0,
    models TEXT NOT NULL DEFAULT '[]',
    tpm_limit BIGINT,
    rpm_limit BIGINT,
    max_parallel_requests BIGINT,
    budget_duration TEXT,
    budget_reset_at BIGINT,
    metadata TEXT NOT NULL DEFAULT '{}',
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);
CREATE INDEX ferrolite_users_reset ON ferrolite_users (budget_reset_at);

CREATE TABLE ferrolite_teams (
    team_id TEXT PRIMARY KEY,
    team_alias TEXT,
    members_with_roles TEXT NOT NULL DEFAULT '[]',
    max_budget DOUBLE PRECISION,
    spend DOUBLE PRECISION NOT NULL DEFAULT 0,
    models TEXT NOT NULL DEFAULT '[]',
    tpm_limit BIGINT,
    rpm_limit BIGINT,
    max_parallel_requests BIGINT,
    budget_duration TEXT,
    budget_reset_at BIGINT,
    blocked BOOLEAN NOT NULL DEFAULT FALSE,
    metadata TEXT NOT NULL DEFAULT '{}',
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);
CREATE INDEX ferrolite_teams_reset ON ferrolite_teams (budget_reset_at);

CREATE TABLE ferrolite_spend_logs (
    request_id TEXT PRIMARY KEY,
    call_type TEXT NOT NULL,
    api_key TEXT NOT NULL,
    spend DOUBLE PRECISION NOT NULL,
    total_tokens BIGINT NOT NULL,
    prompt_tokens BIGINT NOT NULL,
    completion_tokens BIGINT NOT NULL,
    start_time BIGINT NOT NULL,
    end_time BIGINT NOT NULL,
    model TEXT NOT NULL,
    model_id TEXT NOT NULL,
    model_group TEXT NOT NULL,
    api_base TEXT NOT NULL,
    custom_llm_provider TEXT NOT NULL,
    user_id TEXT,
    team_id TEXT,
    end_user TEXT,
    request_tags TEXT NOT NULL DEFAULT '[]',
    metadata TEXT NOT NULL DEFAULT '{}',
    cache_hit BOOLEAN NOT NULL DEFAULT FALSE,
    status TEXT NOT NULL,
    latency_ms BIGINT NOT NULL
);
CREATE INDEX ferrolite_spend_logs_key ON ferrolite_spend_logs (api_key, start_time);
CREATE INDEX ferrolite_spend_logs_user ON ferrolite_spend_logs (user_id, start_time);
CREATE INDEX ferrolite_spend_logs_team ON ferrolite_spend_logs (team_id, start_time);
CREATE INDEX ferrolite_spend_logs_time ON ferrolite_spend_logs (start_time);
