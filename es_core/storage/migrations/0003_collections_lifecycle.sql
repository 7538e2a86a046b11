-- Collections through their life: which reindex fills a green one, and deletion.
-- A deleted collection keeps its row (sessions recorded on it still name it); its table is dropped.
ALTER TABLE collections
    ADD COLUMN reindex_task_id uuid,
    ADD COLUMN delete_time     timestamptz;

-- Reindex subtasks found by their parent.
CREATE INDEX tasks_parent_idx ON tasks ((params ->> 'parent_task_id'))
    WHERE params ? 'parent_task_id';
