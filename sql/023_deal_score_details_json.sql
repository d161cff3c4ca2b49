-- A deal's score_details is written whole at every event and every clock tick (a tick rewrites
-- every open deal's) and read whole, or one path of it (-> 'probability' -> 'key_factors');
-- nothing indexes or searches inside it. Stored as json (its text, validated on input) rather
-- than jsonb (parsed into a binary tree on input), a tick's COPY of a deal's ~1.1 KB of details
-- costs PostgreSQL 4.3 instead of 13.3 us, and the row is about 300 bytes smaller (1,090 against
-- 1,390 bytes of details), so every rewrite writes less. The text is the worker's own encoding
-- (compact, keys in the engine's order); json has no equality operator, which nothing needs.
ALTER TABLE deals ALTER COLUMN score_details TYPE json USING score_details::json;
