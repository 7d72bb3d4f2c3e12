-- The seed's source with several views, one of them over another, each pushed to Redis by a sink of its own:
-- what `eddy drill examples/several_views.sql` checks against SQLite evaluating the same SELECTs over every
-- message it produced. Hosts come from the environment as in seed_pipeline.sql.

CREATE SOURCE IF NOT EXISTS user_events ( event_timestamp TIMESTAMP, user VARCHAR, page VARCHAR, event VARCHAR ) WITH ( connector='kafka', topic='test', properties.bootstrap.server='${KAFKA_BROKERS}', scan.startup.mode='earliest' ) FORMAT PLAIN ENCODE JSON;

CREATE MATERIALIZED VIEW IF NOT EXISTS events_statisics_mv AS SELECT event, COUNT(*) FROM user_events GROUP BY event;

-- About a thousand users: a key each.
CREATE MATERIALIZED VIEW IF NOT EXISTS clicks_per_user AS SELECT user, COUNT(*) AS clicks FROM user_events WHERE event = 'click' GROUP BY user;

-- A view over a view: how many users have each number of clicks. Its values go up and down, and its groups
-- empty as users move on (their keys are deleted from Redis).
CREATE MATERIALIZED VIEW IF NOT EXISTS users_by_clicks AS SELECT clicks, COUNT(*) AS users FROM clicks_per_user GROUP BY clicks;

CREATE SINK IF NOT EXISTS redis_sink FROM events_statisics_mv WITH ( connector = 'redis', primary_key = 'event', redis.url= '${REDIS_URL}' ) FORMAT PLAIN ENCODE TEMPLATE ( force_append_only='true', key_format = '{event}', value_format = '{count}' );

CREATE SINK IF NOT EXISTS clicks_sink FROM clicks_per_user WITH ( connector = 'redis', primary_key = 'user', redis.url= '${REDIS_URL}' ) FORMAT PLAIN ENCODE TEMPLATE ( key_format = 'clicks:{user}', value_format = '{clicks}' );

CREATE SINK IF NOT EXISTS histogram_sink FROM users_by_clicks WITH ( connector = 'redis', primary_key = 'clicks', redis.url= '${REDIS_URL}' ) FORMAT PLAIN ENCODE TEMPLATE ( key_format = 'users_with_clicks:{clicks}', value_format = '{users}' );
