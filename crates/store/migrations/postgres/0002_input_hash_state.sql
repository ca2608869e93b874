-- The SHA-256 state at the end of the input, so the output's hash (input +
-- appended update) is computed without reading the input again.
ALTER TABLE documents ADD COLUMN input_hash_state TEXT;
