-- Applied in name order before the worker starts (by `staging init`'s schema step here,
-- by the deploy's release command in production).
create table rollups (day text not null, total int not null);
