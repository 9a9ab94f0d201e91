-- A message rejected again after a crash or a redelivery (its batch was applied but not acked)
-- must not be dead-lettered twice: MessagePipeline.deadLetter looks for an unreplayed record of
-- the same (source, id, reason, body) first. A replay marks its record replayed, so a message
-- that fails again after a replay is recorded anew.
CREATE INDEX dead_letters_identity ON dead_letters (source, event_id) WHERE replayed_at IS NULL;
