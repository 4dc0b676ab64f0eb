-- ferrolite's store, version 3: what a call said and answered, kept only
-- with general_settings.store_prompts_in_spend_logs (LiteLLM's column names).
-- JSON text, bounded in size by the gateway; NULL when not stored.
ALTER TABLE ferrolite_spend_logs ADD COLUMN messages TEXT;
ALTER TABLE ferrolite_spend_logs ADD COLUMN response TEXT;
