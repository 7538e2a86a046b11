-- A task whose watched state (status, progress, progress message, attempts) changes notifies
-- channel es_task_updates with its id. NOTIFY is transactional: listeners hear it only once
-- the change commits, and never for one rolled back. Every writer of tasks is covered, not
-- only es_core/tasks/store.py, and a lease renewal (no visible change) stays silent.
CREATE FUNCTION notify_task_update() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('es_task_updates', NEW.task_id::text);
    RETURN NULL;
END
$$;

CREATE TRIGGER tasks_notify_update
    AFTER UPDATE ON tasks
    FOR EACH ROW
    WHEN ((OLD.status, OLD.progress, OLD.progress_message, OLD.attempts)
          IS DISTINCT FROM (NEW.status, NEW.progress, NEW.progress_message, NEW.attempts))
    EXECUTE FUNCTION notify_task_update();
