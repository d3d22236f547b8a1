-- The bookkeeping tables that grow with every deploy and command get an index by age, so
-- Prune can walk them from the oldest row as it does the others: GitHub creates recorded
-- (github_writes), the branch moves matched to pushes (branch_moves) and the deliveries recovery
-- asked GitHub to redeliver (recovery_deliveries).
CREATE INDEX github_writes_updated ON github_writes (updated_at);
CREATE INDEX branch_moves_created ON branch_moves (created_at);
CREATE INDEX recovery_deliveries_updated ON recovery_deliveries (updated_at);
