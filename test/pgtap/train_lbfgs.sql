--
-- test/pgtap/train_lbfgs.sql
--	Beyond 1,500 columns train() does not factor a Hessian and fits with
--	L-BFGS: 4,800 closed leads whose free feature "sku" has 1,600 levels,
--	three leads each, kept with min_count 2.  Phone calls win 60 % of the
--	time, e-mails 25 %, whatever the sku.
--
BEGIN;
SELECT plan(6);

SET LOCAL timezone = 'UTC';

INSERT INTO scoring.brand (brand, margin) VALUES ('Fubag', 0.2);

INSERT INTO scoring.lead (created_at, shop, channel, category, brand, budget,
						  features, status, closed_at)
SELECT '2023-01-01'::timestamptz + (i % 300) * interval '1 day', 'web1',
	   CASE WHEN i % 3 = 0 THEN 'phone' ELSE 'email' END, 'welding', 'Fubag',
	   1000 + (i * 7919) % 50000,
	   jsonb_build_object('sku', 'sku' || (i % 1600)),
	   CASE WHEN ((i * 2654435761) % 1000) / 1000.0 <
				 CASE WHEN i % 3 = 0 THEN 0.6 ELSE 0.25 END
			THEN 'won' ELSE 'lost' END,
	   '2023-01-01'::timestamptz + (i % 300) * interval '1 day' + interval '3 days'
  FROM generate_series(1, 4800) AS i;

CREATE TEMP TABLE m AS
SELECT scoring.train('2023-01-01', '2024-01-01', '{"min_count": 2, "holdout": 0}') AS id;

SELECT ok((SELECT (metrics->'fit'->>'columns')::int > 1500
			 FROM scoring.model WHERE model_id = (SELECT id FROM m)),
		  'more than 1,500 columns');
SELECT is((SELECT metrics->'fit'->>'hessians' FROM scoring.model WHERE model_id = (SELECT id FROM m)),
		  '0', 'no Hessian: the fit is L-BFGS''s');
SELECT is((SELECT metrics->'fit'->>'converged' FROM scoring.model WHERE model_id = (SELECT id FROM m)),
		  'true', 'L-BFGS converged');
SELECT ok((SELECT abs((metrics->'train'->>'sum_p')::float8 - (metrics->'train'->>'wins')::float8) < 0.01
			 FROM scoring.model WHERE model_id = (SELECT id FROM m)),
		  'at the optimum: the intercept''s gradient, sum of p minus wins, under 0.01 lead');
SELECT ok((SELECT (weights->>'channel=phone')::float8 - (weights->>'channel=email')::float8
			 FROM scoring.model WHERE model_id = (SELECT id FROM m))
		  BETWEEN 1.0 AND 2.0,
		  'phone over e-mail: about the true log-odds ratio, 1.50');
SELECT ok((SELECT max(abs(value::text::float8)) FROM scoring.model, jsonb_each(weights)
			WHERE model_id = (SELECT id FROM m) AND key LIKE 'features.sku=%') < 1.0,
		  'the 1,600 skus, which say nothing, are held by the penalty: three leads move a level less than 1');

SELECT * FROM finish();
ROLLBACK;
