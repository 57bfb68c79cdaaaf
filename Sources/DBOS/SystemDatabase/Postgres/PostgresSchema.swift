/// The PostgreSQL system database schema: DBOS Transact's own tables, columns, indexes, trigger
/// and SQL functions in schema `dbos`, at DBOS's shared schema level 125, so DBOS Transact for
/// Python or Go pointed at the same database reads and drives our runs (and a database DBOS
/// created is adopted as is).
///
/// `dbos.dbos_migrations` holds DBOS's level; `dbos.dbos_swift_migrations` holds this project's
/// migrations. Each statement tolerates objects that already exist.
enum PostgresSchema {
    /// The DBOS schema level this schema matches.
    static let dbosSchemaLevel = 125

    /// The advisory lock DBOS Transact takes while migrating; holding the same one keeps our
    /// migrations and DBOS's from running at once.
    static let migrationLockKey: Int64 = 1_234_567_890

    private static let now = "((EXTRACT(epoch FROM now()) * 1000.0))::bigint"

    /// This project's migrations, in order; migration `i` has version `i + 1`. Each is a list
    /// of single statements (the extended protocol runs one statement at a time).
    static let migrations: [[String]] = [
        [
            """
            CREATE TABLE IF NOT EXISTS dbos.workflow_status (
                workflow_uuid text PRIMARY KEY,
                status text,
                name text,
                authenticated_user text,
                assumed_role text,
                authenticated_roles text,
                request text,
                output text,
                error text,
                executor_id text,
                created_at bigint NOT NULL DEFAULT \(now),
                updated_at bigint NOT NULL DEFAULT \(now),
                application_version text,
                application_id text,
                class_name varchar(255) DEFAULT NULL,
                config_name varchar(255) DEFAULT NULL,
                recovery_attempts bigint DEFAULT 0,
                queue_name text,
                workflow_timeout_ms bigint,
                workflow_deadline_epoch_ms bigint,
                inputs text,
                started_at_epoch_ms bigint,
                deduplication_id text,
                priority integer NOT NULL DEFAULT 0,
                queue_partition_key text,
                forked_from text,
                owner_xid text,
                parent_workflow_id text,
                serialization text,
                delay_until_epoch_ms bigint,
                was_forked_from boolean NOT NULL DEFAULT false,
                rate_limited boolean NOT NULL DEFAULT false,
                completed_at bigint,
                attributes jsonb,
                schedule_name text,
                debounce_deadline_epoch_ms bigint,
                is_debounced boolean NOT NULL DEFAULT false,
                application_name text,
                creator_xid text
            )
            """,
            "CREATE INDEX IF NOT EXISTS workflow_status_created_at_index ON dbos.workflow_status (created_at)",
            """
            CREATE UNIQUE INDEX IF NOT EXISTS uq_workflow_status_dedup_id ON dbos.workflow_status (queue_name, deduplication_id)
                WHERE deduplication_id IS NOT NULL
            """,
            """
            CREATE INDEX IF NOT EXISTS idx_workflow_status_in_flight_v2 ON dbos.workflow_status
                (queue_name, status, priority, created_at) INCLUDE (application_name)
                WHERE status IN ('ENQUEUED', 'PENDING')
            """,
            """
            CREATE INDEX IF NOT EXISTS idx_workflow_status_partition_dequeue_v3 ON dbos.workflow_status
                (queue_name, status, queue_partition_key, priority, created_at, workflow_uuid) INCLUDE (application_name)
                WHERE status IN ('ENQUEUED', 'PENDING') AND queue_partition_key IS NOT NULL
            """,
            """
            CREATE INDEX IF NOT EXISTS idx_workflow_status_rate_limited ON dbos.workflow_status (queue_name, started_at_epoch_ms)
                WHERE rate_limited = true
            """,
            "CREATE INDEX IF NOT EXISTS idx_workflow_status_pending ON dbos.workflow_status (created_at) WHERE status = 'PENDING'",
            """
            CREATE INDEX IF NOT EXISTS idx_workflow_status_failed ON dbos.workflow_status (status, created_at)
                WHERE status IN ('ERROR', 'CANCELLED', 'MAX_RECOVERY_ATTEMPTS_EXCEEDED')
            """,
            """
            CREATE INDEX IF NOT EXISTS idx_workflow_status_delayed ON dbos.workflow_status (delay_until_epoch_ms)
                WHERE status = 'DELAYED'
            """,
            """
            CREATE INDEX IF NOT EXISTS idx_workflow_status_forked_from ON dbos.workflow_status (forked_from)
                WHERE forked_from IS NOT NULL
            """,
            """
            CREATE INDEX IF NOT EXISTS idx_workflow_status_parent_workflow_id ON dbos.workflow_status (parent_workflow_id)
                WHERE parent_workflow_id IS NOT NULL
            """,
            """
            CREATE INDEX IF NOT EXISTS idx_workflow_status_completed_at ON dbos.workflow_status (completed_at)
                WHERE completed_at IS NOT NULL
            """,
            """
            CREATE INDEX IF NOT EXISTS idx_workflow_status_started_at ON dbos.workflow_status (started_at_epoch_ms)
                WHERE started_at_epoch_ms IS NOT NULL
            """,
            """
            CREATE INDEX IF NOT EXISTS idx_workflow_status_schedule_name ON dbos.workflow_status (schedule_name)
                WHERE schedule_name IS NOT NULL
            """,
            """
            CREATE INDEX IF NOT EXISTS idx_workflow_status_deadline ON dbos.workflow_status (workflow_deadline_epoch_ms)
                WHERE status IN ('ENQUEUED', 'PENDING', 'DELAYED') AND workflow_deadline_epoch_ms IS NOT NULL
            """,
            """
            CREATE INDEX IF NOT EXISTS idx_workflow_status_attributes ON dbos.workflow_status USING gin (attributes)
                WHERE attributes IS NOT NULL
            """,
            """
            CREATE TABLE IF NOT EXISTS dbos.workflow_input (
                workflow_uuid text PRIMARY KEY,
                inputs text,
                retention_timestamp bigint NOT NULL DEFAULT \(now)
            )
            """,
            "CREATE INDEX IF NOT EXISTS idx_workflow_input_retention ON dbos.workflow_input (retention_timestamp)",
            """
            CREATE TABLE IF NOT EXISTS dbos.workflow_output (
                workflow_uuid text PRIMARY KEY,
                output text,
                error text,
                retention_timestamp bigint NOT NULL DEFAULT \(now)
            )
            """,
            "CREATE INDEX IF NOT EXISTS idx_workflow_output_retention ON dbos.workflow_output (retention_timestamp)",
            """
            CREATE TABLE IF NOT EXISTS dbos.operation_outputs (
                workflow_uuid text NOT NULL,
                function_id integer NOT NULL,
                function_name text NOT NULL DEFAULT '',
                output text,
                error text,
                child_workflow_id text,
                started_at_epoch_ms bigint,
                completed_at_epoch_ms bigint,
                serialization text,
                application_name text,
                retention_timestamp bigint NOT NULL DEFAULT \(now),
                PRIMARY KEY (workflow_uuid, function_id)
            )
            """,
            "CREATE INDEX IF NOT EXISTS idx_operation_outputs_retention ON dbos.operation_outputs (retention_timestamp)",
            """
            CREATE INDEX IF NOT EXISTS idx_operation_outputs_completed_at_function_name_v2
                ON dbos.operation_outputs (completed_at_epoch_ms, function_name) INCLUDE (application_name)
            """,
            """
            CREATE TABLE IF NOT EXISTS dbos.notifications (
                message_uuid text PRIMARY KEY DEFAULT gen_random_uuid(),
                destination_uuid text NOT NULL
                    REFERENCES dbos.workflow_status (workflow_uuid) ON UPDATE CASCADE ON DELETE CASCADE,
                topic text,
                message text NOT NULL,
                created_at_epoch_ms bigint NOT NULL DEFAULT \(now),
                serialization text,
                consumed boolean NOT NULL DEFAULT false,
                consumed_by_function_id integer
            )
            """,
            "CREATE INDEX IF NOT EXISTS idx_workflow_topic ON dbos.notifications (destination_uuid, topic)",
            """
            CREATE TABLE IF NOT EXISTS dbos.workflow_events (
                workflow_uuid text NOT NULL
                    REFERENCES dbos.workflow_status (workflow_uuid) ON UPDATE CASCADE ON DELETE CASCADE,
                key text NOT NULL,
                value text NOT NULL,
                serialization text,
                PRIMARY KEY (workflow_uuid, key)
            )
            """,
            """
            CREATE TABLE IF NOT EXISTS dbos.workflow_events_history (
                workflow_uuid text NOT NULL
                    REFERENCES dbos.workflow_status (workflow_uuid) ON UPDATE CASCADE ON DELETE CASCADE,
                function_id integer NOT NULL,
                key text NOT NULL,
                value text NOT NULL,
                serialization text,
                PRIMARY KEY (workflow_uuid, function_id, key)
            )
            """,
            """
            CREATE TABLE IF NOT EXISTS dbos.streams (
                workflow_uuid text NOT NULL
                    REFERENCES dbos.workflow_status (workflow_uuid) ON UPDATE CASCADE ON DELETE CASCADE,
                key text NOT NULL,
                value text NOT NULL,
                "offset" integer NOT NULL,
                function_id integer NOT NULL DEFAULT 0,
                serialization text,
                PRIMARY KEY (workflow_uuid, key, "offset")
            )
            """,
            """
            CREATE TABLE IF NOT EXISTS dbos.event_dispatch_kv (
                service_name text NOT NULL,
                workflow_fn_name text NOT NULL,
                key text NOT NULL,
                value text,
                update_seq numeric(38,0),
                update_time numeric(38,15),
                PRIMARY KEY (service_name, workflow_fn_name, key)
            )
            """,
            """
            CREATE TABLE IF NOT EXISTS dbos.workflow_schedules (
                schedule_id text PRIMARY KEY,
                schedule_name text NOT NULL UNIQUE,
                workflow_name text NOT NULL,
                workflow_class_name text,
                schedule text NOT NULL,
                status text NOT NULL DEFAULT 'ACTIVE',
                context text NOT NULL,
                last_fired_at text,
                automatic_backfill boolean NOT NULL DEFAULT false,
                cron_timezone text,
                queue_name text,
                application_name text
            )
            """,
            """
            CREATE TABLE IF NOT EXISTS dbos.application_versions (
                version_id text PRIMARY KEY,
                version_name text NOT NULL UNIQUE,
                version_timestamp bigint NOT NULL DEFAULT \(now),
                created_at bigint NOT NULL DEFAULT \(now),
                application_name text
            )
            """,
            """
            CREATE UNIQUE INDEX IF NOT EXISTS uq_application_versions_owner_version
                ON dbos.application_versions (application_name, version_name) WHERE application_name IS NOT NULL
            """,
            """
            CREATE UNIQUE INDEX IF NOT EXISTS uq_application_versions_unclaimed_version
                ON dbos.application_versions (version_name) WHERE application_name IS NULL
            """,
            """
            CREATE INDEX IF NOT EXISTS idx_application_versions_timestamp
                ON dbos.application_versions (version_timestamp DESC)
            """,
            """
            CREATE INDEX IF NOT EXISTS idx_application_versions_owner_timestamp
                ON dbos.application_versions (application_name, version_timestamp DESC)
            """,
            """
            CREATE TABLE IF NOT EXISTS dbos.queues (
                queue_id text PRIMARY KEY DEFAULT (gen_random_uuid())::text,
                name text NOT NULL UNIQUE,
                concurrency integer,
                worker_concurrency integer,
                rate_limit_max integer,
                rate_limit_period_sec double precision,
                priority_enabled boolean NOT NULL DEFAULT false,
                partition_queue boolean NOT NULL DEFAULT false,
                polling_interval_sec double precision NOT NULL DEFAULT 1.0,
                created_at bigint NOT NULL DEFAULT \(now),
                updated_at bigint NOT NULL DEFAULT \(now),
                application_name text,
                partition_concurrency integer,
                partition_worker_concurrency integer,
                partition_rate_limit_max integer,
                partition_rate_limit_period_sec double precision
            )
            """,
            // DBOS's trigger: a message inserted by any client (even plain SQL) wakes its receiver.
            """
            CREATE OR REPLACE FUNCTION dbos.notifications_function() RETURNS trigger
                LANGUAGE plpgsql SET search_path TO 'pg_catalog', 'pg_temp' AS $$
            DECLARE
                payload text := NEW.destination_uuid || '::' || NEW.topic;
            BEGIN
                PERFORM pg_notify('dbos_notifications_channel', payload);
                RETURN NEW;
            END;
            $$
            """,
            """
            CREATE OR REPLACE TRIGGER dbos_notifications_trigger AFTER INSERT ON dbos.notifications
                FOR EACH ROW EXECUTE FUNCTION dbos.notifications_function()
            """,
            // DBOS's SQL-level client: enqueue a workflow with portable JSON arguments.
            """
            CREATE OR REPLACE FUNCTION dbos.enqueue_workflow(
                workflow_name text, queue_name text, positional_args json[] DEFAULT ARRAY[]::json[],
                named_args json DEFAULT '{}'::json, class_name text DEFAULT NULL, config_name text DEFAULT NULL,
                workflow_id text DEFAULT NULL, app_version text DEFAULT NULL, timeout_ms bigint DEFAULT NULL,
                deadline_epoch_ms bigint DEFAULT NULL, deduplication_id text DEFAULT NULL, priority integer DEFAULT NULL,
                queue_partition_key text DEFAULT NULL, authenticated_user text DEFAULT NULL,
                authenticated_roles text DEFAULT NULL, delay_until_epoch_ms bigint DEFAULT NULL,
                application_name text DEFAULT NULL) RETURNS text
                LANGUAGE plpgsql SET search_path TO 'pg_catalog', 'pg_temp' AS $$
            DECLARE
                v_workflow_id text;
                v_now bigint;
                v_status text;
            BEGIN
                IF workflow_name IS NULL OR workflow_name = '' THEN
                    RAISE EXCEPTION 'Workflow name cannot be null or empty';
                END IF;
                IF queue_name IS NULL OR queue_name = '' THEN
                    RAISE EXCEPTION 'Queue name cannot be null or empty';
                END IF;
                IF named_args IS NOT NULL AND jsonb_typeof(named_args::jsonb) != 'object' THEN
                    RAISE EXCEPTION 'Named args must be a JSON object';
                END IF;
                IF workflow_id IS NOT NULL AND workflow_id = '' THEN
                    RAISE EXCEPTION 'Workflow ID cannot be an empty string if provided.';
                END IF;
                IF delay_until_epoch_ms IS NOT NULL AND delay_until_epoch_ms < 0 THEN
                    RAISE EXCEPTION 'delay_until_epoch_ms must be >= 0';
                END IF;
                v_workflow_id := COALESCE(workflow_id, gen_random_uuid()::text);
                v_now := EXTRACT(epoch FROM now()) * 1000;
                v_status := CASE WHEN delay_until_epoch_ms IS NULL THEN 'ENQUEUED' ELSE 'DELAYED' END;
                INSERT INTO "dbos".workflow_status (
                    workflow_uuid, status, name, class_name, config_name, queue_name, deduplication_id, priority,
                    queue_partition_key, application_version, created_at, updated_at, recovery_attempts,
                    workflow_timeout_ms, workflow_deadline_epoch_ms, parent_workflow_id, owner_xid, serialization,
                    authenticated_user, authenticated_roles, delay_until_epoch_ms, application_name)
                VALUES (
                    v_workflow_id, v_status, workflow_name, class_name, config_name, queue_name, deduplication_id,
                    COALESCE(priority, 0), queue_partition_key, app_version, v_now, v_now, 0, timeout_ms,
                    deadline_epoch_ms, NULL, gen_random_uuid()::text, 'portable_json', authenticated_user,
                    authenticated_roles, delay_until_epoch_ms, application_name)
                ON CONFLICT (workflow_uuid) DO UPDATE SET updated_at = EXCLUDED.updated_at;
                INSERT INTO "dbos".workflow_input (workflow_uuid, inputs, retention_timestamp)
                VALUES (v_workflow_id, json_build_object('positionalArgs', positional_args, 'namedArgs', named_args)::text, v_now)
                ON CONFLICT (workflow_uuid) DO NOTHING;
                RETURN v_workflow_id;
            EXCEPTION
                WHEN unique_violation THEN
                    RAISE EXCEPTION 'DBOS queue duplicated'
                        USING DETAIL = format('Workflow %s with queue %s and deduplication ID %s already exists',
                            v_workflow_id, queue_name, deduplication_id),
                        ERRCODE = 'unique_violation';
            END;
            $$
            """,
            // DBOS's SQL-level client: send a message with a portable JSON payload.
            """
            CREATE OR REPLACE FUNCTION dbos.send_message(
                destination_id text, message json, topic text DEFAULT NULL, message_id text DEFAULT NULL) RETURNS void
                LANGUAGE plpgsql SET search_path TO 'pg_catalog', 'pg_temp' AS $$
            BEGIN
                INSERT INTO "dbos".notifications (destination_uuid, topic, message, message_uuid, serialization)
                VALUES (destination_id, COALESCE(topic, '__null__topic__'), message,
                    COALESCE(message_id, gen_random_uuid()::text), 'portable_json')
                ON CONFLICT (message_uuid) DO NOTHING;
            EXCEPTION
                WHEN foreign_key_violation THEN
                    RAISE EXCEPTION 'DBOS non-existent workflow'
                        USING DETAIL = format('Destination workflow %s does not exist', destination_id),
                        ERRCODE = 'foreign_key_violation';
            END;
            $$
            """,
        ]
    ]
}
