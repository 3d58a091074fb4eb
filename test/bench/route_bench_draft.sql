-- pgbench script of route_bench.sh: one draft lead (scored, not routed)
\set budget random(1000, 99000)
INSERT INTO scoring.lead (shop, channel, category, brand, budget, status)
VALUES ('shop1', 'email', 'welding', 'Fubag', :budget, 'draft');
