ALTER TABLE {{tables.users}} ADD COLUMN display_name text;
