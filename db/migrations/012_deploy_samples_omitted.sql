-- A deploy keeps its first and newest health samples (a day-long watch window would be 86,400); how many it
-- took and no longer keeps is counted, so readers know the list is not the whole watch.
ALTER TABLE opsflow.deploys ADD COLUMN samples_omitted integer NOT NULL DEFAULT 0;
