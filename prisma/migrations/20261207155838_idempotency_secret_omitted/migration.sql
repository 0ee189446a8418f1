-- AlterTable
ALTER TABLE "IdempotencyKey" ADD COLUMN     "secretOmitted" BOOLEAN NOT NULL DEFAULT false;

-- Responses stored before this change may hold a secret in plain text (API token and node join
-- token creation: "token"). Strip it and mark the row, so a replay of such a key answers 409
-- IDEMPOTENT_REPLAY_SECRET like one stored from now on (instead of creating a second token).
UPDATE "IdempotencyKey"
SET response = response - 'token' - 'accessToken' - 'password' - 'secret', "secretOmitted" = true
WHERE jsonb_typeof(response) = 'object' AND (response ? 'token' OR response ? 'accessToken' OR response ? 'password' OR response ? 'secret');
