-- Set-based fill of a calltrail store for bench/state.sh (run by the
-- bench_state example after Store::open has applied the real DDL).
-- Placeholders: {NI} inbound queue calls, {NO} outbound callbacks, {NA}
-- agent events, {NC} distinct callers, {START} first day, {NOW} the
-- wallboard's "now" (last day, 18:00 UTC). Deterministic: every "random"
-- number is a hash of the row number.

-- Inbound queue calls, in time order: 365 days, 06:00-18:00 UTC.
CREATE TEMP TABLE g_in AS
WITH b AS (
    SELECT range AS k, range * 365.0 / {NI} AS x FROM range({NI})
), c AS (
    SELECT k,
        TIMESTAMP '{START}'
            + to_microseconds((floor(x) * 86400e6 + 6 * 3600e6 + (x - floor(x)) * 43200e6)::BIGINT)
            AS entered_at,
        (hash(k, 'q') % 8)::INTEGER AS q,
        floor({NC} * pow((hash(k, 'c') % 1000003) / 1000003.0, 1.5))::BIGINT AS ci,
        (hash(k, 'o') % 1000)::INTEGER AS o,
        (hash(k, 'w') % 1000) / 1000.0 AS uw,
        (hash(k, 'a') % 25)::INTEGER AS a,
        (hash(k, 't') % 600)::INTEGER AS t
    FROM b
), d AS (
    SELECT k, entered_at, q, ci,
        ['support', 'sales', 'billing', 'vip', 'tech', 'retention', 'delivery', 'general'][q + 1] AS queue,
        'pbx' || (q % 3 + 1) AS pbx,
        '+7916' || lpad(((ci * 7919) % 10000000)::VARCHAR, 7, '0') AS caller,
        CASE WHEN o < 800 THEN 'answered' WHEN o < 820 THEN 'transferred'
             WHEN o < 940 THEN 'abandoned' WHEN o < 980 THEN 'timeout'
             ELSE 'exit_empty' END AS fin,
        CASE WHEN o < 820 THEN floor(75 * uw * uw)::INTEGER
             WHEN o < 940 THEN 1 + floor(150 * uw)::INTEGER
             WHEN o < 980 THEN 300
             ELSE floor(30 * uw)::INTEGER END AS w,
        (201 + q * 25 + a)::VARCHAR AS agent0,
        20 + t AS talk0
    FROM c
)
SELECT k, pbx, queue, caller,
    '8' || substr(caller, 3) AS caller_raw,
    '+7495' || lpad((1000000 + q)::VARCHAR, 7, '0') AS did,
    epoch(entered_at)::BIGINT::VARCHAR || '.' || k AS call_id,
    entered_at,
    -- calls that would end after NOW are still going on
    entered_at + to_seconds(w + CASE WHEN fin IN ('answered', 'transferred') THEN talk0 ELSE 0 END)
        > TIMESTAMP '{NOW}' AS live,
    fin, w, agent0, talk0,
    fin IN ('answered', 'transferred')
        AND entered_at + to_seconds(w) <= TIMESTAMP '{NOW}' AS ans
FROM d;

CREATE TEMP TABLE g_in2 AS
SELECT *,
    CASE WHEN ans THEN entered_at + to_seconds(w) END AS answered_at,
    CASE WHEN live THEN NULL WHEN ans THEN entered_at + to_seconds(w + talk0)
         ELSE entered_at + to_seconds(w) END AS ended_at,
    CASE WHEN live THEN 'open' ELSE fin END AS outcome,
    NOT live AND ((fin = 'abandoned' AND w >= 5) OR fin IN ('timeout', 'exit_empty')) AS missed
FROM g_in;

-- Outbound callbacks: an agent of the queue dials back a missed caller
-- 10 minutes to 2 hours later; 70% answer.
CREATE TEMP TABLE g_out AS
WITH m AS (
    SELECT * FROM g_in2 WHERE missed ORDER BY hash(k, 'cb') LIMIT {NO}
), o AS (
    SELECT row_number() OVER (ORDER BY k) - 1 + {NI} AS k, pbx, queue, caller AS party,
        entered_at + to_seconds(600 + (hash(k, 'd') % 6600)::INTEGER) AS entered_at,
        (hash(k, 'r') % 10) < 7 AS ans,
        (hash(k, 'rw') % 20)::INTEGER + 5 AS w,
        (hash(k, 'rt') % 270)::INTEGER + 30 AS talk,
        (201 + (hash(k, 'ra') % 200))::VARCHAR AS agent
    FROM m
)
SELECT k, pbx, party, agent, entered_at, ans,
    epoch(entered_at)::BIGINT::VARCHAR || '.' || k AS call_id,
    CASE WHEN ans THEN entered_at + to_seconds(w) END AS answered_at,
    entered_at + to_seconds(w + CASE WHEN ans THEN talk ELSE 0 END) AS ended_at,
    CASE WHEN ans THEN talk ELSE 0 END AS talk,
    w
FROM o WHERE entered_at + to_seconds(w + talk) < TIMESTAMP '{NOW}';

-- ---------------------------------------------------------------- events
-- Per inbound call: ENTERQUEUE, CONNECT|RINGNOANSWER, the final verb (queue
-- log) and the CDR row; a call still going on has only the first two.
-- Per callback: its CDR row. Agents: login, pauses, logoff. All in time order.
CREATE TEMP TABLE g_ev AS
SELECT
    pbx || '-queue:' || lpad(to_hex(hash(pbx)), 16, '0') || ':' || (k * 4 + s) * 97 AS event_id,
    'asterisk_queue_log' AS source_kind, pbx || '-queue' AS source, pbx,
    CASE s WHEN 0 THEN entered_at
           WHEN 1 THEN coalesce(answered_at, entered_at + to_seconds(least(coalesce(w, 1), 15)))
           ELSE ended_at END AS ts,
    CASE s WHEN 0 THEN 'enter_queue'
           WHEN 1 THEN CASE WHEN answered_at IS NOT NULL THEN 'answered' ELSE 'ring_no_answer' END
           ELSE CASE fin WHEN 'answered' THEN CASE WHEN k % 2 = 0 THEN 'completed_by_caller' ELSE 'completed_by_agent' END
                         ELSE fin END END AS kind,
    CASE s WHEN 0 THEN 'ENTERQUEUE'
           WHEN 1 THEN CASE WHEN answered_at IS NOT NULL THEN 'CONNECT' ELSE 'RINGNOANSWER' END
           ELSE CASE fin WHEN 'answered' THEN CASE WHEN k % 2 = 0 THEN 'COMPLETECALLER' ELSE 'COMPLETEAGENT' END
                         WHEN 'transferred' THEN 'BLINDTRANSFER' WHEN 'abandoned' THEN 'ABANDON'
                         WHEN 'timeout' THEN 'EXITWITHTIMEOUT' ELSE 'EXITEMPTY' END END AS verb,
    call_id, NULL::VARCHAR AS linked_id,
    CASE WHEN s = 1 AND answered_at IS NOT NULL THEN call_id || '1' END AS peer_call_id,
    queue,
    CASE WHEN s = 0 OR (s = 2 AND NOT ans) THEN NULL ELSE agent0 END AS agent,
    CASE WHEN s = 0 OR (s = 2 AND NOT ans) THEN NULL ELSE 'PJSIP/' || agent0 END AS agent_raw,
    CASE WHEN s = 0 THEN caller END AS caller,
    CASE WHEN s = 0 THEN caller_raw END AS caller_raw,
    NULL::VARCHAR AS caller_name, NULL::VARCHAR AS callee, NULL::VARCHAR AS callee_raw,
    NULL::VARCHAR AS direction, NULL::VARCHAR AS disposition,
    CASE WHEN s = 1 AND answered_at IS NOT NULL THEN w WHEN s = 2 THEN w END AS wait_s,
    CASE WHEN s = 2 AND ans THEN talk0 END AS talk_s,
    CASE WHEN s = 1 THEN 15000::BIGINT END AS ring_ms,
    NULL::INTEGER AS duration_s,
    CASE WHEN s = 2 AND NOT ans THEN 1 END AS position,
    CASE WHEN s = 0 THEN 1 END AS orig_position,
    NULL::TIMESTAMP AS answered_at, NULL::TIMESTAMP AS ended_at,
    CASE WHEN s = 2 AND fin = 'transferred' THEN '300@from-internal' END AS info,
    CASE s WHEN 0 THEN '["","' || caller_raw || '","1"]'
           WHEN 1 THEN '["' || coalesce(w, 0) || '","' || call_id || '1","15"]'
           ELSE '["' || coalesce(w, 0) || '","' || coalesce(talk0, 0) || '","1"]' END AS data,
    k, s
FROM g_in2, (VALUES (0), (1), (2)) v(s)
WHERE s < 2 OR NOT live
UNION ALL
SELECT
    pbx || '-cdr:' || lpad(to_hex(hash(pbx || 'cdr')), 16, '0') || ':' || k * 211 AS event_id,
    'asterisk_cdr_csv', pbx || '-cdr', pbx, entered_at, 'call_record', 'CDR', call_id, call_id, NULL,
    NULL, CASE WHEN ans THEN agent0 END, CASE WHEN ans THEN 'PJSIP/' || agent0 || '-0000a1' END,
    caller, caller_raw, NULL, did, did, 'inbound',
    CASE WHEN ans THEN 'answered' ELSE 'no_answer' END,
    NULL, CASE WHEN ans THEN talk0 ELSE 0 END, NULL, date_diff('second', entered_at, ended_at)::INTEGER,
    NULL, NULL, answered_at, ended_at, NULL, '[]', k, 3
FROM g_in2 WHERE NOT live
UNION ALL
SELECT
    pbx || '-cdr:' || lpad(to_hex(hash(pbx || 'cdr')), 16, '0') || ':' || k * 211,
    'asterisk_cdr_csv', pbx || '-cdr', pbx, entered_at, 'call_record', 'CDR', call_id, call_id, NULL,
    NULL, agent, 'PJSIP/' || agent || '-0000b2', agent, agent, NULL, party, '8' || substr(party, 3),
    'outbound', CASE WHEN ans THEN 'answered' ELSE 'no_answer' END,
    NULL, talk, NULL, date_diff('second', entered_at, ended_at)::INTEGER,
    NULL, NULL, answered_at, ended_at, NULL, '[]', k, 3
FROM g_out
UNION ALL
SELECT
    'pbx' || (i % 3 + 1) || '-queue:' || lpad(to_hex(hash('pbx' || (i % 3 + 1))), 16, '0') || ':a' || i,
    'asterisk_queue_log', 'pbx' || (i % 3 + 1) || '-queue', 'pbx' || (i % 3 + 1),
    ts, kind, CASE kind WHEN 'paused' THEN 'PAUSE' WHEN 'unpaused' THEN 'UNPAUSE' ELSE upper(replace(kind, '_', '')) END,
    NULL, NULL, NULL,
    CASE WHEN kind IN ('paused', 'unpaused') THEN 'NONE' END,
    agent, 'PJSIP/' || agent, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL,
    CASE WHEN kind = 'agent_logoff' THEN 30000 END, NULL, NULL, NULL, NULL,
    CASE WHEN kind = 'paused' THEN ['lunch', 'break', 'training'][(i % 3)::INTEGER + 1] END,
    '[]', -1, i
FROM (
    SELECT range AS i, (201 + range % 200)::VARCHAR AS agent,
        ['agent_login', 'paused', 'unpaused', 'paused', 'unpaused', 'agent_logoff'][((range // 200) % 6)::INTEGER + 1] AS kind,
        TIMESTAMP '{START}' + to_microseconds((floor(range * 365.0 / {NA}) * 86400e6
            + 5.5 * 3600e6 + (range * 365.0 / {NA} - floor(range * 365.0 / {NA})) * 46800e6)::BIGINT) AS ts
    FROM range({NA})
) WHERE ts <= TIMESTAMP '{NOW}';

INSERT INTO events (seq, event_id, source_kind, source, pbx, ts, kind, verb, call_id, linked_id,
    peer_call_id, queue, agent, agent_raw, caller, caller_raw, caller_name, callee, callee_raw,
    direction, disposition, wait_s, talk_s, ring_ms, duration_s, position, orig_position,
    answered_at, ended_at, info, data, ingested_at)
SELECT row_number() OVER (ORDER BY ts, k, s), event_id, source_kind, source, pbx, ts, kind, verb, call_id, linked_id,
    peer_call_id, queue, agent, agent_raw, caller, caller_raw, caller_name, callee, callee_raw,
    direction, disposition, wait_s, talk_s, ring_ms, duration_s, position, orig_position,
    answered_at, ended_at, info, data, ts + INTERVAL 2 SECOND
FROM g_ev WHERE ts <= TIMESTAMP '{NOW}' ORDER BY ts, k, s;

DROP TABLE g_ev;

-- ---------------------------------------------------------------- calls
CREATE TEMP TABLE g_calls AS
SELECT pbx, call_id, 1 AS stint, 'inbound' AS direction, queue, caller, caller_raw, did AS callee,
    caller AS party, entered_at, answered_at, ended_at, outcome,
    CASE WHEN ans THEN agent0 END AS agent,
    CASE WHEN live AND NOT ans THEN NULL ELSE w END AS wait_s,
    CASE WHEN ans AND NOT live THEN talk0 END AS talk_s,
    missed, coalesce(ended_at, answered_at, entered_at) AS updated_at
FROM g_in2
UNION ALL
SELECT pbx, call_id, 1, 'outbound', NULL, agent, agent, party, party, entered_at, answered_at,
    ended_at, CASE WHEN ans THEN 'answered' ELSE 'no_answer' END, agent,
    CASE WHEN ans THEN w END, talk, false, ended_at
FROM g_out;

INSERT INTO calls SELECT * FROM g_calls ORDER BY entered_at, call_id;

-- ---------------------------------------------------------------- callers
INSERT INTO callers
SELECT party, min(entered_at), min(answered_at), count(*)::INTEGER,
    count(answered_at)::INTEGER, max(entered_at)
FROM g_calls WHERE direction = 'inbound' GROUP BY party ORDER BY party;

-- ---------------------------------------------------------------- last_agent
INSERT INTO last_agent
SELECT party, arg_max(agent, answered_at), max(answered_at), arg_max(call_id, answered_at)
FROM g_calls WHERE answered_at IS NOT NULL AND agent IS NOT NULL GROUP BY party ORDER BY party;

-- ---------------------------------------------------------------- missed_calls
-- Walk each party's misses and resolutions in time order (docs/schema.md):
-- a miss opens an episode unless the previous item is a miss of an episode
-- that has not expired; the item after the last miss closes it when it is a
-- resolution within the expiry (168 h), else the episode expired (or is
-- still open when the expiry is after NOW).
CREATE TEMP TABLE g_stream AS
SELECT party, entered_at AS t, 'm' AS typ, queue, call_id FROM g_calls WHERE missed
UNION ALL
SELECT party, answered_at, CASE direction WHEN 'inbound' THEN 'returned' ELSE 'called_back' END,
    NULL, call_id
FROM g_calls WHERE answered_at IS NOT NULL AND party LIKE '+%';

CREATE TEMP TABLE g_walk AS
SELECT *, sum(new_ep::INTEGER) OVER (PARTITION BY party ORDER BY t, call_id ROWS UNBOUNDED PRECEDING) AS ep
FROM (
    SELECT *,
        typ = 'm' AND (prev_typ IS DISTINCT FROM 'm' OR t > prev_t + INTERVAL 168 HOUR) AS new_ep
    FROM (
        SELECT *,
            lag(typ) OVER w AS prev_typ, lag(t) OVER w AS prev_t,
            lead(typ) OVER w AS next_typ, lead(t) OVER w AS next_t, lead(call_id) OVER w AS next_call
        FROM g_stream WINDOW w AS (PARTITION BY party ORDER BY t, call_id)
    )
);

CREATE TEMP TABLE g_ep AS
SELECT party, arg_min(queue, t) AS queue, min(t) AS opened_at, max(t) AS last_missed_at,
    count(*)::INTEGER AS missed_count, arg_min(call_id, t) AS opened_by,
    arg_max(next_typ, t) AS next_typ, arg_max(next_t, t) AS next_t, arg_max(next_call, t) AS next_call
FROM g_walk WHERE typ = 'm' GROUP BY party, ep;

CREATE TEMP TABLE g_ep2 AS
SELECT party, queue, opened_at, last_missed_at, missed_count, opened_by,
    CASE WHEN next_typ IN ('returned', 'called_back') AND next_t <= last_missed_at + INTERVAL 168 HOUR THEN next_typ
         WHEN last_missed_at + INTERVAL 168 HOUR <= TIMESTAMP '{NOW}' THEN 'expired'
         ELSE 'open' END AS status,
    CASE WHEN next_typ IN ('returned', 'called_back') AND next_t <= last_missed_at + INTERVAL 168 HOUR THEN next_t
         WHEN last_missed_at + INTERVAL 168 HOUR <= TIMESTAMP '{NOW}' THEN last_missed_at + INTERVAL 168 HOUR
    END AS resolved_at,
    CASE WHEN next_typ IN ('returned', 'called_back') AND next_t <= last_missed_at + INTERVAL 168 HOUR THEN next_call
    END AS resolved_by
FROM g_ep;

INSERT INTO missed_calls
SELECT e.party, e.queue, e.opened_at, e.last_missed_at, e.missed_count,
    (SELECT count(*) FROM g_calls o WHERE o.direction = 'outbound' AND o.party = e.party
        AND o.entered_at >= e.opened_at
        AND o.entered_at <= coalesce(e.resolved_at, TIMESTAMP '{NOW}'))::INTEGER,
    e.status, e.resolved_at, e.resolved_by, e.opened_by
FROM g_ep2 e ORDER BY e.opened_at, e.party;

-- ---------------------------------------------------------------- sla_intervals
INSERT INTO sla_intervals
SELECT queue, time_bucket(INTERVAL 15 MINUTE, entered_at) AS interval_start,
    count(*)::INTEGER AS offered,
    count(*) FILTER (WHERE outcome IN ('answered', 'transferred'))::INTEGER AS answered,
    count(*) FILTER (WHERE outcome IN ('answered', 'transferred') AND wait_s <= 20)::INTEGER,
    count(*) FILTER (WHERE outcome = 'abandoned')::INTEGER AS abandoned,
    count(*) FILTER (WHERE outcome = 'abandoned' AND wait_s < 5)::INTEGER AS short_abandoned,
    count(*) FILTER (WHERE outcome = 'abandoned' AND wait_s <= 20)::INTEGER,
    count(*) FILTER (WHERE outcome = 'timeout')::INTEGER,
    count(*) FILTER (WHERE outcome IN ('exit_empty', 'exit_key'))::INTEGER,
    count(*) FILTER (WHERE outcome IN ('answered', 'transferred') AND wait_s <= 20)
        / nullif(count(*) - count(*) FILTER (WHERE outcome = 'abandoned' AND wait_s < 5), 0),
    avg(wait_s) FILTER (WHERE outcome IN ('answered', 'transferred')),
    avg(talk_s) FILTER (WHERE outcome IN ('answered', 'transferred'))
FROM g_calls WHERE direction = 'inbound' AND outcome <> 'open'
GROUP BY ALL ORDER BY interval_start, queue;

-- ---------------------------------------------------------------- sla_breaches
-- Not derived (the rolling-window walk is out of scope here): about one
-- breach per queue and day, of the three kinds, 15-105 minutes long; two
-- queues are in breach now.
INSERT INTO sla_breaches
SELECT queue, kind, started_at,
    CASE WHEN started_at > TIMESTAMP '{NOW}' - INTERVAL 40 MINUTE THEN NULL
         ELSE started_at + to_minutes(15 + (h % 90)::INTEGER) END,
    CASE kind WHEN 'service_level' THEN 0.5 + (h % 29) / 100.0 WHEN 'max_wait' THEN 121 + h % 300
              ELSE 11 + h % 10 END,
    CASE kind WHEN 'service_level' THEN 0.8 WHEN 'max_wait' THEN 120 ELSE 10 END
FROM (
    SELECT ['support', 'sales', 'billing', 'vip', 'tech', 'retention', 'delivery', 'general'][q + 1] AS queue,
        ['service_level', 'max_wait', 'waiting_calls'][((d + q) % 3)::INTEGER + 1] AS kind,
        CASE WHEN d = 364 AND q < 2 THEN TIMESTAMP '{NOW}' - to_minutes(10 + q * 10)
             ELSE TIMESTAMP '{START}' + to_days(d::INTEGER) + to_minutes(360 + (hash(d, q) % 600)::INTEGER) END AS started_at,
        hash(q, d, 'b') AS h
    FROM range(365) r(d), range(8) s(q)
    WHERE (hash(d, q, 'x') % 10) < 7 OR (d = 364 AND q < 2)
) ORDER BY started_at;

-- ---------------------------------------------------------------- agent_status
INSERT INTO agent_status
SELECT a.agent,
    [['support', 'sales', 'billing', 'vip', 'tech', 'retention', 'delivery', 'general'][((a.agent::INTEGER - 201) // 25) + 1]],
    (hash(a.agent, 'l') % 10) < 8, (hash(a.agent, 'p') % 10) < 2,
    CASE WHEN (hash(a.agent, 'p') % 10) < 2 THEN 'lunch' END,
    CASE WHEN (hash(a.agent, 'p') % 10) < 2 THEN TIMESTAMP '{NOW}' - to_minutes((hash(a.agent) % 30)::INTEGER) END,
    oc.answered_at, oc.call_id, l.last_end,
    greatest(l.last_end, oc.answered_at, TIMESTAMP '{NOW}' - INTERVAL 1 HOUR)
FROM (SELECT (201 + range)::VARCHAR AS agent FROM range(200)) a
LEFT JOIN (SELECT agent, max(ended_at) AS last_end FROM g_calls WHERE answered_at IS NOT NULL GROUP BY agent) l USING (agent)
LEFT JOIN (SELECT agent, arg_max(answered_at, answered_at) AS answered_at, arg_max(call_id, answered_at) AS call_id
           FROM g_calls WHERE outcome = 'open' AND answered_at IS NOT NULL GROUP BY agent) oc USING (agent)
ORDER BY a.agent;

DROP TABLE g_in; DROP TABLE g_in2; DROP TABLE g_out; DROP TABLE g_calls;
DROP TABLE g_stream; DROP TABLE g_walk; DROP TABLE g_ep; DROP TABLE g_ep2;
