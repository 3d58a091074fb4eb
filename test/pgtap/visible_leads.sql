--
-- A history walk skips the heap for leads it found visible before
-- (src/visible.c).  The counts must stay those of the table through
-- updates of the walked columns (a status that makes a lead won, which
-- gives it a new index entry), updates of other columns and deletes;
-- inside the statement that updates the leads (a rescore); and when only
-- the per-row trigger, the one logical replication's apply fires, is there
-- to say so (the statement trigger disabled, the session in replica role).
-- Other sessions' changes: the isolation spec visible_leads.
--
-- explain() reports the history it walked: history.leads and the smoothed
-- history.win_rate (wins + 1) / (leads + 2).
--
-- Runs in a fresh database with pgtap and scoring, and commits: a walk
-- notes only leads that other, committed transactions wrote.
--
SET timezone = 'UTC';
SELECT plan(16);

SELECT is((SELECT tgenabled::text FROM pg_trigger
			WHERE tgrelid = 'scoring.lead'::regclass AND tgname = 'lead_versions_changed'),
		  'A', 'the statement trigger fires in every session');
SELECT is((SELECT tgenabled::text FROM pg_trigger
			WHERE tgrelid = 'scoring.lead'::regclass AND tgname = 'lead_versions_replicated'),
		  'R', 'the row trigger fires in replica sessions (logical replication''s apply)');

INSERT INTO scoring.brand (brand, margin) VALUES ('B', 0.2);
INSERT INTO scoring.model (active, train_since, train_until, n_rows, n_won,
						   intercept, weights, numeric_features)
VALUES (true, '2025-01-01', '2026-01-01', 0, 0, -1,
		'{"history.leads": 0.3, "history.win_rate": 1.5}',
		'{"history.leads": {"mean": 50, "std": 30, "min": 0, "max": 100000},
		  "history.win_rate": {"mean": 0.4, "std": 0.2, "min": 0, "max": 1}}');
INSERT INTO scoring.client (client_id, kind) VALUES (1, 'company');
-- 300 earlier leads of client 1, stored in random order (so that a walk,
-- in created_at order, goes from heap page to heap page), then lead 1000
-- whose history is walked
SELECT setseed(0.42);
INSERT INTO scoring.lead (lead_id, client_id, created_at, status, brand, budget)
SELECT i, 1, timestamptz '2026-01-01' + i * interval '1 hour', 'draft', 'B', 1000
  FROM generate_series(1, 300) AS i
 ORDER BY random();
INSERT INTO scoring.lead (lead_id, client_id, created_at, status, brand, budget)
VALUES (1000, 1, '2026-03-01', 'draft', 'B', 1000);

-- What the walk reports and what the table holds, as 'leads wins'
CREATE FUNCTION pg_temp.walked() RETURNS text
LANGUAGE sql AS $$
	SELECT l.value || ' ' || round((w.value::float8 * (l.value::int + 2) - 1)::numeric)
	  FROM scoring.explain(1000) AS l, scoring.explain(1000) AS w
	 WHERE l.feature = 'history.leads' AND w.feature = 'history.win_rate'
$$;
CREATE FUNCTION pg_temp.truth() RETURNS text
LANGUAGE sql AS $$
	SELECT count(*) || ' ' || count(*) FILTER (WHERE status = 'won' AND closed_at <= '2026-03-01')
	  FROM scoring.lead WHERE client_id = 1 AND created_at < '2026-03-01'
$$;

-- heap pages of scoring.lead read by the walks, as the statistics count
-- them within a transaction (a visit to the page before counts none);
-- inserting lead 1000 walked already, so an update first drops the memo.
-- Lead 150's walk notes the first 149 leads, lead 1000's then the others,
-- whose TIDs fall between theirs: the memo sorts them in.
UPDATE scoring.lead SET refusal_reason = NULL WHERE lead_id = 1000;
BEGIN;
SELECT pg_stat_get_xact_blocks_fetched('scoring.lead'::regclass) AS pages \gset
SELECT is((SELECT value FROM scoring.explain(150) WHERE feature = 'history.leads'),
		  '149', 'the walk of lead 150: 149 leads');
SELECT is(pg_temp.walked(), '300 0', 'the first walk of lead 1000: 300 leads, none won');
SELECT pg_stat_get_xact_blocks_fetched('scoring.lead'::regclass) - :pages AS first_pages \gset
COMMIT;
SELECT cmp_ok((SELECT count(*) FROM scoring.lead WHERE lead_id % 7 = 0 AND lead_id < 1000), '>', 0::bigint,
			  'leads to be won exist');
BEGIN;
SELECT pg_stat_get_xact_blocks_fetched('scoring.lead'::regclass) AS pages \gset
SELECT is(pg_temp.walked(), '300 0', 'again, from what the first walk noted');
SELECT pg_stat_get_xact_blocks_fetched('scoring.lead'::regclass) - :pages AS again_pages \gset
COMMIT;
SELECT cmp_ok(:first_pages::bigint, '>', 100::bigint,
			  'those walks visit the heap pages of the leads');
SELECT cmp_ok(:again_pages::bigint, '<', 5::bigint,
			  'the walks after them visit none: they know all 300 are visible');

UPDATE scoring.lead SET status = 'won', closed_at = created_at + interval '1 day'
 WHERE lead_id % 7 = 0 AND lead_id < 1000;
SELECT is(pg_temp.walked(), pg_temp.truth(), 'after leads are won: each counted once, as won');

UPDATE scoring.lead SET refusal_reason = 'checked' WHERE lead_id % 3 = 0 AND lead_id < 1000;
SELECT is(pg_temp.walked(), pg_temp.truth(), 'after an update of a column the walk does not read');

DELETE FROM scoring.lead WHERE lead_id % 10 = 1;
SELECT is(pg_temp.walked(), pg_temp.truth(), 'after a delete');

-- a rescore walks every lead's history inside the UPDATE, after the rows
-- before it got their xmax and before the statement's message: each p_win
-- stored must be what explain() (a walk after the statement) adds up to
SELECT pg_temp.walked();
UPDATE scoring.lead SET features = features WHERE client_id = 1;
SELECT is((SELECT count(*) FROM scoring.lead l
			WHERE client_id = 1
			  AND abs(ln(p_win / (1 - p_win))
					  - (SELECT sum(contribution) FROM scoring.explain(l.lead_id))) > 1e-9),
		  0::bigint, 'a rescore of the client''s leads counts each earlier lead once');

BEGIN;
UPDATE scoring.lead SET status = 'lost', closed_at = created_at WHERE lead_id % 5 = 0 AND lead_id < 1000;
SELECT is(pg_temp.walked(), pg_temp.truth(), 'inside a transaction that changes leads');
ROLLBACK;
SELECT is(pg_temp.walked(), pg_temp.truth(), 'after it is rolled back');

-- only the row trigger left, in a replica session; each change its own
-- transaction, so that the next walk, in another one, uses the memo
ALTER TABLE scoring.lead DISABLE TRIGGER lead_versions_changed;
SELECT pg_temp.walked();
SET session_replication_role = replica;
UPDATE scoring.lead SET status = 'won', closed_at = created_at WHERE lead_id % 11 = 0 AND lead_id < 1000;
RESET session_replication_role;
SELECT is(pg_temp.walked(), pg_temp.truth(), 'replica session: the row trigger drops what was noted');
SET session_replication_role = replica;
DELETE FROM scoring.lead WHERE lead_id % 13 = 0 AND lead_id < 1000;
RESET session_replication_role;
SELECT is(pg_temp.walked(), pg_temp.truth(), 'replica session: and after a delete');
ALTER TABLE scoring.lead ENABLE ALWAYS TRIGGER lead_versions_changed;

SELECT * FROM finish();
