/*
 * test/demo/by_dimension.sql
 *		Part of demo.sql: open leads against the 12 months of the training
 *		window, by the lead column named in :dim (channel, shop).
 */

WITH now_ AS (
	SELECT :dim, count(*) AS leads, sum(expected_profit) AS ep, avg(p_win) AS p,
		   count(*) FILTER (WHERE priority <= 2) AS p12
	  FROM demo_open GROUP BY :dim
), hist AS (
	SELECT :dim, count(*) AS leads, avg((status = 'won')::int) AS wr,
		   sum(won_profit) AS won
	  FROM demo_history GROUP BY :dim
)
SELECT coalesce(n.:dim, h.:dim) AS :dim,
	   coalesce(n.leads, 0) AS open_leads,
	   to_char(n.ep, 'FM999G999G999G999G999G990') AS "Σ expected profit",
	   round(n.p::numeric, 3) AS "mean p_win",
	   coalesce(n.p12, 0) AS "priority 1-2",
	   h.leads AS "12m leads",
	   round(h.wr::numeric, 3) AS "12m win rate",
	   to_char(h.won, 'FM999G999G999G999G999G990') AS "12m won profit"
  FROM now_ n
  FULL JOIN hist h USING (:dim)
 ORDER BY n.ep DESC NULLS LAST, 1;
