-- pgbench script of route_bench.sh: one ready lead (scored and routed)
\set budget random(1000, 99000)
INSERT INTO scoring.lead (shop, channel, category, brand, budget)
VALUES ('shop1', 'email', 'welding', 'Fubag', :budget);
