-- Workflows as columns, not hidden state: a subtask names its parent in a column (it was the
-- params' parent_task_id), and a task waiting for the tasks it started is 'waiting' (it was
-- 'processing' with lease_owner 'subtasks').
ALTER TABLE tasks DROP CONSTRAINT tasks_status_check;
ALTER TABLE tasks ADD CONSTRAINT tasks_status_check
    CHECK (status IN ('pending', 'processing', 'waiting', 'done', 'failed', 'canceled'));

ALTER TABLE tasks ADD COLUMN parent_task_id uuid REFERENCES tasks (task_id);
UPDATE tasks SET parent_task_id = (params ->> 'parent_task_id')::uuid,
                 params = params - 'parent_task_id'
 WHERE params ? 'parent_task_id';
DROP INDEX tasks_parent_idx;
CREATE INDEX tasks_parent_idx ON tasks (parent_task_id) WHERE parent_task_id IS NOT NULL;

UPDATE tasks SET status = 'waiting', lease_owner = NULL, lease_expires_at = NULL
 WHERE status = 'processing' AND lease_owner = 'subtasks';
