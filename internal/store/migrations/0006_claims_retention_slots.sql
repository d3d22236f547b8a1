-- Claims walk an index, not the history: the jobs a claim can take (pending, or running under a
-- lease that may have expired), in the order it takes them. The claim repeats the predicate.
CREATE INDEX jobs_claim ON jobs (run_after, id) WHERE state IN ('pending', 'running');

-- Retention deletes by age without scanning what it keeps.
CREATE INDEX jobs_finished ON jobs (updated_at) WHERE state IN ('done', 'failed');
CREATE INDEX deliveries_received ON deliveries (received_at);
CREATE INDEX commands_created ON commands (created_at);

-- What each slot of a two-slot stage runs: the images Stagecoach last set there and the commit
-- they are the build of. A switch (a deploy's last step, or /rollback) sends traffic to a slot
-- only when the cluster runs exactly these images and they are the commit the switch claims.
CREATE TABLE slot_images (
    app        TEXT NOT NULL,
    stage      TEXT NOT NULL,
    slot       TEXT NOT NULL,
    sha        TEXT NOT NULL,
    deploy_id  BIGINT NOT NULL,
    images     TEXT NOT NULL,
    updated_at BIGINT NOT NULL,
    PRIMARY KEY (app, stage, slot)
);
